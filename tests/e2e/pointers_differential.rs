//! Span pointers against datadog-lambda 8.130.0 and ddtrace 4.16.0 (the `tracer` peer venv,
//! `tests/peers/pointers_oracle.py`): the same links, encoded the same way, for the same records
//! of the same fixtures; each of our pointers meets the one ddtrace's botocore integration writes
//! on the producer's span; and ddapm-test-agent accepts the spans carrying them.

use std::process::Command;
use std::time::Duration;

use ddlambda::Tracer;
use ddlambda::config::Config;
use ddlambda::extract::Chain;
use ddlambda::spans::pointers::{self, SpanPointer};
use ddlambda::spans::{Invocation, RuntimeInfo};
use ddlambda::streams::StreamsConfig;
use ddlambda::trigger::EventSource;
use ddlambda::wire::Span;
use ddlambda::wire::span::encode_v04;
use ddlambda_tests::command::{output_text, peer_program, repo_root, run};
use ddlambda_tests::event_fixture;
use ddlambda_tests::peers_tracer::{TestAgent, flatten};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);

/// Where we deliberately differ from datadog-lambda on a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deviation {
    /// None: the same pointers, record for record.
    Same,
    /// One malformed record makes datadog-lambda drop every pointer of the event; we skip only
    /// that record (what datadog-lambda gives each record alone).
    WholeEventDropped,
    /// An ETag in double quotes: datadog-lambda writes no pointer, we unquote it and meet the
    /// producer's pointer.
    QuotedEtag,
}

const FIXTURES: [(&str, Deviation); 11] = [
    ("s3.json", Deviation::Same),
    ("dynamodb.json", Deviation::Same),
    ("sqs-batch.json", Deviation::Same),
    ("pointers-s3-batch.json", Deviation::Same),
    ("pointers-s3-skipped.json", Deviation::Same),
    ("pointers-s3-whole-drop.json", Deviation::WholeEventDropped),
    ("pointers-s3-etag-quotes.json", Deviation::QuotedEtag),
    ("pointers-dynamodb-keys.json", Deviation::Same),
    ("pointers-dynamodb-skipped.json", Deviation::Same),
    (
        "pointers-dynamodb-whole-drop.json",
        Deviation::WholeEventDropped,
    ),
    ("api-gateway.json", Deviation::Same),
];

/// datadog-lambda's answers, keyed by fixture name; `None` when the peer is absent (and not
/// required).
fn oracle() -> Option<Value> {
    let python = peer_program("tracer", "python")?;
    let out = run(
        Command::new(python)
            .arg(repo_root().join("tests/peers/pointers_oracle.py"))
            .arg(repo_root().join("tests/fixtures/events"))
            .args(FIXTURES.map(|(name, _)| name))
            .env_remove("DD_BOTOCORE_ADD_SPAN_POINTERS"),
        LIMIT,
    );
    assert!(out.status.success(), "oracle failed: {}", output_text(&out));
    Some(serde_json::from_slice(&out.stdout).expect("oracle prints JSON"))
}

/// The `span_links` of a span carrying `pointers`, as our v0.4 encoding holds them.
fn encoded(pointers: Vec<SpanPointer>) -> Value {
    let span = Span {
        name: "aws.lambda".into(),
        span_links: pointers.into_iter().map(SpanPointer::into_link).collect(),
        ..Span::default()
    };
    let body = encode_v04(&[vec![span]]);
    let decoded: Vec<Vec<Value>> = rmp_serde::from_slice(&body).expect("our v0.4 decodes");
    decoded[0][0]
        .get("span_links")
        .cloned()
        .unwrap_or_else(|| json!([]))
}

fn hashes(links: &Value) -> Vec<&str> {
    links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["attributes"]["ptr.hash"].as_str())
        .collect()
}

