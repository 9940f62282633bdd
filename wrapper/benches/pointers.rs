//! Span-pointer cost in the wrapper, against two baselines measured in the same run: parsing
//! the same event into a `serde_json::Value` (which the wrapper does anyway) and
//! datadog-lambda 8.130.0's own `calculate_span_pointers` (when the tracer venv is installed).
//!
//! `cargo bench -p ddlambda --bench pointers`

mod support;

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use ddlambda::spans::pointers;
use ddlambda::trigger::EventSource;
use serde_json::{Value, json};

/// Nanoseconds per call of `f`, best of 5 rounds of `n` calls.
fn time(n: u64, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// A DynamoDB stream batch of `records` (Lambda's default batch size is 100), composite keys.
fn dynamodb_batch(records: usize) -> Value {
    let rs: Vec<Value> = (0..records)
        .map(|i| {
            json!({
                "eventID": format!("{i:032x}"),
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "eventSourceARN": "arn:aws:dynamodb:us-east-2:123456789012:table/orders/stream/2024-06-10T19:26:16.525",
                "dynamodb": {
                    "Keys": {"pk": {"S": format!("customer#{}", i % 17)}, "sk": {"N": i.to_string()}},
                    "NewImage": {
                        "pk": {"S": format!("customer#{}", i % 17)}, "sk": {"N": i.to_string()},
                        "total": {"N": "12.50"}, "status": {"S": "placed"},
                    },
                    "SequenceNumber": format!("44215845000000000{i:011}"),
                    "SizeBytes": 120,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            })
        })
        .collect();
    json!({ "Records": rs })
}

fn s3_put() -> Value {
    json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2024-06-10T19:26:16.525Z", "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": "photos-bucket", "arn": "arn:aws:s3:::photos-bucket"},
            "object": {"key": "2024/cat.jpg", "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e"},
        },
    }]})
}

/// datadog-lambda's `calculate_span_pointers` on `events`, ns per event each, if the tracer
/// venv is there. Its temporary DynamoDB stream-type metric is stubbed out: only the pointers
/// are timed.
fn datadog_lambda_ns(events: &[&Value]) -> Option<Vec<f64>> {
    let python = support::tracer_python();
    let script = r#"
import json, sys, time
import datadog_lambda.span_pointers as sp
from datadog_lambda.trigger import parse_event_source
sp.submit_dynamodb_stream_type_metric = lambda event: None
for event in json.loads(sys.stdin.read()):
    source = parse_event_source(event)
    n = max(20, 20000 // len(event["Records"]))
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter_ns()
        for _ in range(n):
            sp.calculate_span_pointers(source, event)
        best = min(best, (time.perf_counter_ns() - t) / n)
    print(best)
"#;
    let mut child = Command::new(python)
        .arg("-c")
        .arg(script)
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let input = serde_json::to_vec(events).ok()?;
    std::io::Write::write_all(child.stdin.as_mut()?, &input).ok()?;
    drop(child.stdin.take());
    let out = child.wait_with_output().ok()?;
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    (times.len() == events.len()).then_some(times)
}

fn main() {
    let s3 = s3_put();
    let batch = dynamodb_batch(100);
    let cases = [
        ("S3, 1 record", &s3, 1usize),
        ("DynamoDB, 100 records", &batch, 100),
    ];
    let python = datadog_lambda_ns(&cases.map(|(_, event, _)| event));
    println!("span pointers per event (best of 5)");
    for (i, (label, event, records)) in cases.iter().enumerate() {
        let raw = serde_json::to_vec(event).expect("JSON");
        let source = EventSource::detect(event);
        let n = 200_000 / *records as u64;
        let ours = time(n, || {
            black_box(pointers::for_event(black_box(event), source));
        });
        let parse = time(n, || {
            black_box(serde_json::from_slice::<Value>(black_box(&raw)).expect("JSON"));
        });
        println!("  {label} ({} bytes):", raw.len());
        println!(
            "    ddlambda pointers:            {ours:10.0} ns ({:.0} ns per record)",
            ours / *records as f64
        );
        println!(
            "    parsing the event (baseline): {parse:10.0} ns  → pointers add {:.0}% to it",
            100.0 * ours / parse
        );
        match &python {
            Some(py) => println!(
                "    datadog-lambda 8.130.0:       {:10.0} ns  → ours is {:.0}x faster",
                py[i],
                py[i] / ours
            ),
            None => println!(
                "    datadog-lambda baseline: tracer venv not installed (tests/peers/install)"
            ),
        }
    }
}
