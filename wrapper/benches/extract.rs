//! Extraction throughput: ddlambda's `Chain::decide` against datadog-lambda's
//! `extract_dd_trace_context` (8.130.0, the `tracer` peer venv) on the same events — every
//! fixture in `tests/fixtures/events/` — measured in the same run. Prints events per second for
//! both and their ratios (goal: ≥ 200x): parsed vs parsed, raw JSON vs raw JSON, and ddlambda
//! from raw JSON vs Python handed a parsed dict (as its runtime does). ddlambda runs twice on
//! parsed events: the full `Chain::decide`, and `Chain::decide_parent`, the same work as
//! datadog-lambda (the context parenting `aws.lambda`, without reading the rest of a batch for
//! span links, which Python does not do).
//!
//! Run: `cargo bench -p ddlambda --bench extract` (after `eval "$(tests/peers/install)"`).
//! To see where the time goes, run the built binary (`target/release/deps/extract-*`) with:
//! - `EXTRACT_BENCH_PER_EVENT=1`: ns per event for each fixture alone (warm caches);
//! - `EXTRACT_BENCH_PROFILE=<rounds>` (and `EXTRACT_BENCH_ONLY=<name part>`): only that many
//!   parsed rounds, for `valgrind --tool=callgrind`;
//! - `EXTRACT_BENCH_PARENT=1` with either: `Chain::decide_parent` instead of `Chain::decide`;
//! - `EXTRACT_BENCH_RUST_ONLY=1`: only ddlambda's parsed rows (quick before/after pairs).

mod support;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ddlambda::extract::{Chain, Decision, InvocationInfo};
use serde_json::Value;

const MEASURE: Duration = Duration::from_secs(3);

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/events")
}

fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/events")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("cases.json"))
        .collect();
    files.sort();
    files
}

/// Runs `round` (one pass over every event) until `MEASURE` elapses; events per second.
fn throughput(events_per_round: usize, mut round: impl FnMut()) -> f64 {
    for _ in 0..10 {
        round();
    }
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < MEASURE {
        round();
        rounds += 1;
    }
    (rounds as f64 * events_per_round as f64) / start.elapsed().as_secs_f64()
}

const PYTHON: &str = r#"
import json, logging, sys, time
logging.disable(logging.CRITICAL)
from datadog_lambda.tracing import extract_dd_trace_context
class Ctx:
    client_context = None
    aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
raws = [open(p, encoding="utf-8").read() for p in sys.argv[2:]]
events = [json.loads(r) for r in raws]
ctx = Ctx()
measure = float(sys.argv[1])
def rate(fn):
    for _ in range(3):
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < measure:
        fn()
        n += 1
    return n * len(events) / (time.perf_counter() - start)
def parsed():
    for e in events:
        extract_dd_trace_context(e, ctx)
def raw():
    for r in raws:
        extract_dd_trace_context(json.loads(r), ctx)
print(json.dumps({"parsed": rate(parsed), "raw": rate(raw)}))
"#;

