//! What extraction leaves for the trace's spans beyond the parent: `_dd.parent_id` (the last
//! Datadog span before a W3C-only hop) and `baggage.*` tags land on the first span of the local
//! trace chunk — the inferred span when there is one, else `aws.lambda` — as ddtrace writes its
//! extracted context's meta (ddtrace 4.16.0, `TraceTagsProcessor`).

mod support;

use ddlambda::Tracer;
use ddlambda::config::Config;
use ddlambda::extract::{Chain, Propagator};
use ddlambda::spans::{Invocation, RuntimeInfo};
use ddlambda::streams::StreamsConfig;
use ddlambda::wire::Span;
use serde_json::{Value, json};
use support::{FakeAgent, by_name, fixture};

fn tracer(agent: &FakeAgent, managed_services: bool, propagator: Propagator) -> Tracer {
    let config = Config {
        agent_addr: agent.addr.clone(),
        managed_services,
        ..Config::default()
    };
    let streams = StreamsConfig {
        enabled: false,
        service: "api".into(),
        env: "test".into(),
        exchange: None,
    };
    Tracer::new(config, Chain::new().with_propagator(propagator), streams)
}

fn runtime(request_id: &str) -> RuntimeInfo<'_> {
    RuntimeInfo {
        request_id,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:api",
        function_name: Some("api"),
        ..RuntimeInfo::default()
    }
}

/// An API Gateway request from a service that injected Datadog and W3C headers after a
/// W3C-only hop, with baggage.
fn request() -> Value {
    let mut event = fixture("propagation-parent-id-with-p.json");
    event["headers"]["baggage"] = json!("user.id=al%20ice,other=x");
    event
}

async fn spans(managed_services: bool, propagator: Propagator) -> Vec<Span> {
    let agent = FakeAgent::start(true).await;
    let tracer = tracer(&agent, managed_services, propagator);
    let invocation = Invocation::start(&tracer, Some(&request()), runtime("req-tags"));
    invocation.end();
    invocation.finish();
    tracer.flush().await;
    let mut traces = agent.traces();
    assert_eq!(traces.len(), 1);
    traces.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chunk_root_carries_the_last_datadog_parent_and_baggage() {
    let _subscriber = support::own_subscriber();
    let spans = spans(true, Propagator::default()).await;
    let api = by_name(&spans, "aws.apigateway");
    let lambda = by_name(&spans, "aws.lambda");
    assert_eq!(api.trace_id, 123);
    assert_eq!(
        api.parent_id, 456,
        "the W3C parent replaces the Datadog one"
    );
    assert_eq!(api.meta["_dd.parent_id"], "0000000000000abc");
    assert_eq!(api.meta["baggage.user.id"], "al ice");
    assert!(!api.meta.contains_key("baggage.other"), "not a tag key");
    for key in ["_dd.parent_id", "baggage.user.id"] {
        assert!(!lambda.meta.contains_key(key), "{key} is chunk-root meta");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_inferred_span_aws_lambda_carries_them() {
    let _subscriber = support::own_subscriber();
    let spans = spans(false, Propagator::default()).await;
    assert!(spans.iter().all(|s| s.name != "aws.apigateway"));
    let lambda = by_name(&spans, "aws.lambda");
    assert_eq!((lambda.trace_id, lambda.parent_id), (123, 456));
    assert_eq!(lambda.meta["_dd.parent_id"], "0000000000000abc");
    assert_eq!(lambda.meta["baggage.user.id"], "al ice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn styles_not_configured_leave_no_tags() {
    let _subscriber = support::own_subscriber();
    let spans = spans(false, Propagator::parse("datadog")).await;
    let lambda = by_name(&spans, "aws.lambda");
    assert_eq!((lambda.trace_id, lambda.parent_id), (123, 321));
    assert!(
        lambda
            .meta
            .keys()
            .all(|k| k != "_dd.parent_id" && !k.starts_with("baggage.")),
        "{:?}",
        lambda.meta
    );
}
