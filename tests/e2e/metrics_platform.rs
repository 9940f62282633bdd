//! Enhanced metrics and telemetry spans from the `datadog-agent` binary on the local platform,
//! checked against the platform's own figures: cold and warm starts, a timeout, a crash and an
//! out-of-memory kill (the fixture function's faults), and `DD_ENHANCED_METRICS=false`.
//!
//! The extension writes what it flushes to its local sink (a JSON-lines file), read back here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ddlambda_platform::{InvokeOptions, InvokeResult, Platform, ShutdownReason, Status};
use ddlambda_tests::platform::{ExtDir, builder, event};
use ddlambda_tests::{bin_path, free_port};
use serde_json::{Value, json};

const PREFIX: &str = "aws.lambda.enhanced.";

struct Run {
    platform: Platform,
    output: PathBuf,
    _dir: tempfile::TempDir,
    _ext: ExtDir,
}

async fn start(timeout: Duration, extra_env: &[(&str, &str)]) -> Run {
    start_with_statsd(timeout, extra_env, free_port()).await
}

async fn start_with_statsd(timeout: Duration, extra_env: &[(&str, &str)], statsd: u16) -> Run {
    let extension = bin_path("datadog-agent");
    let ext = ExtDir::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("sink.jsonl");
    let mut b = builder(&ext)
        .extension(&extension)
        .function_name("metrics-fn")
        .memory_mb(128)
        .timeout(timeout)
        .env("DD_APM_RECEIVER_PORT", free_port().to_string())
        .env("DD_TRACE_AGENT_PORT", free_port().to_string())
        .env("DD_DOGSTATSD_PORT", statsd.to_string())
        .env("DDLAMBDA_TELEMETRY_PORT", free_port().to_string())
        .env("DDLAMBDA_TELEMETRY_HOST", "127.0.0.1")
        .env("DDLAMBDA_LOCAL_OUTPUT", output.display().to_string())
        .env("DD_SERVERLESS_FLUSH_STRATEGY", "end");
    for (k, v) in extra_env {
        b = b.env(*k, *v);
    }
    let platform = b.build().await.expect("platform");
    Run {
        platform,
        output,
        _dir: dir,
        _ext: ext,
    }
}

impl Run {
    async fn invoke(&self, v: Value) -> InvokeResult {
        self.platform
            .invoke(event(v), InvokeOptions::default())
            .await
            .expect("invoke")
    }

    async fn finish(&self) -> Sink {
        tokio::time::timeout(
            Duration::from_secs(30),
            self.platform.shutdown(ShutdownReason::Spindown),
        )
        .await
        .expect("shutdown in time");
        Sink::read(&self.output)
    }
}

/// One distribution sample set as flushed: per metric and `cold_start` tag.
#[derive(Debug, Default, Clone)]
struct Dist {
    count: u64,
    sum: f64,
    values: Vec<f64>,
    tags: Vec<String>,
}

struct Sink {
    /// `name (without prefix)` → every context's sketches merged, by `cold_start` tag value.
    metrics: BTreeMap<(String, String), Dist>,
    spans: Vec<Value>,
    text: String,
}

