//! Data streams end to end on moto with the real AWS SDK calls.
//!
//! A producer "invocation" sends through aws-sdk-sqs (SendMessage, SendMessageBatch), aws-sdk-sns
//! (Publish, PublishBatch, delivered to an SQS queue) and aws-sdk-kinesis (PutRecord, PutRecords)
//! with the `ddlambda::aws::DataStreams` interceptor; consumer "invocations" receive what moto
//! delivered as Lambda-shaped events. Every consumed record's extracted trace context is the
//! producer's, and its consume checkpoint's parent hash is its produce checkpoint's hash.
//! Both sides' checkpoints go to the extension's trace agent (`/ddlambda/v1/checkpoints`), whose
//! aggregator the flusher drains to a loopback fake intake: the pipeline stats decode, and their
//! sketch counts equal the checkpoints set — all of them delivered by the SHUTDOWN flush, whose
//! buckets are still open.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob as KBlob;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ddlambda::aws::{DataStreams, injection_counts};
use ddlambda::extract::{Chain, InvocationInfo};
use ddlambda::streams::{self, StreamsConfig};
use ddlambda::wire::SpanContext;
use ddlambda::wire::checkpoint::Checkpoint;
use ddlambda_extension::aggregate::streams::StreamsAggregator;
use ddlambda_extension::buffer::{Buffer, Scope};
use ddlambda_extension::config::Config;
use ddlambda_extension::flush::enrich::FunctionTags;
use ddlambda_extension::flush::retry::RetryPolicy;
use ddlambda_extension::flush::stats::Counters;
use ddlambda_extension::flush::{Flusher, Trigger};
use ddlambda_extension::intake::trace_agent::{self, TraceAgent, TraceAgentConfig};
use ddlambda_extension::sinks::datadog::{DatadogConfig, DatadogSink};
use ddlambda_tests::AbortOnDrop;
use ddlambda_tests::intake::{FakeIntake, sketch_count};
use ddlambda_tests::moto::Moto;
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const TRACE_ID: u64 = 0x1234_5678_9abc_def0;
const TRACE_ID_HIGH: u64 = 0x6543_2100_0000_0000;
const SPAN_ID: u64 = 4242;

fn http_client() -> aws_sdk_sqs::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

macro_rules! client {
    ($krate:ident, $url:expr) => {{
        let conf = $krate::Config::builder()
            .behavior_version($krate::config::BehaviorVersion::latest())
            .region($krate::config::Region::new(REGION))
            .endpoint_url($url)
            .credentials_provider($krate::config::Credentials::new(
                "test", "test", None, None, "e2e",
            ))
            .http_client(http_client())
            .interceptor(DataStreams)
            .build();
        $krate::Client::from_conf(conf)
    }};
}

/// The extension's trace agent with the data-streams aggregator, its flusher and Datadog sink,
/// and the fake intake, in-process on loopback ports.
pub(crate) struct Extension {
    pub(crate) agent_addr: String,
    flusher: Arc<Flusher<DatadogSink>>,
    pub(crate) intake: FakeIntake,
    _server: AbortOnDrop<()>,
}

