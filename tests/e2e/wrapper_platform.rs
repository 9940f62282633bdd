//! The `sqs-consumer` example on the local Lambda platform with the ddlambda extension: the
//! wrapper says hello, sends its spans after the response with the request id and the end
//! marker, and the extension flushes them (to its local sink, a file here). The flushed
//! aws.lambda span is a child of the producer's span, with the inferred aws.sqs span between.

use std::time::Duration;

use ddlambda_platform::{InvokeOptions, Platform, ShutdownReason, Status};
use ddlambda_tests::local_output::{id, spans};
use ddlambda_tests::{bin_path, free_port};
use serde_json::{Value, json};

const PRODUCER_TRACE: u64 = 4_400_000_000_000_000_003;
const PRODUCER_SPAN: u64 = 6_600_000_000_000_000_004;
const OTHER_TRACE: u64 = 1_234_567;
const OTHER_SPAN: u64 = 7_654_321;

fn record(trace: u64, span: u64) -> Value {
    let carrier = json!({
        "x-datadog-trace-id": trace.to_string(),
        "x-datadog-parent-id": span.to_string(),
        "x-datadog-sampling-priority": "1",
    });
    json!({
        "messageId": format!("m-{trace}"), "receiptHandle": "rh", "body": "payload",
        "attributes": {"SentTimestamp": "1700000000000", "SenderId": "S"},
        "messageAttributes": {"_datadog": {"dataType": "String", "stringValue": carrier.to_string()}},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders", "awsRegion": "us-east-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_consumer_with_the_extension_continues_the_producer_trace() {
    let function = bin_path("sqs-consumer");
    let extension = bin_path("datadog-agent");
    for bin in [&function, &extension] {
        assert!(bin.is_file(), "build the binaries first: {}", bin.display());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("sink.jsonl");
    let agent_port = free_port().to_string();
    let platform = Platform::builder()
        .function(&function)
        .extension(&extension)
        .function_name("orders-consumer")
        .env("DD_APM_RECEIVER_PORT", &agent_port)
        .env("DD_TRACE_AGENT_PORT", &agent_port)
        .env("DD_DOGSTATSD_PORT", free_port().to_string())
        .env("DDLAMBDA_TELEMETRY_PORT", free_port().to_string())
        .env("DDLAMBDA_TELEMETRY_HOST", "127.0.0.1")
        .env("DDLAMBDA_LOCAL_OUTPUT", output.display().to_string())
        .env("DD_LOG_LEVEL", "debug")
        .build()
        .await
        .expect("platform");

    let event = json!({"Records": [record(PRODUCER_TRACE, PRODUCER_SPAN), record(OTHER_TRACE, OTHER_SPAN)]});
    let result = platform
        .invoke(event.to_string().into_bytes(), InvokeOptions::default())
        .await
        .expect("invoke");
    assert_eq!(result.report.status, Status::Success, "{result:?}");
    let body: Value = serde_json::from_slice(result.response().expect("response")).expect("json");
    assert_eq!(body, json!({"batchItemFailures": []}));
    let request_id = result.request_id.clone();
    tokio::time::timeout(
        Duration::from_secs(30),
        platform.shutdown(ShutdownReason::Spindown),
    )
    .await
    .expect("shutdown in time");

    let spans = spans(&output);
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| {
                let text = std::fs::read_to_string(&output).unwrap_or_default();
                panic!("no {name} flushed; sink:\n{text}")
            })
            .clone()
    };
    let sqs = find("aws.sqs");
    let lambda = find("aws.lambda");
    assert_eq!(id(&sqs["trace_id"]), PRODUCER_TRACE);
    assert_eq!(
        id(&sqs["parent_id"]),
        PRODUCER_SPAN,
        "the producer's span parents aws.sqs"
    );
    assert_eq!(id(&lambda["trace_id"]), PRODUCER_TRACE);
    assert_eq!(
        lambda["parent_id"], sqs["span_id"],
        "aws.sqs parents aws.lambda"
    );
    assert_eq!(lambda["meta"]["request_id"], request_id.as_str());
    assert_eq!(lambda["meta"]["cold_start"], "true");
    let child = find("process_message");
    assert_eq!(child["parent_id"], lambda["span_id"]);
    let links = lambda["span_links"].to_string();
    assert!(
        links.contains(&OTHER_SPAN.to_string()),
        "the second producer is a span link: {lambda:#}"
    );
}