impl Sink {
    fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut metrics: BTreeMap<(String, String), Dist> = BTreeMap::new();
        let mut spans = Vec::new();
        for line in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            match line["ddlambda"].as_str() {
                Some("sketches") => {
                    for s in line["payload"]["sketches"].as_array().into_iter().flatten() {
                        let Some(name) = s["metric"].as_str().and_then(|m| m.strip_prefix(PREFIX))
                        else {
                            continue;
                        };
                        let tags: Vec<String> = s["tags"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect();
                        let cold = tags
                            .iter()
                            .find_map(|t| t.strip_prefix("cold_start:"))
                            .unwrap_or("?")
                            .to_owned();
                        let d = metrics.entry((name.to_owned(), cold)).or_default();
                        d.tags = tags.clone();
                        for p in s["points"].as_array().into_iter().flatten() {
                            let sk = &p["sketch"];
                            d.count += sk["count"].as_u64().unwrap_or(0);
                            d.sum += sk["sum"].as_f64().unwrap_or(0.0);
                            // Single-sample sketches carry the exact value as min = max.
                            if sk["count"] == 1 {
                                d.values.push(sk["min"].as_f64().unwrap_or(f64::NAN));
                            }
                        }
                    }
                }
                Some("traces") => {
                    for t in line["traces"].as_array().into_iter().flatten() {
                        spans.extend(t.as_array().into_iter().flatten().cloned());
                    }
                }
                _ => {}
            }
        }
        Sink {
            metrics,
            spans,
            text,
        }
    }

    fn get(&self, name: &str, cold: bool) -> Dist {
        self.metrics
            .get(&(name.to_owned(), cold.to_string()))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no {name} (cold_start:{cold}) flushed; sink:\n{}",
                    self.text
                )
            })
    }

    fn total(&self, name: &str) -> u64 {
        self.metrics
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, d)| d.count)
            .sum()
    }

    fn span(&self, name: &str) -> Value {
        self.spans
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} span flushed; sink:\n{}", self.text))
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_and_warm_invocations_match_the_platforms_reports() {
    let run = start(Duration::from_secs(10), &[]).await;
    let cold = run.invoke(json!({"sleep_ms": 30})).await;
    let warm = run.invoke(json!({})).await;
    assert!(cold.cold_start && !warm.cold_start);
    assert_eq!(warm.report.status, Status::Success);
    let sink = run.finish().await;

    for (r, is_cold) in [(&cold, true), (&warm, false)] {
        assert_eq!(sink.get("invocations", is_cold).count, 1);
        let d = sink.get("duration", is_cold);
        assert!(
            close(d.values[0], r.report.duration_ms / 1000.0),
            "{d:?} vs {r:?}"
        );
        let b = sink.get("billed_duration", is_cold);
        assert!(close(
            b.values[0],
            r.report.billed_duration_ms as f64 / 1000.0
        ));
        assert_eq!(sink.get("memorysize", is_cold).values, [128.0]);
        assert_eq!(
            sink.get("max_memory_used", is_cold).values,
            [f64::from(r.report.max_memory_used_mb)]
        );
        let rt = sink.get("runtime_duration", is_cold);
        assert!(
            (rt.values[0] - r.runtime_duration.as_secs_f64() * 1000.0).abs() < 0.01,
            "{rt:?} vs {:?}",
            r.runtime_duration
        );
        let post = sink.get("post_runtime_duration", is_cold);
        assert!(close(post.values[0], r.report.duration_ms - rt.values[0]));
        let cost = sink.get("estimated_cost", is_cold);
        let billed_gb_s = r.report.billed_duration_ms as f64 / 1000.0 * 128.0 / 1024.0;
        let want = ((0.000_000_2 + billed_gb_s * 0.000_016_666_7) * 1e12).round() / 1e12;
        assert!(close(cost.values[0], want), "{cost:?} vs {want}");
        assert!(sink.get("produced_bytes", is_cold).values[0] > 0.0);
        // Process metrics, sampled during the invocation.
        for name in [
            "fd_use",
            "fd_max",
            "threads_use",
            "threads_max",
            "cpu_total_time",
            "tmp_max",
            "rss_max",
        ] {
            assert_eq!(sink.get(name, is_cold).count, 1, "{name}");
        }
        let tags = &sink.get("invocations", is_cold).tags;
        assert!(
            tags.contains(&"functionname:metrics-fn".to_owned()),
            "{tags:?}"
        );
        assert!(tags.contains(&"memorysize:128".to_owned()), "{tags:?}");
    }
    let init = sink.get("init_duration", true);
    let platform_init = cold.report.init_duration_ms.expect("init duration");
    assert!(
        close(init.values[0], platform_init / 1000.0),
        "{init:?} vs {platform_init}"
    );
    assert!(
        init.tags.contains(&"init_type:on-demand".to_owned()),
        "{:?}",
        init.tags
    );
    for absent in ["errors", "timeouts", "out_of_memory"] {
        assert_eq!(sink.total(absent), 0, "{absent}");
    }
    let cs = sink.span("aws.lambda.cold_start");
    assert!(close(
        cs["duration"].as_f64().unwrap_or(0.0) / 1e6,
        platform_init
    ));
    assert_eq!(cs["meta"]["cold_start"], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_counted_and_gets_an_error_span() {
    let run = start(Duration::from_millis(800), &[]).await;
    let r = run.invoke(json!({"mode": "hang"})).await;
    assert_eq!(r.report.status, Status::Timeout);
    // The sandbox was reset: a new extension process serves this one.
    let next = run.invoke(json!({})).await;
    assert!(next.cold_start);
    let sink = run.finish().await;
    assert_eq!(sink.total("timeouts"), 1);
    assert_eq!(sink.total("errors"), 1);
    assert_eq!(sink.total("invocations"), 2);
    let span = sink.span("aws.lambda");
    assert_eq!(span["error"], 1);
    assert_eq!(span["meta"]["error.type"], "Timeout");
    assert_eq!(span["meta"]["request_id"], r.request_id.as_str());
    assert!(
        span["meta"]["error.message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Task timed out after 0.8")),
        "{span}"
    );
    assert!(close(
        span["duration"].as_f64().unwrap_or(0.0) / 1e6,
        r.runtime_duration.as_secs_f64() * 1000.0
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_an_out_of_memory_kill_get_error_spans() {
    let run = start(Duration::from_secs(10), &[]).await;
    let crash = run.invoke(json!({"mode": "crash", "exit_code": 3})).await;
    assert_eq!(crash.report.status, Status::Failure);
    let oom = run.invoke(json!({"mode": "alloc", "mb": 400})).await;
    assert_eq!(
        oom.report.error_type.as_deref(),
        Some("Runtime.OutOfMemory")
    );
    let sink = run.finish().await;
    assert_eq!(sink.total("errors"), 2);
    assert_eq!(
        sink.total("out_of_memory"),
        1,
        "counted once across its detectors"
    );
    assert_eq!(sink.total("timeouts"), 0);
    let by_request = |id: &str| {
        sink.spans
            .iter()
            .find(|s| s["name"] == "aws.lambda" && s["meta"]["request_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no aws.lambda for {id}; sink:\n{}", sink.text))
    };
    assert_eq!(
        by_request(&crash.request_id)["meta"]["error.type"],
        "Runtime.ExitError"
    );
    assert_eq!(
        by_request(&oom.request_id)["meta"]["error.type"],
        "OutOfMemory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_metrics_can_be_turned_off() {
    let run = start(Duration::from_secs(10), &[("DD_ENHANCED_METRICS", "false")]).await;
    run.invoke(json!({})).await;
    let sink = run.finish().await;
    assert!(sink.metrics.is_empty(), "{}", sink.text);
    // The cold-start span is not a metric: it stays.
    sink.span("aws.lambda.cold_start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dogstatsd_metrics_sent_during_invocations_are_all_flushed_by_shutdown() {
    let port = free_port();
    let run = start_with_statsd(Duration::from_secs(10), &[], port).await;
    run.invoke(json!({})).await;
    // A function's DogStatsD client, between two invocations and after the last one.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    client
        .send_to(
            b"custom.latency:5:7|d|#k:v\ncustom.hits:2|c|#k:v",
            ("127.0.0.1", port),
        )
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    run.invoke(json!({})).await;
    client
        .send_to(b"custom.hits:3|c|#k:v", ("127.0.0.1", port))
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sink = run.finish().await;

    let mut hits = 0.0;
    let mut latency = (0, 0.0);
    for line in sink
        .text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        for s in line["payload"]["series"].as_array().into_iter().flatten() {
            if s["metric"] == "custom.hits" {
                assert_eq!(s["tags"], json!(["k:v"]));
                hits += s["points"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["value"].as_f64())
                    .sum::<f64>();
            }
        }
        for s in line["payload"]["sketches"].as_array().into_iter().flatten() {
            if s["metric"] == "custom.latency" {
                for p in s["points"].as_array().into_iter().flatten() {
                    latency.0 += p["sketch"]["count"].as_u64().unwrap_or(0);
                    latency.1 += p["sketch"]["sum"].as_f64().unwrap_or(0.0);
                }
            }
        }
    }
    assert_eq!(hits, 5.0, "sink:\n{}", sink.text);
    assert_eq!(latency, (2, 12.0), "sink:\n{}", sink.text);
}