#[test]
fn pointers_agree_with_datadog_lambda() {
    let Some(oracle) = oracle() else { return };
    let mut failures = Vec::new();
    let mut exercised = Vec::new();
    for (name, deviation) in FIXTURES {
        let event = event_fixture(name);
        let theirs = &oracle[name];
        let source = EventSource::detect(&event);
        assert_eq!(
            source.as_str(),
            theirs["source"].as_str().filter(|s| *s != "unknown"),
            "{name}: event source"
        );
        let ours = encoded(pointers::for_event(&event, source));
        let records = event["Records"].as_array().cloned().unwrap_or_default();
        let their_records = theirs["records"].as_array().expect("records");
        assert_eq!(records.len(), their_records.len(), "{name}");

        // Record by record: the same links, except ETags in quotes.
        let mut concatenated = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let alone = json!({ "Records": [record] });
            let ours_alone = encoded(pointers::for_event(&alone, source));
            let theirs_alone = &their_records[i];
            let producer = theirs["producer"][i].as_str();
            let quoted = deviation == Deviation::QuotedEtag
                && record["s3"]["object"]["eTag"]
                    .as_str()
                    .is_some_and(|e| e.len() > 2 && e.starts_with('"') && e.ends_with('"'));
            if quoted {
                exercised.push(deviation);
                if theirs_alone != &json!([]) || hashes(&ours_alone) != [producer.unwrap_or("-")] {
                    failures.push(format!(
                        "{name} record {i}: quoted ETag: ours {ours_alone}, theirs {theirs_alone}, producer {producer:?}"
                    ));
                }
            } else if &ours_alone != theirs_alone {
                failures.push(format!(
                    "{name} record {i}:\n  ddlambda:       {ours_alone}\n  datadog-lambda: {theirs_alone}"
                ));
            }
            // Every pointer we write meets the producer's.
            for hash in hashes(&ours_alone) {
                if Some(hash) != producer {
                    failures.push(format!(
                        "{name} record {i}: {hash} does not meet the producer's {producer:?}"
                    ));
                }
            }
            concatenated.extend(ours_alone.as_array().cloned().unwrap_or_default());
        }
        // A malformed record never costs another record its pointer.
        assert_eq!(ours, Value::Array(concatenated), "{name}: per-record skip");

        let whole = &theirs["event"];
        let ok = match deviation {
            Deviation::Same => &ours == whole,
            Deviation::WholeEventDropped => {
                exercised.push(deviation);
                whole == &json!([]) && hashes(&ours).len() >= 2
            }
            Deviation::QuotedEtag => hashes(&ours).len() == hashes(whole).len() + 1,
        };
        if !ok {
            failures.push(format!(
                "{name} ({deviation:?}), whole event:\n  ddlambda:       {ours}\n  datadog-lambda: {whole}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for deviation in [Deviation::WholeEventDropped, Deviation::QuotedEtag] {
        assert!(
            exercised.contains(&deviation),
            "{deviation:?} is not exercised"
        );
    }
}

#[test]
fn fixtures_cover_every_key_type_and_both_sources() {
    let keys = event_fixture("pointers-dynamodb-keys.json");
    let mut types: Vec<&str> = keys["Records"]
        .as_array()
        .expect("records")
        .iter()
        .flat_map(|r| r["dynamodb"]["Keys"].as_object().expect("keys").values())
        .flat_map(|v| v.as_object().expect("typed").keys().map(String::as_str))
        .collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types, ["B", "N", "S"]);
    let batch = event_fixture("pointers-s3-batch.json");
    let source = EventSource::detect(&batch);
    assert_eq!(source, EventSource::S3);
    // URL-encoded and non-ASCII keys are hashed as the event gives them.
    let pointers = pointers::for_event(&batch, source);
    let hash = |key: &str, etag: &str| {
        pointers::s3_object_hash("photos-bucket", key, etag).expect("hashable")
    };
    assert!(
        pointers
            .iter()
            .any(|p| p.hash == hash("my+file%281%29.txt", "0123456789abcdef0123456789abcdef"))
    );
    assert!(
        pointers
            .iter()
            .any(|p| p.hash == hash("some-key.你好", "ab12ef34"))
    );
}

fn runtime(request_id: &str) -> RuntimeInfo<'_> {
    RuntimeInfo {
        request_id,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:pointers-fn",
        function_name: Some("pointers-fn"),
        ..RuntimeInfo::default()
    }
}

fn tracer(port: u16, managed_services: bool, add_span_pointers: bool) -> Tracer {
    let config = Config {
        agent_addr: format!("127.0.0.1:{port}"),
        managed_services,
        add_span_pointers,
        ..Config::default()
    };
    let streams = StreamsConfig {
        enabled: false,
        service: "pointers-fn".into(),
        env: "none".into(),
        exchange: None,
    };
    Tracer::new(config, Chain::new(), streams)
}

fn lambda_span<'a>(spans: &'a [Value], request_id: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["name"] == "aws.lambda" && s["meta"]["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no aws.lambda for {request_id} in {spans:#?}"))
}

