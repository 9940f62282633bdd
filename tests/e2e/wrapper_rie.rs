//! The `sqs-consumer` example under the AWS Runtime Interface Emulator, its spans sent to
//! ddapm-test-agent (no extension runs under the RIE here, so the wrapper talks to the agent
//! directly): the flushed aws.lambda span is a child of the producer's span, with the inferred
//! aws.sqs span between them.

use std::path::Path;
use std::time::Duration;

use ddlambda_tests::http::Response;
use ddlambda_tests::peers_tracer::{TestAgent, flatten};
use ddlambda_tests::rie::Rie;
use ddlambda_tests::{bin_path, free_port, wait_until};
use serde_json::{Value, json};

const PRODUCER_TRACE: u64 = 5_500_000_000_000_000_001;
const PRODUCER_SPAN: u64 = 7_700_000_000_000_000_002;

fn sqs_event() -> Value {
    let carrier = json!({
        "x-datadog-trace-id": PRODUCER_TRACE.to_string(),
        "x-datadog-parent-id": PRODUCER_SPAN.to_string(),
        "x-datadog-sampling-priority": "1",
    });
    json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "rh", "body": "{\"order\": 1}",
        "attributes": {"SentTimestamp": "1700000000000", "SenderId": "S", "ApproximateReceiveCount": "1",
                       "ApproximateFirstReceiveTimestamp": "1700000000001"},
        "messageAttributes": {"_datadog": {"dataType": "String", "stringValue": carrier.to_string(),
                              "stringListValues": [], "binaryListValues": []}},
        "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders", "awsRegion": "us-east-1"
    }]})
}

/// The `sqs-consumer` example under the RIE with `env`, invoked once with [`sqs_event`].
fn invoke_consumer(rie: &Path, env: &[(&str, String)]) -> (Rie, Response) {
    let rie = Rie::start(rie, &bin_path("sqs-consumer"), &[], env);
    let response = rie.invoke_when_ready(sqs_event().to_string().as_bytes());
    (rie, response)
}

#[test]
fn sqs_consumer_under_the_rie_continues_the_producer_trace() {
    let Some(rie) = ddlambda_tests::rie() else {
        return;
    };
    let Some(agent) = TestAgent::start(None, &["trace_count_header", "meta_tracer_version_header"])
    else {
        return;
    };
    let (_rie, response) = invoke_consumer(
        &rie,
        &[
            ("DD_TRACE_AGENT_URL", agent.url()),
            ("DD_SERVICE", "orders-consumer".to_owned()),
        ],
    );
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.json(), json!({"batchItemFailures": []}));

    let traces = agent.wait_for_spans(2, Duration::from_secs(30));
    let spans = flatten(&traces);
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {traces:#}"))
            .clone()
    };
    let sqs = by_name("aws.sqs");
    let lambda = by_name("aws.lambda");
    let child = by_name("process_message");
    assert_eq!(sqs["trace_id"], PRODUCER_TRACE);
    assert_eq!(
        sqs["parent_id"], PRODUCER_SPAN,
        "the producer's span parents aws.sqs"
    );
    assert_eq!(sqs["service"], "orders");
    assert_eq!(sqs["meta"]["peer.service"], "orders-consumer");
    assert_eq!(lambda["trace_id"], PRODUCER_TRACE);
    assert_eq!(
        lambda["parent_id"], sqs["span_id"],
        "aws.sqs parents aws.lambda"
    );
    assert_eq!(lambda["service"], "orders-consumer");
    assert_eq!(lambda["meta"]["cold_start"], "true");
    assert_eq!(lambda["meta"]["function_trigger.event_source"], "sqs");
    assert_eq!(
        child["parent_id"], lambda["span_id"],
        "the tracing span is a child of aws.lambda"
    );
}

#[test]
fn without_an_agent_spans_are_json_lines_on_stdout() {
    let Some(rie) = ddlambda_tests::rie() else {
        return;
    };
    let (rie, response) = invoke_consumer(
        &rie,
        // Nothing listens there: the hello fails and spans go to stdout.
        &[(
            "DD_TRACE_AGENT_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )],
    );
    assert_eq!(response.status, 200);

    let line = wait_until(Duration::from_secs(30), || {
        rie.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v.get("traces").is_some())
    })
    .unwrap_or_else(|| panic!("no traces line on stdout:\n{}", rie.log()));
    let spans = line["traces"][0].as_array().expect("one trace of spans");
    let lambda = spans
        .iter()
        .find(|s| s["name"] == "aws.lambda")
        .expect("aws.lambda");
    assert_eq!(lambda["trace_id"], PRODUCER_TRACE);
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "aws.sqs" && s["parent_id"] == PRODUCER_SPAN)
    );
}
