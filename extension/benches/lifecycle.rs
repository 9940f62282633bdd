//! Lifecycle benchmarks for `datadog-agent`, side by side with a baseline measured in the same
//! run. Run with `cargo bench -p ddlambda-extension --bench lifecycle`.
//!
//! - init: exec → first `/next`, against a no-op extension built on the `lambda-extension`
//!   crate (this same bench binary, re-executed in the baseline role);
//! - post-runtime duration: `runtimeDone` delivered → the next `/next`, flushing 1000 spans to
//!   a loopback intake;
//! - idle RSS, and peak RSS under a 500 MB flood against the buffer bound.
//!
//! Both extensions run against the same scripted Extensions API (`tests/support`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

const ROLE: &str = "DDLAMBDA_BENCH_ROLE";

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("noop-extension") {
        return noop_extension();
    }
    // `cargo bench` passes `--bench`; nothing to filter.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // `DDLAMBDA_BENCH_ONLY=init|post_runtime|memory` runs one section.
    let only = std::env::var("DDLAMBDA_BENCH_ONLY").ok();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    rt.block_on(async {
        if run("init") {
            init().await;
        }
        if run("post_runtime") {
            post_runtime().await;
        }
        if run("memory") {
            memory().await;
        }
    });
}

/// The baseline: the smallest extension the `lambda-extension` crate makes.
fn noop_extension() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let handler =
            lambda_extension::service_fn(|event: lambda_extension::LambdaEvent| async move {
                if let lambda_extension::NextEvent::Shutdown(_) = event.next {
                    std::process::exit(0);
                }
                Ok::<(), lambda_extension::Error>(())
            });
        let _ = lambda_extension::Extension::new()
            .with_events_processor(handler)
            .run()
            .await;
    });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Spawns `cmd`, returns exec → first `/next`, then shuts it down.
async fn one_init(api: &FakeLambda, ours: bool) -> Duration {
    let start_calls = api.next_calls();
    let started;
    let mut child = if ours {
        let ext = Extension::start(api, &[("DD_LOG_LEVEL", "warn")]);
        started = ext.started;
        ExtChild::Ours(ext)
    } else {
        let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
        cmd.env_clear()
            .env(ROLE, "noop-extension")
            .env("AWS_LAMBDA_RUNTIME_API", api.runtime_api())
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        started = Instant::now();
        ExtChild::Baseline(cmd.spawn().unwrap())
    };
    api.wait_next_calls(start_calls + 1).await;
    let first_next = api
        .calls()
        .into_iter()
        .filter(|(_, c)| *c == Call::Next)
        .nth(start_calls)
        .unwrap()
        .0;
    api.push_shutdown(Duration::from_secs(2));
    match &mut child {
        ExtChild::Ours(e) => {
            let _ = tokio::time::timeout(LONG, e.child.wait()).await;
        }
        ExtChild::Baseline(c) => {
            let _ = tokio::time::timeout(LONG, c.wait()).await;
        }
    }
    first_next.duration_since(started)
}

enum ExtChild {
    Ours(Extension),
    Baseline(tokio::process::Child),
}

async fn init() {
    const RUNS: usize = 25;
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    // Interleaved, so both see the same machine load.
    for _ in 0..RUNS {
        let api = FakeLambda::start().await;
        base.push(ms(one_init(&api, false).await));
        let api = FakeLambda::start().await;
        ours.push(ms(one_init(&api, true).await));
    }
    let (o, b) = (median(ours), median(base));
    println!(
        "init (exec → first /next), median of {RUNS}: datadog-agent {o:.2} ms, lambda-extension no-op {b:.2} ms, ratio {:.2}x (goal ≤ 1.10x and ≤ 3 ms)",
        o / b
    );
}