/// A span's links as `(trace_id, span_id, attributes)`, checking that nothing else is set (no
/// flags, tracestate or high trace id: ddtrace writes none for a pointer).
fn links_of(span: &Value) -> Vec<(u64, u64, Value)> {
    span["span_links"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            for unset in ["flags", "trace_id_high"] {
                assert_eq!(l[unset].as_u64().unwrap_or(0), 0, "{unset} in {l}");
            }
            assert_eq!(l["tracestate"].as_str().unwrap_or(""), "", "{l}");
            (
                l["trace_id"].as_u64().expect("trace_id"),
                l["span_id"].as_u64().expect("span_id"),
                l["attributes"].clone(),
            )
        })
        .collect()
}

/// What datadog-lambda's real wrapper writes for each fixture: span name → its links.
fn wrapper_oracle(managed_services: bool, names: &[&str]) -> Option<Value> {
    let python = peer_program("tracer", "python")?;
    let out = run(
        Command::new(python)
            .arg(repo_root().join("tests/peers/pointers_oracle.py"))
            .arg("--wrapper")
            .arg(repo_root().join("tests/fixtures/events"))
            .args(names)
            .env_remove("DD_BOTOCORE_ADD_SPAN_POINTERS")
            .env(
                "DD_TRACE_MANAGED_SERVICES",
                if managed_services { "true" } else { "false" },
            ),
        LIMIT,
    );
    assert!(out.status.success(), "oracle failed: {}", output_text(&out));
    Some(serde_json::from_slice(&out.stdout).expect("oracle prints JSON"))
}

const CHECKS: [&str; 3] = [
    "trace_count_header",
    "meta_tracer_version_header",
    "trace_content_length",
];

const S3: &str = "pointers-s3-batch.json";
const DYNAMODB: &str = "pointers-dynamodb-keys.json";

/// The pointers ride on the same span as with datadog-lambda's wrapper (the inferred span when
/// there is one, else `aws.lambda`), with the same links, and ddapm-test-agent takes the
/// payloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointer_links_match_the_wrapper_and_pass_the_test_agent() {
    let Some(agent) = tokio::task::spawn_blocking(|| TestAgent::start(None, &CHECKS))
        .await
        .expect("test agent start")
    else {
        return;
    };
    let Some(theirs_on) = wrapper_oracle(true, &[S3, DYNAMODB]) else {
        return;
    };
    let Some(theirs_off) = wrapper_oracle(false, &[S3, DYNAMODB]) else {
        return;
    };
    // (request id, fixture, DD_TRACE_MANAGED_SERVICES, DD_BOTOCORE_ADD_SPAN_POINTERS)
    let cases = [
        ("req-s3", S3, true, true),
        ("req-ddb", DYNAMODB, true, true),
        ("req-s3-flat", S3, false, true),
        ("req-ddb-flat", DYNAMODB, false, true),
        ("req-off", S3, true, false),
    ];
    for (request_id, name, managed_services, add_span_pointers) in cases {
        let tracer = tracer(agent.port, managed_services, add_span_pointers);
        Invocation::start(&tracer, Some(&event_fixture(name)), runtime(request_id)).finish();
        tracer.flush().await;
    }

    let traces = tokio::task::spawn_blocking(move || {
        // Two spans with an inferred span, one without.
        let traces = agent.wait_for_spans(8, Duration::from_secs(30));
        agent.assert_checks_passed(&CHECKS, 5);
        traces
    })
    .await
    .expect("test agent queries");
    let spans = flatten(&traces);
    for (request_id, name, managed_services, add_span_pointers) in cases {
        let lambda = lambda_span(&spans, request_id);
        let inferred = spans
            .iter()
            .find(|s| s["span_id"] == lambda["parent_id"] && s["trace_id"] == lambda["trace_id"]);
        assert_eq!(inferred.is_some(), managed_services, "{request_id}");
        let ours: Vec<(&str, Vec<_>)> = std::iter::once(lambda)
            .chain(inferred)
            .map(|s| (s["name"].as_str().expect("name"), links_of(s)))
            .collect();
        if !add_span_pointers {
            assert!(ours.iter().all(|(_, l)| l.is_empty()), "{ours:?}");
            continue;
        }
        let theirs = if managed_services {
            &theirs_on[name]
        } else {
            &theirs_off[name]
        };
        let event = event_fixture(name);
        let want = pointers::for_event(&event, EventSource::detect(&event));
        assert!(want.len() >= 6, "{name}");
        for (span_name, links) in &ours {
            let expected = links_of(&json!({ "span_links": theirs[span_name] }));
            assert_eq!(links, &expected, "{request_id}: {span_name}");
        }
        let carrier = if managed_services { 1 } else { 0 };
        assert_eq!(ours[carrier].1.len(), want.len(), "{request_id}: {ours:?}");
    }
}