impl Extension {
    pub(crate) async fn start() -> Self {
        let intake = FakeIntake::start().await;
        let env: BTreeMap<&str, String> = BTreeMap::from([
            ("DD_API_KEY", "e2e-key".to_owned()),
            ("DD_APM_DD_URL", intake.base().to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", "streams-e2e".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
        ]);
        let (config, _) = Config::from_lookup(|k| env.get(k).cloned());
        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(64 << 20, true, counters.clone()));
        let dsm = Arc::new(StreamsAggregator::default());
        let agent_config = TraceAgentConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes: 50 << 20,
        };
        let listener = trace_agent::bind(&agent_config).await.unwrap();
        let agent_addr = listener.local_addr().unwrap().to_string();
        let agent =
            Arc::new(TraceAgent::new(&agent_config, buffer.clone()).with_checkpoints(dsm.clone()));
        let agent_task = tokio::spawn(trace_agent::serve(listener, agent));
        let sink = DatadogSink::new(DatadogConfig {
            api_key: "e2e-key".to_owned(),
            trace_base: config.trace_intake_base(),
            telemetry_base: config.telemetry_intake_base(),
            metrics_base: intake.base().to_owned(),
            env: String::new(),
        });
        let flusher = Flusher::new(
            buffer,
            sink,
            FunctionTags::new(&config, Some("123456789012")),
            counters,
            RetryPolicy::default(),
        )
        .with_drain(dsm);
        Self {
            agent_addr,
            flusher: Arc::new(flusher),
            intake,
            _server: AbortOnDrop(agent_task),
        }
    }

    /// What the wrapper's transport does after the response.
    async fn send_checkpoints(&self, body: Vec<u8>) {
        let addr = self.agent_addr.clone();
        let resp = tokio::task::spawn_blocking(move || {
            ddlambda_tests::http::request(
                &addr,
                "POST",
                ddlambda::wire::invocation::CHECKPOINTS_PATH,
                &[("Content-Type", "application/msgpack")],
                &body,
                Some(Duration::from_secs(30)),
            )
        })
        .await
        .unwrap()
        .expect("POST checkpoints");
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    }

    pub(crate) async fn flush(&self, final_flush: bool) {
        self.flusher
            .flush(
                if final_flush {
                    Trigger::Shutdown
                } else {
                    Trigger::EndOfInvocation
                },
                Scope::All,
                tokio::time::Instant::now() + Duration::from_secs(30),
                final_flush,
            )
            .await;
    }
}

fn config(service: &str) -> StreamsConfig {
    StreamsConfig {
        enabled: true,
        service: service.to_owned(),
        env: "e2e".to_owned(),
        exchange: None,
    }
}

fn sqs_record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    let attributes: serde_json::Map<String, Value> = m
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let mut a = json!({"dataType": v.data_type()});
            if let Some(s) = v.string_value() {
                a["stringValue"] = s.into();
            }
            if let Some(b) = v.binary_value() {
                a["binaryValue"] = STANDARD.encode(b.as_ref()).into();
            }
            (k.clone(), a)
        })
        .collect();
    json!({
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
        "messageId": m.message_id(),
        "body": m.body(),
        "attributes": {},
        "messageAttributes": attributes,
    })
}

async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    want: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        got.extend(out.messages.unwrap_or_default());
    }
    assert_eq!(got.len(), want, "messages received from {url}");
    got
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("QueueArn")
}

