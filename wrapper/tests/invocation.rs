//! An invocation from event to agent: the spans, their parenting and the wrapper protocol, as
//! an in-process fake agent receives them.

mod support;

use ddlambda::config::Config;
use ddlambda::extract::Chain;
use ddlambda::spans::{ErrorInfo, EventInput, Invocation, RuntimeInfo};
use ddlambda::streams::StreamsConfig;
use ddlambda::wire::invocation::InvocationStart;
use ddlambda::{Tracer, tracing_bridge};
use serde_json::{Value, json};
use support::{FakeAgent, by_name, fixture};

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:consumer";

fn tracer(agent: &FakeAgent) -> Tracer {
    let config = Config {
        agent_addr: agent.addr.clone(),
        env: Some("test".into()),
        ..Config::default()
    };
    let streams = StreamsConfig {
        enabled: false,
        service: "consumer".into(),
        env: "test".into(),
        exchange: None,
    };
    Tracer::new(config, Chain::new(), streams)
}

fn runtime(request_id: &str) -> RuntimeInfo<'_> {
    RuntimeInfo {
        request_id,
        invoked_function_arn: ARN,
        function_name: Some("consumer"),
        ..RuntimeInfo::default()
    }
}

fn sqs_record(trace_id: u64, parent_id: u64, priority: i32) -> Value {
    let carrier = json!({
        "x-datadog-trace-id": trace_id.to_string(),
        "x-datadog-parent-id": parent_id.to_string(),
        "x-datadog-sampling-priority": priority.to_string(),
    });
    json!({
        "messageId": "m", "receiptHandle": "rh", "body": "hello",
        "attributes": {"SentTimestamp": "1634662094538", "SenderId": "S"},
        "messageAttributes": {"_datadog": {"dataType": "String", "stringValue": carrier.to_string()}},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_continues_the_producer_trace_through_the_inferred_span() {
    let _subscriber = support::own_subscriber();
    let agent = FakeAgent::start(true).await;
    let tracer = tracer(&agent);
    let event = json!({"Records": [
        sqs_record(2684756524522091840, 7431398482019833808, 1),
        sqs_record(1111, 2222, 2),
        sqs_record(2684756524522091840, 7431398482019833808, 1),
        sqs_record(3333, 4444, 1),
    ]});
    let invocation = Invocation::start(&tracer, Some(&event), runtime("req-sqs"));
    invocation.end();
    invocation.finish();
    tracer.flush().await;

    let requests = agent.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ddlambda/v1/hello",
            "/ddlambda/v1/invocation/start",
            "/v0.4/traces"
        ]
    );
    let start: InvocationStart = serde_json::from_slice(&requests[1].body).unwrap();
    let traces = &requests[2];
    assert_eq!(traces.method, "PUT");
    assert_eq!(traces.header("ddlambda-request-id"), Some("req-sqs"));
    assert_eq!(traces.header("ddlambda-invocation-end"), Some("1"));
    assert_eq!(traces.header("x-datadog-trace-count"), Some("1"));
    assert_eq!(traces.header("content-type"), Some("application/msgpack"));
    assert!(traces.header("datadog-meta-tracer-version").is_some());

    let all = agent.traces();
    assert_eq!(all.len(), 1);
    let spans = &all[0];
    let sqs = by_name(spans, "aws.sqs");
    let lambda = by_name(spans, "aws.lambda");
    assert_eq!(sqs.trace_id, 2684756524522091840);
    assert_eq!(
        sqs.parent_id, 7431398482019833808,
        "the producer's span parents aws.sqs"
    );
    assert_eq!(lambda.trace_id, sqs.trace_id);
    assert_eq!(lambda.parent_id, sqs.span_id, "aws.sqs parents aws.lambda");
    assert_eq!(
        sqs.duration,
        lambda.start - sqs.start,
        "async: ends where aws.lambda starts"
    );
    assert_eq!(
        sqs.metrics["_sampling_priority_v1"], 1.0,
        "the chunk root carries the decision"
    );
    assert!(!lambda.metrics.contains_key("_sampling_priority_v1"));
    assert_eq!(
        sqs.meta["dd_resource_key"],
        "arn:aws:sqs:us-east-1:123456789012:orders"
    );
    assert_eq!(lambda.meta["function_trigger.event_source"], "sqs");
    assert_eq!(lambda.meta["request_id"], "req-sqs");
    assert_eq!(lambda.meta["env"], "test");
    assert_eq!(lambda.meta["_dd.origin"], "lambda");
    assert_eq!(lambda.service, "consumer");
    assert_eq!(lambda.error, 0);
    // Records 1 and 3 are other producers; record 2 repeats record 0 and is not linked.
    let links: Vec<(u64, u64)> = lambda
        .span_links
        .iter()
        .map(|l| (l.trace_id, l.span_id))
        .collect();
    assert_eq!(links, [(1111, 2222), (3333, 4444)]);

    assert_eq!(
        (start.trace_id, start.span_id, start.parent_id),
        (lambda.trace_id, lambda.span_id, lambda.parent_id)
    );
    assert_eq!(start.request_id, "req-sqs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_root_gets_a_128_bit_trace_id_and_errors_are_tagged() {
    let _subscriber = support::own_subscriber();
    let agent = FakeAgent::start(true).await;
    let tracer = tracer(&agent);
    let invocation = Invocation::start(
        &tracer,
        Some(&json!({"hello": "world"})),
        runtime("req-root"),
    );
    invocation.fail(&ErrorInfo {
        r#type: "MyError".into(),
        message: "it broke".into(),
        stack: Some("at here".into()),
    });
    invocation.finish();
    invocation.finish(); // only the first call sends
    tracer.flush().await;
    let all = agent.traces();
    assert_eq!(all.len(), 1);
    let [lambda] = all[0].as_slice() else {
        panic!("only aws.lambda: {all:?}")
    };
    assert_eq!(lambda.parent_id, 0);
    let tid = u64::from_str_radix(&lambda.meta["_dd.p.tid"], 16).unwrap();
    assert_eq!(tid & 0xFFFF_FFFF, 0, "high half: epoch seconds, then zeros");
    assert_eq!(lambda.meta["_dd.p.dm"], "-0");
    assert_eq!(lambda.metrics["_sampling_priority_v1"], 1.0);
    assert_eq!(lambda.error, 1);
    assert_eq!(lambda.meta["error.type"], "MyError");
    assert_eq!(lambda.meta["error.message"], "it broke");
    assert_eq!(lambda.meta["error.stack"], "at here");
    assert!(!lambda.meta.contains_key("function_trigger.event_source"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_trace_agent_gets_traces_only() {
    let _subscriber = support::own_subscriber();
    let agent = FakeAgent::start(false).await;
    let tracer = tracer(&agent);
    for id in ["a", "b"] {
        Invocation::start(&tracer, EventInput::None, runtime(id)).finish();
    }
    tracer.flush().await;
    let paths: Vec<String> = agent.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/ddlambda/v1/hello", "/v0.4/traces", "/v0.4/traces"]
    );
    let requests = agent.requests();
    assert_eq!(requests[1].header("ddlambda-invocation-end"), None);
    assert_eq!(agent.traces().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_spans_become_children_of_aws_lambda() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let agent = FakeAgent::start(true).await;
    let tracer = tracer(&agent);
    let subscriber = tracing_subscriber::registry().with(tracing_bridge::DatadogLayer::new());
    let _guard = tracing::subscriber::set_default(subscriber);

    let invocation = Invocation::start(&tracer, EventInput::None, runtime("req-tracing"));
    let ids = invocation.ids();
    ddlambda::handler::scope(invocation.clone(), async {
        let outer = tracing::info_span!(
            "load_order",
            order.id = "o-1",
            items = 3_u64,
            resource = "GET order"
        );
        let _entered = outer.enter();
        {
            let inner = tracing::info_span!("db.query");
            let _e = inner.enter();
            tracing::error!("connection reset");
        }
    })
    .await;
    invocation.finish();
    tracer.flush().await;

    let all = agent.traces();
    let spans = &all[0];
    let lambda = by_name(spans, "aws.lambda");
    let outer = by_name(spans, "load_order");
    let inner = by_name(spans, "db.query");
    assert_eq!(lambda.span_id, ids.span_id);
    assert_eq!(outer.parent_id, lambda.span_id);
    assert_eq!(inner.parent_id, outer.span_id);
    assert!(spans.iter().all(|s| s.trace_id == ids.trace_id));
    assert_eq!(outer.resource, "GET order");
    assert_eq!(outer.meta["order.id"], "o-1");
    assert_eq!(outer.metrics["items"], 3.0);
    assert_eq!(outer.service, "consumer");
    assert_eq!(inner.error, 1);
    assert_eq!(inner.meta["error.message"], "connection reset");
}

/// `dd.trace_id` values recorded on spans.
#[derive(Clone, Default)]
struct RecordedTraceIds(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RecordedTraceIds {
    fn on_record(
        &self,
        _id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        values.record(&mut self.clone());
    }
}

impl tracing::field::Visit for RecordedTraceIds {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "dd.trace_id" {
            self.0.lock().unwrap().push(value);
        }
    }
    fn record_debug(&mut self, _field: &tracing::field::Field, _value: &dyn std::fmt::Debug) {}
}

/// The background resolution races the handler handing over its span: the trace id reaches
/// the span whichever comes first (many rounds, to hit the window between the two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_id_reaches_the_log_span_whoever_resolves_first() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let agent = FakeAgent::start(true).await;
    let config = Config {
        agent_addr: agent.addr.clone(),
        resolve_after: Some(std::time::Duration::ZERO),
        ..Config::default()
    };
    let tracer = Tracer::new(config, Chain::new(), StreamsConfig::from_env());
    let recorded = RecordedTraceIds::default();
    let subscriber = tracing_subscriber::registry().with(recorded.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    for round in 0..2000 {
        let invocation = Invocation::start(&tracer, EventInput::None, runtime("req-race"));
        let span = tracing::info_span!("aws.lambda", dd.trace_id = tracing::field::Empty);
        invocation.correlate(span);
        let trace_id = invocation.ids().trace_id;
        assert!(
            recorded.0.lock().unwrap().contains(&trace_id),
            "round {round}: dd.trace_id {trace_id} not recorded"
        );
        invocation.finish();
    }
}

/// A REST API request a traced Lambda authorizer let through: the authorizer's context parents
/// `aws.apigateway.authorizer`, which parents `aws.apigateway`, which parents `aws.lambda`,
/// as datadog-lambda chains them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_authorizer_is_upstream_of_the_api_span() {
    let _subscriber = support::own_subscriber();
    let agent = FakeAgent::start(true).await;
    let tracer = tracer(&agent);
    let event = fixture("authorizer-request-rest.json");
    let invocation = Invocation::start(&tracer, Some(&event), runtime("req-authorized"));
    invocation.respond(ddlambda::spans::status::Status::Code(201));
    invocation.end();
    invocation.finish();
    tracer.flush().await;

    let all = agent.traces();
    assert_eq!(all.len(), 1);
    let spans = &all[0];
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let authorizer = by_name(spans, "aws.apigateway.authorizer");
    let api = by_name(spans, "aws.apigateway");
    let lambda = by_name(spans, "aws.lambda");
    for span in [authorizer, api, lambda] {
        assert_eq!(span.trace_id, 6153740290316482077, "{}", span.name);
    }
    assert_eq!(
        authorizer.parent_id, 2409810463287521931,
        "the authorizer's own span parents aws.apigateway.authorizer"
    );
    assert_eq!(api.parent_id, authorizer.span_id);
    assert_eq!(lambda.parent_id, api.span_id);
    // The authorizer finished at ...093.512345 ms; the request came at ...120 ms, 87 ms of
    // integration latency later the API span starts.
    assert_eq!(authorizer.start, 1_795_464_698_093_512_345);
    assert_eq!(authorizer.duration, 113_487_655);
    assert_eq!(api.start, authorizer.start + authorizer.duration);
    assert_eq!(
        api.duration,
        lambda.start + lambda.duration - api.start,
        "sync: ends with aws.lambda"
    );
    assert_eq!(authorizer.meta["_inferred_span.synchronicity"], "sync");
    assert_eq!(
        authorizer.meta["operation_name"],
        "aws.apigateway.authorizer"
    );
    assert_eq!(authorizer.service, api.service);
    assert_eq!(authorizer.resource, "GET /orders/{id}");
    assert!(!authorizer.metrics.contains_key("_dd._inferred_span"));
    assert_eq!(api.metrics["_dd._inferred_span"], 1.0);
    assert_eq!(
        authorizer.metrics["_sampling_priority_v1"], 1.0,
        "the chunk root carries the decision"
    );
    assert!(!api.metrics.contains_key("_sampling_priority_v1"));
    // What the wrapper adds after the handler goes on the span that parents aws.lambda.
    assert!(api.meta.contains_key("dd_resource_key"));
    assert!(!authorizer.meta.contains_key("dd_resource_key"));
    assert_eq!(api.meta["http.status_code"], "201");
    assert!(!authorizer.meta.contains_key("http.status_code"));

    let requests = agent.requests();
    let start = requests
        .iter()
        .find(|r| r.path == "/ddlambda/v1/invocation/start")
        .expect("invocation/start");
    let start: InvocationStart = serde_json::from_slice(&start.body).unwrap();
    assert_eq!(
        (start.trace_id, start.parent_id),
        (lambda.trace_id, api.span_id)
    );
}

/// A cached authorizer result (another request's data): no authorizer span, and the API span
/// starts at the request time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_authorizer_result_draws_no_authorizer_span() {
    let _subscriber = support::own_subscriber();
    let agent = FakeAgent::start(true).await;
    let tracer = tracer(&agent);
    let event = fixture("authorizer-request-rest-cached.json");
    let invocation = Invocation::start(&tracer, Some(&event), runtime("req-cached"));
    invocation.finish();
    tracer.flush().await;
    let all = agent.traces();
    let names: Vec<&str> = all[0].iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["aws.apigateway", "aws.lambda"]);
    let api = by_name(&all[0], "aws.apigateway");
    assert_eq!(api.start, 1_795_464_698_120_000_000);
    assert_eq!(
        api.parent_id, 0,
        "no headers, no fresh authorizer: a new root"
    );
}
