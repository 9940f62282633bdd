//! The `producer` example under the AWS Runtime Interface Emulator, its spans sent to
//! ddapm-test-agent: its request type is `Deserialize` only, and the `_datadog` carrier it
//! answers with continues the trace from its `aws.lambda` span, as the span the agent received
//! says.

use std::time::Duration;

use ddlambda_tests::bin_path;
use ddlambda_tests::peers_tracer::{TestAgent, flatten};
use ddlambda_tests::rie::Rie;
use serde_json::{Value, json};

#[test]
fn producer_under_the_rie_injects_its_aws_lambda_context() {
    let Some(rie) = ddlambda_tests::rie() else {
        return;
    };
    let Some(agent) = TestAgent::start(None, &["trace_count_header", "meta_tracer_version_header"])
    else {
        return;
    };
    let function = bin_path("producer");
    let rie = Rie::start(
        &rie,
        &function,
        &[],
        &[
            ("DD_TRACE_AGENT_URL", agent.url()),
            ("DD_SERVICE", "orders-producer".to_owned()),
        ],
    );
    let body = json!({
        "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
        "message": "{\"order\": 1}",
    })
    .to_string();
    let response = rie.invoke_when_ready(body.as_bytes());
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let input = response.json();
    assert_eq!(
        input["QueueUrl"],
        "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
    );
    assert_eq!(input["MessageBody"], "{\"order\": 1}");
    let attribute = &input["MessageAttributes"]["_datadog"];
    assert_eq!(attribute["DataType"], "String", "{input:#}");
    let carrier: Value = serde_json::from_str(
        attribute["StringValue"]
            .as_str()
            .expect("a JSON string carrier"),
    )
    .expect("the carrier is JSON");

    let traces = agent.wait_for_spans(1, Duration::from_secs(30));
    let lambda = flatten(&traces)
        .into_iter()
        .find(|s| s["name"] == "aws.lambda")
        .unwrap_or_else(|| panic!("no aws.lambda in {traces:#}"));
    // A zero parent id may be left out of the span.
    assert_eq!(lambda["parent_id"].as_u64().unwrap_or(0), 0, "a new root");
    assert_eq!(lambda["service"], "orders-producer");
    assert_eq!(
        carrier["x-datadog-trace-id"],
        lambda["trace_id"].to_string()
    );
    assert_eq!(
        carrier["x-datadog-parent-id"],
        lambda["span_id"].to_string()
    );
    assert_eq!(carrier["x-datadog-sampling-priority"], "1");
    let tid = lambda["meta"]["_dd.p.tid"]
        .as_str()
        .expect("a 128-bit trace");
    assert_eq!(
        carrier["traceparent"],
        format!(
            "00-{tid}{:016x}-{:016x}-01",
            lambda["trace_id"].as_u64().unwrap(),
            lambda["span_id"].as_u64().unwrap()
        )
    );
}