async fn post_runtime() {
    const RUNS: usize = 30;
    const SPANS: usize = 1000;
    let api = FakeLambda::start().await;
    let intake = FakeIntake::start(Behaviour::Ok).await;
    let url = intake.url();
    let ext = Extension::start(
        &api,
        &[
            ("DD_API_KEY", "bench"),
            ("DD_APM_DD_URL", url.as_str()),
            // Enhanced metrics go to the same loopback intake (an unreachable default intake
            // would make every flush wait for DNS).
            ("DD_DD_URL", url.as_str()),
            ("DD_SERVERLESS_FLUSH_STRATEGY", "end"),
            ("DD_LOG_LEVEL", "warn"),
        ],
    );
    api.wait_next_calls(1).await;
    api.send_telemetry(
        &json!([{"time":"2026-11-23T00:00:00.000Z","type":"platform.initStart","record":{}}])
            .to_string(),
    )
    .await;
    let traces: Vec<_> = (0..10u64).map(|t| trace(t + 1, SPANS / 10)).collect();
    let mut durations = Vec::new();
    let mut baseline = Vec::new();
    for i in 0..RUNS {
        let rid = format!("r{i}");
        api.push_invoke(&rid, Duration::from_secs(30));
        ext.send_spans(&traces, None, false).await;
        // Baseline: the same runtimeDone delivery when there is nothing to flush.
        let before = api.next_calls();
        let sent = Instant::now();
        api.send_telemetry(&runtime_done(&rid, "success")).await;
        api.wait_next_calls(before + 1).await;
        let next_at = api
            .calls()
            .iter()
            .rev()
            .find(|(_, c)| *c == Call::Next)
            .unwrap()
            .0;
        durations.push(ms(next_at.duration_since(sent)));

        let rid = format!("e{i}");
        api.push_invoke(&rid, Duration::from_secs(30));
        let before = api.next_calls();
        let sent = Instant::now();
        api.send_telemetry(&runtime_done(&rid, "success")).await;
        api.wait_next_calls(before + 1).await;
        let next_at = api
            .calls()
            .iter()
            .rev()
            .find(|(_, c)| *c == Call::Next)
            .unwrap()
            .0;
        baseline.push(ms(next_at.duration_since(sent)));
    }
    assert_eq!(intake.accepted_spans().len(), RUNS * SPANS);
    let (d, b) = (median(durations), median(baseline));
    println!(
        "post-runtime duration (runtimeDone → /next), median of {RUNS}: flushing {SPANS} spans {d:.2} ms, nothing to flush {b:.2} ms, flush cost {:.2} ms (goal ≤ 2 ms)",
        d - b
    );
    api.push_shutdown(Duration::from_secs(2));
    ext.wait_exit().await;
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn memory() {
    const CAP: usize = 32 * 1024 * 1024;
    let api = FakeLambda::start().await;
    let cap = CAP.to_string();
    let ext = Extension::start(
        &api,
        &[
            ("DD_LOG_LEVEL", "warn"),
            ("DDLAMBDA_BUFFER_MAX_BYTES", cap.as_str()),
            ("DDLAMBDA_LOCAL_OUTPUT", "/dev/null"),
        ],
    );
    api.wait_next_calls(1).await;
    let pid = ext.child.id().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = rss_kb(pid, "VmRSS:");
    println!("idle RSS: {:.1} MB (goal ≤ 6 MB)", idle as f64 / 1024.0);

    api.push_invoke("flood", Duration::from_secs(600));
    // 500 MB of msgpack, never flushed (no runtime-done signal): the bound must hold.
    let traces: Vec<_> = (0..10u64).map(|t| trace(t + 1, 100)).collect();
    let body = ddlambda_wire::span::encode_v04(&traces);
    let total = 500 * 1024 * 1024;
    let n = total / body.len();
    let client = reqwest_client();
    let url = format!("http://127.0.0.1:{}/v0.4/traces", ext.trace_port);
    let started = Instant::now();
    let mut refused = 0;
    for _ in 0..n {
        let resp = client
            .put(&url)
            .header("Content-Type", "application/msgpack")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if !resp.status().is_success() {
            refused += 1;
        }
    }
    let peak = rss_kb(pid, "VmHWM:");
    println!(
        "flood: {} MB in {n} requests ({:.1} s), {refused} refused at the bound; peak RSS {:.1} MB, buffer cap {} MB, peak − cap {:.1} MB (goal ≤ 8 MB)",
        total / (1024 * 1024),
        started.elapsed().as_secs_f64(),
        peak as f64 / 1024.0,
        CAP / (1024 * 1024),
        peak as f64 / 1024.0 - (CAP / (1024 * 1024)) as f64
    );
    api.push_shutdown(Duration::from_secs(2));
    ext.wait_exit().await;
}
