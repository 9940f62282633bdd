//! The wrapper's span payloads, as ddapm-test-agent (Datadog's APM test agent) decodes and
//! checks them: the v0.4 body, its headers, the parenting of aws.sqs and aws.lambda.

use std::time::Duration;

use ddlambda::Tracer;
use ddlambda::config::Config;
use ddlambda::extract::Chain;
use ddlambda::spans::{ErrorInfo, EventInput, Invocation, RuntimeInfo};
use ddlambda::streams::StreamsConfig;
use ddlambda_tests::event_fixture;
use ddlambda_tests::peers_tracer::{TestAgent, flatten};
use serde_json::Value;

const CHECKS: [&str; 3] = [
    "trace_count_header",
    "meta_tracer_version_header",
    "trace_content_length",
];

fn runtime(request_id: &str) -> RuntimeInfo<'_> {
    RuntimeInfo {
        request_id,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:checked-fn",
        function_name: Some("checked-fn"),
        ..RuntimeInfo::default()
    }
}

fn find<'a>(spans: &'a [Value], name: &str, request_id: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| {
            s["name"] == name && (s["meta"]["request_id"] == request_id || name != "aws.lambda")
        })
        .unwrap_or_else(|| panic!("no {name} for {request_id} in {spans:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapper_payloads_pass_the_test_agent_checks() {
    let Some(agent) = tokio::task::spawn_blocking(|| TestAgent::start(None, &CHECKS))
        .await
        .expect("test agent start")
    else {
        return;
    };
    let config = Config {
        agent_addr: format!("127.0.0.1:{}", agent.port),
        ..Config::default()
    };
    let streams = StreamsConfig {
        enabled: false,
        service: "checked-fn".into(),
        env: "none".into(),
        exchange: None,
    };
    let tracer = Tracer::new(config, Chain::new(), streams);

    let sqs = event_fixture("sqs-batch.json");
    Invocation::start(&tracer, Some(&sqs), runtime("req-sqs")).finish();
    let api = event_fixture("api-gateway.json");
    Invocation::start(&tracer, Some(&api), runtime("req-api")).finish();
    let failing = Invocation::start(&tracer, EventInput::None, runtime("req-err"));
    failing.fail(&ErrorInfo {
        r#type: "Error".into(),
        message: "boom".into(),
        stack: Some("here".into()),
    });
    failing.finish();
    tracer.flush().await;

    let traces = tokio::task::spawn_blocking(move || {
        let traces = agent.wait_for_spans(5, Duration::from_secs(30));
        agent.assert_checks_passed(&CHECKS, 3);
        traces
    })
    .await
    .expect("test agent queries");

    let spans = flatten(&traces);
    let sqs_span = find(&spans, "aws.sqs", "req-sqs");
    let lambda = find(&spans, "aws.lambda", "req-sqs");
    assert_eq!(sqs_span["trace_id"], 2684756524522091840_u64);
    assert_eq!(sqs_span["parent_id"], 7431398482019833808_u64);
    assert_eq!(lambda["parent_id"], sqs_span["span_id"]);
    assert_eq!(lambda["type"], "serverless");
    assert!(
        lambda["span_links"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "the batch's other producer is linked: {lambda:#}"
    );
    let api_lambda = find(&spans, "aws.lambda", "req-api");
    assert_eq!(
        api_lambda["meta"]["function_trigger.event_source"],
        "api-gateway"
    );
    let err = find(&spans, "aws.lambda", "req-err");
    assert_eq!(err["error"], 1);
    assert_eq!(err["meta"]["error.message"], "boom");
}
