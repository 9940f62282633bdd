//! Data-streams checkpoint cost in the wrapper (goal ≤ 1 µs per checkpoint), measured side by
//! side with ddtrace 4.16.0's own `DataStreamsCtx.set_checkpoint` (the same work in the Python
//! tracer, timed in the same run when the tracer venv is installed).
//!
//! `cargo bench -p ddlambda --bench streams`

mod support;

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use ddlambda::streams::{self, Parent, Recorder, StreamsConfig};
use serde_json::{Value, json};

fn config() -> StreamsConfig {
    StreamsConfig {
        enabled: true,
        service: "orders-consumer".into(),
        env: "prod".into(),
        exchange: None,
    }
}

/// Nanoseconds per call of `f`, best of 5 rounds of `n` calls.
fn time(n: u64, mut f: impl FnMut(u64)) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for i in 0..n {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn sqs_batch(records: usize) -> Value {
    let ctx = json!({
        "x-datadog-trace-id": "1234", "x-datadog-parent-id": "5678",
        "dd-pathway-ctx-base64": "y8c/bPLAuyaAoKv++WKAoKv++WI=",
    })
    .to_string();
    let rs: Vec<Value> = (0..records)
        .map(|i| {
            json!({
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
                "body": format!("{{\"order\":{i}}}"),
                "messageAttributes": {"_datadog": {"dataType": "String", "stringValue": ctx}},
            })
        })
        .collect();
    json!({ "Records": rs })
}

/// ddtrace's checkpoint cost in ns, if the tracer venv is there.
fn ddtrace_ns() -> Option<f64> {
    let python = support::tracer_python();
    let script = r#"
import time, types
from ddtrace.internal.datastreams.processor import DataStreamsCtx
class P:
    def on_checkpoint_creation(self, *a, **k): pass
p = P()
tags = ["direction:in", "topic:arn:aws:sqs:us-east-1:123456789012:orders", "type:sqs"]
best = float("inf")
for _ in range(5):
    n = 100000
    t = time.perf_counter_ns()
    for i in range(n):
        ctx = DataStreamsCtx(p, 2791036541516892107, 1700000000.0, 1700000000.0)
        ctx.set_checkpoint(tags, now_sec=1700000001.5)
    best = min(best, (time.perf_counter_ns() - t) / n)
print(best)
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .env("DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED", "false")
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    let parent = ddlambda::wire::pathway::Pathway::from_base64("y8c/bPLAuyaAoKv++WKAoKv++WI=").ok();
    let mut rec = Recorder::new(config());
    let topic = "topic:arn:aws:sqs:us-east-1:123456789012:orders";
    let checkpoint = time(1_000_000, |i| {
        let tags = vec![
            "direction:in".to_owned(),
            topic.to_owned(),
            "type:sqs".to_owned(),
        ];
        black_box(rec.checkpoint(parent.as_ref(), tags, 100, 1_700_000_001_500_000_000));
        if i % 4096 == 0 {
            black_box(rec.take());
        }
    });

    // The produce hook's path: lock, parent lookup, tags, hash, push.
    streams::begin_invocation(&config(), &sqs_batch(1), None);
    let produce = time(1_000_000, |i| {
        black_box(streams::produce_with(
            Parent::FirstRecord,
            "sqs",
            "orders-out",
            100,
        ));
        if i % 4096 == 0 {
            black_box(streams::finish_invocation());
            streams::begin_invocation(&config(), &sqs_batch(1), None);
        }
    });
    black_box(streams::finish_invocation());

    // Consume: per record of a 10-record batch, carrier parsing included.
    let batch = sqs_batch(10);
    let mut rec = Recorder::new(config());
    let consume = time(20_000, |_| {
        black_box(rec.consume(&batch, 1_700_000_001_500_000_000));
        black_box(rec.take());
    }) / 10.0;

    // The payload the wrapper sends for a 10-record batch.
    let mut rec = Recorder::new(config());
    rec.consume(&batch, 1_700_000_001_500_000_000);
    let cps = rec.take();
    let encode = time(20_000, |_| {
        black_box(cps.encode());
    });

    println!("data-streams checkpoint cost in the wrapper (best of 5)");
    println!("  checkpoint (hash + record):            {checkpoint:8.1} ns");
    println!("  produce hook path (lock, tags, hash):  {produce:8.1} ns");
    println!("  consume, per record (carrier parsed):  {consume:8.1} ns");
    println!(
        "  encode 10 checkpoints (msgpack):       {encode:8.1} ns ({} bytes)",
        cps.encode().len()
    );
    match ddtrace_ns() {
        Some(py) => println!(
            "  ddtrace 4.16.0 set_checkpoint:         {py:8.1} ns  → ours is {:.1}x faster",
            py / checkpoint
        ),
        None => println!("  ddtrace baseline: tracer venv not installed (tests/peers/install)"),
    }
}