fn python_rates(files: &[PathBuf]) -> Option<Value> {
    let python = support::tracer_python();
    if !python.is_file() {
        eprintln!(
            "NO BASELINE: {} is missing; run `eval \"$(tests/peers/install)\"`",
            python.display()
        );
        return None;
    }
    let out = Command::new(python)
        .args(["-c", PYTHON, &MEASURE.as_secs_f64().to_string()])
        .args(files)
        // Outside Lambda: no X-Ray fallback, as on the Rust side (no header).
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .env_remove("_X_AMZN_TRACE_ID")
        .env_remove("DD_TRACE_EXTRACTOR")
        .output()
        .expect("run python");
    if !out.status.success() {
        eprintln!(
            "python baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn main() {
    let files = fixture_files();
    if let Some(rounds) = std::env::var("EXTRACT_BENCH_PROFILE")
        .ok()
        .and_then(|r| r.parse::<u32>().ok())
    {
        profile_rounds(&files, rounds);
        return;
    }
    if std::env::var_os("EXTRACT_BENCH_PER_EVENT").is_some() {
        per_event(&files);
        return;
    }
    let raws: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("fixture"))
        .collect();
    let events: Vec<Value> = raws
        .iter()
        .map(|r| serde_json::from_str(r).expect("fixture JSON"))
        .collect();
    let chain = Chain::new();
    let info = InvocationInfo::default();

    let rust_parsed = throughput(events.len(), || {
        for event in &events {
            black_box(chain.decide(black_box(event), &info, None));
        }
    });
    let rust_parent = throughput(events.len(), || {
        for event in &events {
            black_box(chain.decide_parent(black_box(event), &info, None));
        }
    });
    if std::env::var_os("EXTRACT_BENCH_RUST_ONLY").is_some() {
        println!(
            "decide {:.0} ns/event, decide_parent {:.0} ns/event",
            1e9 / rust_parsed,
            1e9 / rust_parent
        );
        return;
    }
    let rust_raw = throughput(raws.len(), || {
        for raw in &raws {
            let event: Value = serde_json::from_str(black_box(raw)).expect("JSON");
            black_box(chain.decide(&event, &info, None));
        }
    });

    println!(
        "extraction over {} events (tests/fixtures/events)",
        events.len()
    );
    println!(
        "  ddlambda, parsed events:       {rust_parsed:>12.0} events/s  ({:.0} ns/event)",
        1e9 / rust_parsed
    );
    println!(
        "  ddlambda, parsed, parent only: {rust_parent:>12.0} events/s  ({:.0} ns/event)",
        1e9 / rust_parent
    );
    println!(
        "  ddlambda, from raw JSON:       {rust_raw:>12.0} events/s  ({:.0} ns/event)",
        1e9 / rust_raw
    );
    if let Some(py) = python_rates(&files) {
        let py_parsed = py["parsed"].as_f64().unwrap_or(f64::NAN);
        let py_raw = py["raw"].as_f64().unwrap_or(f64::NAN);
        println!(
            "  datadog-lambda, parsed events: {py_parsed:>12.0} events/s  ({:.0} ns/event)",
            1e9 / py_parsed
        );
        println!(
            "  datadog-lambda, from raw JSON: {py_raw:>12.0} events/s  ({:.0} ns/event)",
            1e9 / py_raw
        );
        println!(
            "  ratio, parsed vs parsed:         {:>8.1}x (goal >= 200x)",
            rust_parsed / py_parsed
        );
        println!(
            "  ratio, same work (parent only):  {:>8.1}x (decide_parent vs Python parsed)",
            rust_parent / py_parsed
        );
        println!(
            "  ratio, raw vs raw:               {:>8.1}x",
            rust_raw / py_raw
        );
        // Python's runtime hands the handler a parsed dict; ddlambda's layer has the bytes.
        println!(
            "  ratio, raw vs Python parsed:     {:>8.1}x",
            rust_raw / py_parsed
        );
    }
}

/// `Chain::decide`, or `Chain::decide_parent` with `EXTRACT_BENCH_PARENT` set.
fn decider() -> fn(&Chain, &Value, &InvocationInfo) -> Decision {
    if std::env::var_os("EXTRACT_BENCH_PARENT").is_some() {
        |chain, event, info| chain.decide_parent(event, info, None)
    } else {
        |chain, event, info| chain.decide(event, info, None)
    }
}

/// Nanoseconds per event for each fixture alone, parsed path, warm caches
/// (`EXTRACT_BENCH_PER_EVENT=1`).
fn per_event(files: &[PathBuf]) {
    let chain = Chain::new();
    let info = InvocationInfo::default();
    let decide = decider();
    let mut rows = Vec::new();
    for path in files {
        let raw = std::fs::read_to_string(path).expect("fixture");
        let event: Value = serde_json::from_str(&raw).expect("fixture JSON");
        let n = 20_000u32;
        let start = Instant::now();
        for _ in 0..n {
            black_box(decide(&chain, black_box(&event), &info));
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
        rows.push((
            ns,
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        ));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = rows.iter().map(|r| r.0).sum();
    for (ns, name) in &rows {
        println!("{ns:>8.0} ns  {:>5.1}%  {name}", ns / total * 100.0);
    }
    println!("mean {:.0} ns", total / rows.len() as f64);
}

/// A fixed number of parsed rounds and nothing else, for `valgrind --tool=callgrind`
/// (`EXTRACT_BENCH_PROFILE=<rounds>`); `EXTRACT_BENCH_ONLY=<text>` keeps the fixtures whose
/// file name contains it.
fn profile_rounds(files: &[PathBuf], rounds: u32) {
    let only = std::env::var("EXTRACT_BENCH_ONLY").unwrap_or_default();
    let events: Vec<Value> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|name| name.to_string_lossy().contains(&only))
        })
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("JSON"))
        .collect();
    let chain = Chain::new();
    let info = InvocationInfo::default();
    let decide = decider();
    for _ in 0..rounds {
        for event in &events {
            black_box(decide(&chain, black_box(event), &info));
        }
    }
}
