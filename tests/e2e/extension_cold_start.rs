//! The `aws.lambda.cold_start` span when one sandbox serves several invocations: the
//! `sqs-consumer` example runs three times on the local Lambda platform with the ddlambda
//! extension, and the cold-start span the extension writes from `platform.initStart` /
//! `initReport` must hang under the FIRST invocation's `aws.lambda` span, in its trace (with
//! the trace's `_dd.p.tid`), however late the first invocation's telemetry reaches the
//! extension relative to the wrapper's end signal and the next INVOKEs.

use std::time::Duration;

use ddlambda_platform::{InvokeOptions, Platform, ShutdownReason, Status};
use ddlambda_tests::local_output::{id, spans};
use ddlambda_tests::{bin_path, event_fixture, free_port};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cold_start_span_joins_the_first_invocations_trace_across_three_invocations() {
    let function = bin_path("sqs-consumer");
    let extension = bin_path("datadog-agent");
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
        .build()
        .await
        .expect("platform");

    // The first batch carries no trace context: the wrapper starts a 128-bit trace, so the
    // cold-start span must carry its `_dd.p.tid`. The others continue their producers' traces.
    let mut first = event_fixture("sqs-batch.json");
    for record in first["Records"].as_array_mut().into_iter().flatten() {
        record["messageAttributes"] = Value::Object(Default::default());
    }
    let later = event_fixture("sqs-batch.json");
    let mut request_ids = Vec::new();
    for event in [&first, &later, &later] {
        let result = platform
            .invoke(event.to_string().into_bytes(), InvokeOptions::default())
            .await
            .expect("invoke");
        assert_eq!(result.report.status, Status::Success, "{result:?}");
        request_ids.push(result.request_id.clone());
    }
    tokio::time::timeout(
        Duration::from_secs(30),
        platform.shutdown(ShutdownReason::Spindown),
    )
    .await
    .expect("shutdown in time");

    let spans = spans(&output);
    let sink = || std::fs::read_to_string(&output).unwrap_or_default();
    let lambdas: Vec<&Value> = spans.iter().filter(|s| s["name"] == "aws.lambda").collect();
    assert_eq!(
        lambdas.len(),
        3,
        "one aws.lambda per invocation; sink:\n{}",
        sink()
    );
    let first_lambda = lambdas
        .iter()
        .find(|s| s["meta"]["request_id"] == request_ids[0].as_str())
        .unwrap_or_else(|| panic!("no aws.lambda for the first request; sink:\n{}", sink()));
    let trace_id = id(&first_lambda["trace_id"]);
    let tid = spans
        .iter()
        .filter(|s| id(&s["trace_id"]) == trace_id)
        .find_map(|s| s["meta"]["_dd.p.tid"].as_str())
        .unwrap_or_else(|| panic!("the first trace is 128-bit; sink:\n{}", sink()));

    let colds: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "aws.lambda.cold_start")
        .collect();
    assert_eq!(
        colds.len(),
        1,
        "one cold start per sandbox; sink:\n{}",
        sink()
    );
    let cold = colds[0];
    assert_eq!(
        (id(&cold["trace_id"]), id(&cold["parent_id"])),
        (trace_id, id(&first_lambda["span_id"])),
        "the cold-start span is a child of the first invocation's aws.lambda: {cold:#}"
    );
    assert_eq!(cold["meta"]["_dd.p.tid"], tid, "{cold:#}");
    assert_eq!(cold["meta"]["_dd.ddlambda.source"], "telemetry");
    assert!(id(&cold["duration"]) > 0, "{cold:#}");
}