/// The trace context the wrapper extracts from a one-record event.
fn extracted(record: &Value) -> Option<SpanContext> {
    Chain::new()
        .decide(
            &json!({"Records": [record]}),
            &InvocationInfo::default(),
            None,
        )
        .extracted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_aggregate_on_moto() {
    let Some(moto) = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto start")
    else {
        return;
    };
    run(moto).await;
}

async fn run(moto: Moto) {
    let sqs = client!(aws_sdk_sqs, &moto.url);
    let sns = client!(aws_sdk_sns, &moto.url);
    let kinesis = client!(aws_sdk_kinesis, &moto.url);
    let ext = Extension::start().await;

    // Resources.
    let orders_url = sqs
        .create_queue()
        .queue_name("orders")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let fanout_url = sqs
        .create_queue()
        .queue_name("fanout")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let orders_arn = queue_arn(&sqs, &orders_url).await;
    let fanout_arn = queue_arn(&sqs, &fanout_url).await;
    let topic_arn = sns
        .create_topic()
        .name("events")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&fanout_arn)
        .send()
        .await
        .unwrap();
    kinesis
        .create_stream()
        .stream_name("clicks")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let stream_arn = kinesis
        .describe_stream_summary()
        .stream_name("clicks")
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn;
    let before = injection_counts();

    // The producer invocation: its span is the parent every consumer must extract.
    let producer_span = SpanContext {
        trace_id: TRACE_ID,
        trace_id_high: Some(TRACE_ID_HIGH),
        parent_id: SPAN_ID,
        sampling_priority: Some(1),
        ..SpanContext::default()
    };
    // Scoped to this task: other tests of this binary run invocations concurrently.
    let ((), produced) = streams::scope(
        &config("producer"),
        &json!({}),
        Some(producer_span),
        async {
            sqs.send_message()
                .queue_url(&orders_url)
                .message_body("order 1")
                .send()
                .await
                .unwrap();
            let entries = (2..4)
                .map(|i| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(format!("order {i}"))
                        .build()
                        .unwrap()
                })
                .collect::<Vec<_>>();
            sqs.send_message_batch()
                .queue_url(&orders_url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
            // Already at SQS's 10-attribute limit: no room for `_datadog`.
            let mut full = sqs
                .send_message()
                .queue_url(&orders_url)
                .message_body("full");
            for i in 0..10 {
                full = full.message_attributes(
                    format!("a{i}"),
                    MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value("v")
                        .build()
                        .unwrap(),
                );
            }
            full.send().await.unwrap();
            sns.publish()
                .topic_arn(&topic_arn)
                .message("event 1")
                .send()
                .await
                .unwrap();
            let batch = (2..4)
                .map(|i| {
                    aws_sdk_sns::types::PublishBatchRequestEntry::builder()
                        .id(format!("e{i}"))
                        .message(format!("event {i}"))
                        .build()
                        .unwrap()
                })
                .collect::<Vec<_>>();
            sns.publish_batch()
                .topic_arn(&topic_arn)
                .set_publish_batch_request_entries(Some(batch))
                .send()
                .await
                .unwrap();
            kinesis
                .put_record()
                .stream_name("clicks")
                .partition_key("k")
                .data(KBlob::new(br#"{"click":1}"#.to_vec()))
                .send()
                .await
                .unwrap();
            let records = [
                br#"{"click":2}"#.to_vec(),
                br#"{"click":3}"#.to_vec(),
                b"\x00not json".to_vec(),
            ]
            .into_iter()
            .map(|d| {
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .partition_key("k")
                    .data(KBlob::new(d))
                    .build()
                    .unwrap()
            })
            .collect::<Vec<_>>();
            kinesis
                .put_records()
                .stream_name("clicks")
                .set_records(Some(records))
                .send()
                .await
                .unwrap();
        },
    )
    .await;
    let after = injection_counts();
    assert_eq!(
        produced.len(),
        4 + 3 + 4,
        "one produce checkpoint per message"
    );
    assert_eq!(
        after.skipped_attribute_limit - before.skipped_attribute_limit,
        1
    );
    assert_eq!(after.skipped_not_json - before.skipped_not_json, 1);
    assert_eq!(after.injected - before.injected, 3 + 3 + 3);
    let produce_hash = |kind: &str| -> u64 {
        let hashes: Vec<u64> = produced
            .0
            .checkpoints
            .iter()
            .filter(|c| c.edge_tags.contains(&format!("type:{kind}")))
            .map(|c| c.hash)
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{kind}: one edge");
        assert!(produced.0.checkpoints.iter().all(|c| c.parent_hash == 0));
        hashes[0]
    };
    let (h_sqs, h_sns, h_kinesis) = (
        produce_hash("sqs"),
        produce_hash("sns"),
        produce_hash("kinesis"),
    );
    ext.send_checkpoints(produced.encode()).await;

    // Consumers: one invocation per delivery, as Lambda would batch them.
    let orders: Vec<Value> = receive_all(&sqs, &orders_url, 4)
        .await
        .iter()
        .map(|m| sqs_record(m, &orders_arn))
        .collect();
    let fanout: Vec<Value> = receive_all(&sqs, &fanout_url, 3)
        .await
        .iter()
        .map(|m| sqs_record(m, &fanout_arn))
        .collect();
    let shard = kinesis
        .get_shard_iterator()
        .stream_name("clicks")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let clicks: Vec<Value> = kinesis
        .get_records()
        .shard_iterator(shard)
        .send()
        .await
        .unwrap()
        .records
        .iter()
        .map(|r| {
            json!({
                "eventSource": "aws:kinesis",
                "eventSourceARN": stream_arn,
                "awsRegion": REGION,
                "kinesis": {"data": STANDARD.encode(r.data.as_ref()), "partitionKey": r.partition_key},
            })
        })
        .collect();
    assert_eq!(clicks.len(), 4);

    let mut consumed: Vec<Checkpoint> = Vec::new();
    for (records, produce, kind) in [
        (&orders, h_sqs, "sqs"),
        (&fanout, h_sns, "sns"),
        (&clicks, h_kinesis, "kinesis"),
    ] {
        let event = json!({ "Records": records });
        let ((), checkpoints) = streams::scope(&config("consumer"), &event, None, async {}).await;
        assert_eq!(checkpoints.len(), records.len());
        for (record, cp) in records.iter().zip(&checkpoints.0.checkpoints) {
            let carried = !(record["body"] == "full"
                || record["kinesis"]["data"] == STANDARD.encode(b"\x00not json"));
            if carried {
                assert_eq!(cp.parent_hash, produce, "{kind} record {record}");
                let ctx =
                    extracted(record).unwrap_or_else(|| panic!("no trace context in {record}"));
                assert_eq!(
                    (ctx.trace_id, ctx.trace_id_high, ctx.parent_id),
                    (TRACE_ID, Some(TRACE_ID_HIGH), SPAN_ID),
                    "{kind} record {record}"
                );
            } else {
                assert_eq!(cp.parent_hash, 0, "{kind} record without context {record}");
            }
            assert!(cp.edge_tags.contains(&"direction:in".to_owned()));
        }
        ext.send_checkpoints(checkpoints.encode()).await;
        consumed.extend(checkpoints.0.checkpoints);
    }

    // An end-of-invocation flush sends only finished buckets; SHUTDOWN sends the open ones.
    ext.flush(false).await;
    ext.flush(true).await;
    let (requests, payloads): (Vec<_>, Vec<_>) =
        ext.intake.take_pipeline_stats().into_iter().unzip();
    assert!(!payloads.is_empty(), "no pipeline stats reached the intake");
    assert!(
        requests.iter().all(|r| r.api_key == "e2e-key"),
        "DD-API-KEY on every pipeline-stats request"
    );
    assert!(
        requests.iter().all(|r| r.gzip),
        "pipeline stats must be gzip"
    );
    let mut got: HashMap<(u64, u64, Vec<String>), [f64; 3]> = HashMap::new();
    for p in &payloads {
        assert_eq!((p.env.as_str(), p.lang.as_str()), ("e2e", "rust"));
        assert!(
            p.service == "producer" || p.service == "consumer",
            "{}",
            p.service
        );
        for b in &p.stats {
            assert_eq!(b.duration, 10_000_000_000);
            assert_eq!(b.start % b.duration, 0);
            for pt in &b.stats {
                let e = got
                    .entry((pt.hash, pt.parent_hash, pt.edge_tags.clone()))
                    .or_default();
                e[0] += sketch_count(&pt.pathway_latency);
                e[1] += sketch_count(&pt.edge_latency);
                e[2] += sketch_count(&pt.payload_size);
            }
        }
    }
    let mut want: HashMap<(u64, u64, Vec<String>), [f64; 3]> = HashMap::new();
    for cp in produced.0.checkpoints.iter().chain(&consumed) {
        let e = want
            .entry((cp.hash, cp.parent_hash, cp.edge_tags.clone()))
            .or_default();
        for c in e.iter_mut() {
            *c += 1.0;
        }
    }
    assert_eq!(got, want, "sketch counts per edge = checkpoints set");
    let total: f64 = got.values().map(|c| c[0]).sum();
    assert_eq!(total, 22.0);
    // Nothing is left behind.
    ext.flush(true).await;
    assert!(ext.intake.take_pipeline_stats().is_empty());
}
