//! `ddlambda demo` end to end: the producer → SQS → relay → Kinesis → consumer pipeline on the
//! local platform, with the extension attached to every function, first against the embedded
//! stand-ins and then against moto through the same SDK calls. Asserts on the `--json` report:
//! one trace across every function's `aws.lambda` span, each consumer parented (through its
//! inferred span) on the invocation that produced its messages, and the pathway edges chained by
//! hash, with sketch counts equal to the checkpoints set.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ddlambda_tests::bin_path;
use ddlambda_tests::command::{output_text, run};
use ddlambda_tests::moto::Moto;
use serde_json::Value;

/// 12 messages: two SQS batches (two relay invocations), one Kinesis batch.
const MESSAGES: usize = 12;

fn run_demo(dir: &Path, extra: &[&str]) -> Value {
    let ddlambda = bin_path("ddlambda");
    for bin in [
        "datadog-agent",
        "demo-producer",
        "demo-relay",
        "kinesis-consumer",
    ] {
        bin_path(bin);
    }
    let bin_dir = ddlambda.parent().expect("target dir");
    let json = dir.join("demo.json");
    let out = run(
        Command::new(&ddlambda)
            .arg("demo")
            .args(["--messages", &MESSAGES.to_string()])
            .arg("--json")
            .arg(&json)
            .arg("--bin-dir")
            .arg(bin_dir)
            .args(extra)
            .current_dir(dir),
        Duration::from_secs(240),
    );
    let text = output_text(&out);
    assert!(out.status.success(), "ddlambda demo failed:\n{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Trace "), "no waterfall:\n{text}");
    assert!(
        stdout.contains("Pathway map (4 edges)"),
        "no pathway map:\n{text}"
    );
    let report: Value = serde_json::from_slice(
        &std::fs::read(&json).unwrap_or_else(|e| panic!("{}: {e}\n{text}", json.display())),
    )
    .expect("the JSON report parses");
    assert_eq!(report["bad_lines"], Value::Array(vec![]), "{text}");
    report
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

/// The invocations' `aws.lambda` spans all sit in the first trace, correctly parented.
fn assert_connected_trace(report: &Value) {
    let invocations = report["invocations"].as_array().expect("invocations");
    let count = |f: &str| invocations.iter().filter(|i| i["function"] == f).count();
    assert_eq!(count("demo-producer"), 1, "{invocations:?}");
    assert_eq!(
        count("demo-relay"),
        MESSAGES.div_ceil(10),
        "{invocations:?}"
    );
    assert_eq!(count("demo-consumer"), 1, "{invocations:?}");

    let trace = &report["traces"][0];
    let spans = trace["spans"].as_array().expect("spans");
    let by_id = |id: u64| spans.iter().find(|s| u64_of(&s["span_id"]) == id);
    let lambda_of = |request_id: &Value| {
        spans
            .iter()
            .find(|s| s["name"] == "aws.lambda" && &s["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no aws.lambda span for {request_id} in trace {trace:#}"))
    };
    let parent_of = |s: &Value| by_id(u64_of(&s["parent_id"]));

    let producer = invocations
        .iter()
        .find(|i| i["function"] == "demo-producer")
        .map(|i| lambda_of(&i["request_id"]))
        .expect("producer span");
    assert_eq!(producer["parent_id"], 0, "the producer starts the trace");
    assert!(trace["trace_id_high"].is_string(), "128-bit trace id");

    let relays: Vec<&Value> = invocations
        .iter()
        .filter(|i| i["function"] == "demo-relay")
        .map(|i| lambda_of(&i["request_id"]))
        .collect();
    for relay in &relays {
        let inferred = parent_of(relay).expect("relay span has a parent in the trace");
        assert_eq!(inferred["name"], "aws.sqs", "{inferred}");
        assert_eq!(
            inferred["parent_id"], producer["span_id"],
            "the SQS span continues the producer's context"
        );
    }
    let consumer = invocations
        .iter()
        .find(|i| i["function"] == "demo-consumer")
        .map(|i| lambda_of(&i["request_id"]))
        .expect("consumer span");
    let inferred = parent_of(consumer).expect("consumer span has a parent in the trace");
    assert_eq!(inferred["name"], "aws.kinesis", "{inferred}");
    assert!(
        relays.iter().any(|r| r["span_id"] == inferred["parent_id"]),
        "the Kinesis span continues a relay invocation's context: {inferred}"
    );
}

/// producer out(sqs) → relay in(sqs) → relay out(kinesis) → consumer in(kinesis), chained by
/// hash, one checkpoint per message on every edge.
fn assert_pathway(report: &Value) {
    let edges = report["pathway"].as_array().expect("pathway");
    assert_eq!(edges.len(), 4, "{edges:#?}");
    let expected = [
        ("demo-producer", "direction:out", "type:sqs"),
        ("demo-relay", "direction:in", "type:sqs"),
        ("demo-relay", "direction:out", "type:kinesis"),
        ("demo-consumer", "direction:in", "type:kinesis"),
    ];
    let mut parent = 0;
    for (i, (edge, (service, direction, kind))) in edges.iter().zip(expected).enumerate() {
        let tags: Vec<&str> = edge["edge_tags"]
            .as_array()
            .expect("edge_tags")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(edge["service"], service, "{edge:#}");
        assert!(
            tags.contains(&direction) && tags.contains(&kind),
            "{edge:#}"
        );
        assert_eq!(edge["depth"], i, "{edge:#}");
        assert_eq!(u64_of(&edge["parent_hash"]), parent, "{edge:#}");
        assert_eq!(edge["count"].as_f64(), Some(MESSAGES as f64), "{edge:#}");
        assert!(
            edge["pathway_latency_ms"]["p99"]
                .as_f64()
                .is_some_and(|v| v >= 0.0)
        );
        parent = u64_of(&edge["hash"]);
    }
}

#[test]
fn demo_on_the_embedded_stand_ins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = run_demo(dir.path(), &[]);
    assert_eq!(report["aws"], "embedded");
    assert_connected_trace(&report);
    assert_pathway(&report);
}

#[test]
fn demo_on_moto() {
    let Some(moto) = Moto::start() else { return };
    let url = moto.url.clone();

    let dir = tempfile::tempdir().expect("tempdir");
    let report = run_demo(dir.path(), &["--aws-endpoint", &url]);
    assert_eq!(report["aws"], url.as_str());
    assert!(
        report["queue_arn"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:aws:sqs:us-east-1:")),
        "{}",
        report["queue_arn"]
    );
    assert_connected_trace(&report);
    assert_pathway(&report);
}
