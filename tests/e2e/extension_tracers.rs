//! Real tracers through the extension's trace agent, buffer, flusher and Datadog sink to a
//! loopback fake intake that decodes the `AgentPayload` protobuf.
//!
//! ddtrace (Python, v0.4 and v0.5) and dd-trace (Node, v0.4) run their reference workloads
//! (tests/fixtures/payloads/workload.*) through ddapm-test-agent in proxy mode: the test agent
//! validates each request, keeps its own decoding of the spans, and forwards the request to the
//! extension's trace agent. The spans the intake receives must equal the test agent's, field for
//! field, plus the function tags.
//!
//! Most tests run the extension's parts in-process (the library the `datadog-agent` binary
//! wires); the last one runs the `datadog-agent` binary itself on the local Lambda platform
//! beside a Python function traced by ddtrace.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ddlambda_extension::buffer::{Buffer, Scope};
use ddlambda_extension::config::Config;
use ddlambda_extension::flush::enrich::FunctionTags;
use ddlambda_extension::flush::retry::RetryPolicy;
use ddlambda_extension::flush::stats::Counters;
use ddlambda_extension::flush::{Flusher, Trigger};
use ddlambda_extension::intake::trace_agent::{self, TraceAgent, TraceAgentConfig};
use ddlambda_extension::sinks::datadog::{DatadogConfig, DatadogSink};
use ddlambda_tests::AbortOnDrop;
use ddlambda_tests::intake::{self, FakeIntake};
use ddlambda_tests::peers_tracer::{self, TestAgent};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use libdd_trace_protobuf::pb;
use serde_json::Value;

const FUNCTION: &str = "Tracer-E2E";
const ACCOUNT: &str = "123456789012";

/// Trace agent → buffer → flusher → Datadog sink → fake intake, all on loopback ports.
struct Pipeline {
    agent_url: String,
    flusher: Arc<Flusher<DatadogSink>>,
    intake: FakeIntake,
    _server: AbortOnDrop<()>,
}

impl Pipeline {
    async fn start(max_body_bytes: usize) -> Self {
        let intake = FakeIntake::start().await;

        let env: BTreeMap<&str, String> = BTreeMap::from([
            ("DD_API_KEY", "e2e-key".to_owned()),
            ("DD_APM_DD_URL", intake.base().to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION.to_owned()),
            ("AWS_REGION", "eu-west-1".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.11".to_owned()),
        ]);
        let (config, warnings) = Config::from_lookup(|k| env.get(k).cloned());
        assert!(warnings.is_empty(), "{warnings:?}");

        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(64 << 20, true, counters.clone()));
        let agent_config = TraceAgentConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes,
        };
        let listener = trace_agent::bind(&agent_config).await.unwrap();
        let agent_url = format!("http://{}", listener.local_addr().unwrap());
        let agent = Arc::new(TraceAgent::new(&agent_config, buffer.clone()));
        let agent_task = tokio::spawn(trace_agent::serve(listener, agent));

        let sink = DatadogSink::new(DatadogConfig {
            api_key: "e2e-key".to_owned(),
            trace_base: config.trace_intake_base(),
            telemetry_base: config.telemetry_intake_base(),
            metrics_base: intake.base().to_owned(),
            env: String::new(),
        });
        let tags = FunctionTags::new(&config, Some(ACCOUNT));
        // As `main` wires them: spans are tagged as they enter the buffer.
        buffer.set_function_tags(tags.clone());
        let flusher = Arc::new(Flusher::new(
            buffer,
            sink,
            tags,
            counters,
            RetryPolicy::default(),
        ));
        Pipeline {
            agent_url,
            flusher,
            intake,
            _server: AbortOnDrop(agent_task),
        }
    }

    /// Flushes until the intake holds `spans` spans (bounded), and returns them.
    async fn flush_until(&self, spans: usize) -> Vec<pb::Span> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.flusher
                .flush(
                    Trigger::Shutdown,
                    Scope::All,
                    tokio::time::Instant::now() + Duration::from_secs(20),
                    false,
                )
                .await;
            let got = self.intake.spans();
            if got.len() >= spans || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The environment a tracer workload runs with, pointed at `agent_url`.
fn workload(program: &str, script: &str, agent_url: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.arg(peers_tracer::fixtures_dir().join(script))
        .env("DD_TRACE_AGENT_URL", agent_url)
        .env("DD_ENV", "demo")
        .env("DD_VERSION", "1.0.0")
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .env("DD_REMOTE_CONFIGURATION_ENABLED", "false")
        .env("DD_TRACE_EXPERIMENTAL_EXPORTER", "agent");
    cmd
}

async fn run(cmd: Command) {
    tokio::task::spawn_blocking(move || peers_tracer::run_workload(cmd, Duration::from_secs(90)))
        .await
        .unwrap()
        .unwrap();
}

/// Every test-agent span is at the intake with the same fields, plus the function tags.
fn assert_same_spans(test_agent: &Value, intake: &[pb::Span]) {
    let expected: Vec<&Value> = test_agent
        .as_array()
        .expect("a list of traces")
        .iter()
        .flat_map(|t| t.as_array().expect("a list of spans"))
        .collect();
    assert_eq!(
        expected.len(),
        intake.len(),
        "span counts differ: test agent {test_agent}, intake {intake:#?}"
    );
    for want in expected {
        let id = want["span_id"].as_u64().unwrap();
        let got = intake
            .iter()
            .find(|s| s.span_id == id)
            .unwrap_or_else(|| panic!("span {id} missing at the intake"));
        let text = |k: &str| want[k].as_str().unwrap_or_default().to_owned();
        let int = |k: &str| want[k].as_i64().unwrap_or_default();
        assert_eq!(got.name, text("name"));
        assert_eq!(got.service, text("service"));
        assert_eq!(got.resource, text("resource"));
        assert_eq!(got.r#type, text("type"));
        assert_eq!(got.trace_id, want["trace_id"].as_u64().unwrap());
        assert_eq!(
            got.parent_id,
            want["parent_id"].as_u64().unwrap_or_default()
        );
        assert_eq!((got.start, got.duration), (int("start"), int("duration")));
        assert_eq!(i64::from(got.error), int("error"));
        for (k, v) in want["meta"].as_object().into_iter().flatten() {
            assert_eq!(
                got.meta.get(k).map(String::as_str),
                v.as_str(),
                "meta {k} of {id}"
            );
        }
        for (k, v) in want["metrics"].as_object().into_iter().flatten() {
            assert_eq!(
                got.metrics.get(k).copied(),
                v.as_f64(),
                "metric {k} of {id}"
            );
        }
        if let Some(links) = want["span_links"].as_array() {
            assert_eq!(got.span_links.len(), links.len());
            for (g, w) in got.span_links.iter().zip(links) {
                assert_eq!(g.span_id, w["span_id"].as_u64().unwrap());
                assert_eq!(g.trace_id, w["trace_id"].as_u64().unwrap());
            }
        }
        // The function tags, added on the way out.
        assert_eq!(got.meta["_dd.origin"], "lambda");
        assert_eq!(got.meta["functionname"], FUNCTION.to_lowercase());
        assert_eq!(got.meta["region"], "eu-west-1");
        assert_eq!(got.meta["account_id"], ACCOUNT);
        assert_eq!(got.meta["memorysize"], "256");
        assert_eq!(
            got.meta["function_arn"],
            format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{FUNCTION}").to_lowercase()
        );
        assert_eq!(got.meta["cold_start"], "true");
    }
}

/// The chunk-level fields the agent adds, for the one trace each workload sends.
fn assert_chunk(intake: &FakeIntake, lang: &str) {
    let payloads = intake.agent_payloads();
    let tracer = payloads
        .iter()
        .flat_map(|p| &p.tracer_payloads)
        .find(|t| !t.chunks.is_empty())
        .expect("a tracer payload");
    assert_eq!(tracer.language_name, lang);
    assert!(!tracer.tracer_version.is_empty());
    assert_eq!(tracer.env, "demo");
    let chunk = &tracer.chunks[0];
    assert_eq!(
        chunk.priority, 1,
        "ddtrace and dd-trace keep the trace (auto keep)"
    );
    assert_eq!(chunk.origin, "lambda");
    let top: Vec<&str> = chunk
        .spans
        .iter()
        .filter(|s| s.metrics.get("_top_level") == Some(&1.0))
        .map(|s| s.name.as_str())
        .collect();
    // The root and the span of another service (demo-db) start a service's part of the trace.
    assert_eq!(top, ["web.request", "db.query"]);
}

async fn through_the_test_agent(program: &str, script: &str, env: &[(&str, &str)], lang: &str) {
    let pipeline = Pipeline::start(trace_agent::DEFAULT_MAX_BODY_BYTES).await;
    let Some(test_agent) = TestAgent::start(
        Some(&pipeline.agent_url),
        &[
            "trace_count_header",
            "meta_tracer_version_header",
            "trace_content_length",
        ],
    ) else {
        return;
    };
    let mut cmd = workload(program, script, &test_agent.url());
    cmd.envs(env.iter().copied());
    run(cmd).await;
    let seen = test_agent.wait_for_spans(3, Duration::from_secs(30));
    let seen_spans: usize = seen.as_array().map_or(0, |t| {
        t.iter().filter_map(Value::as_array).map(Vec::len).sum()
    });
    assert_eq!(
        seen_spans, 3,
        "the test agent validated and kept the workload's trace: {seen}"
    );
    let spans = pipeline.flush_until(3).await;
    assert_same_spans(&seen, &spans);
    assert_chunk(&pipeline.intake, lang);
}

/// ddtrace's workload, speaking trace API `version`.
async fn ddtrace_through_the_test_agent(version: &str) {
    let Some(python) = peers_tracer::python() else {
        return;
    };
    let python = python.to_string_lossy().into_owned();
    through_the_test_agent(
        &python,
        "workload.py",
        &[("DD_TRACE_API_VERSION", version)],
        "python",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddtrace_v05_through_the_test_agent_and_the_extension_agree() {
    ddtrace_through_the_test_agent("v0.5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddtrace_v04_through_the_test_agent_and_the_extension_agree() {
    ddtrace_through_the_test_agent("v0.4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dd_trace_node_through_the_test_agent_and_the_extension_agree() {
    let Some(modules) = peers_tracer::node_modules() else {
        return;
    };
    let modules = modules.to_string_lossy().into_owned();
    through_the_test_agent("node", "workload.js", &[("NODE_PATH", &modules)], "nodejs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dd_trace_node_v05_through_the_test_agent_and_the_extension_agree() {
    let Some(modules) = peers_tracer::node_modules() else {
        return;
    };
    let modules = modules.to_string_lossy().into_owned();
    let env = [
        ("NODE_PATH", modules.as_str()),
        ("DD_TRACE_AGENT_PROTOCOL_VERSION", "0.5"),
    ];
    through_the_test_agent("node", "workload.js", &env, "nodejs").await;
}

/// Bad bodies are refused with a message, and the next real payload still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_then_a_real_tracer() {
    let Some(python) = peers_tracer::python() else {
        return;
    };
    let pipeline = Pipeline::start(64 * 1024).await;
    let garbage = post(
        &pipeline.agent_url,
        "/v0.4/traces",
        b"\x92\x91\x81\xa4name\xc1".to_vec(),
    )
    .await;
    assert_eq!(garbage.0, 400);
    assert!(garbage.1.contains("trace 0 span 0"), "{}", garbage.1);
    let oversized = post(&pipeline.agent_url, "/v0.5/traces", vec![0x90; 100 * 1024]).await;
    assert_eq!(oversized.0, 413);
    assert!(oversized.1.contains("65536-byte limit"), "{}", oversized.1);

    // Straight to the extension this time: ddtrace asks our `/info` itself.
    let mut cmd = workload(
        &python.to_string_lossy(),
        "workload.py",
        &pipeline.agent_url,
    );
    cmd.env("DD_TRACE_API_VERSION", "v0.5");
    run(cmd).await;
    let spans = pipeline.flush_until(3).await;
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["cache.get", "db.query", "web.request"]);
    assert_chunk(&pipeline.intake, "python");
}

/// ddtrace's client-side stats (`/v0.6/stats`: libdatadog computes them once our `/info` lists
/// the route with `client_drop_p0s`) reach the stats intake beside the spans, and the traces it
/// counted are not counted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddtrace_client_stats_reach_the_stats_intake() {
    let Some(python) = peers_tracer::python() else {
        return;
    };
    let pipeline = Pipeline::start(trace_agent::DEFAULT_MAX_BODY_BYTES).await;
    let mut cmd = workload(
        &python.to_string_lossy(),
        "workload.py",
        &pipeline.agent_url,
    );
    // The second trace is finished after the tracer read `/info`: it computes stats for it.
    cmd.env("DD_TRACE_STATS_COMPUTATION_ENABLED", "true")
        .env("_DD_TRACE_STATS_WRITER_INTERVAL", "1")
        .env("WORKLOAD_TRACES", "2");
    run(cmd).await;
    let spans = pipeline.flush_until(6).await;
    // Traces the tracer counted itself ask the backend not to count them again.
    let marks: Vec<&str> = spans
        .iter()
        .filter_map(|s| s.meta.get("_dd.compute_stats").map(String::as_str))
        .collect();
    assert_eq!(marks.len(), 2, "one mark per trace: {marks:?}");
    assert!(marks.contains(&"0"), "{marks:?}");
    let stats: Vec<Vec<u8>> = pipeline
        .intake
        .accepted(intake::STATS)
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert!(
        !stats.is_empty(),
        "no stats at the intake: {:?}",
        pipeline
            .intake
            .requests()
            .iter()
            .map(|r| &r.path)
            .collect::<Vec<_>>()
    );
    // The tracer's own aggregation made it through: its services are in the msgpack.
    let has = |needle: &[u8]| {
        stats
            .iter()
            .any(|b| b.windows(needle.len()).any(|w| w == needle))
    };
    assert!(
        has(b"demo-svc") && has(b"web.request"),
        "stats without the workload's spans"
    );
}

/// One plain HTTP request, answered with (status, body).
async fn post(base: &str, path: &str, body: Vec<u8>) -> (u16, String) {
    let addr = base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/msgpack")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The `datadog-agent` binary on the local platform, beside a Python function (a Runtime API
/// loop, tests/fixtures/payloads/python_function.py) traced by real ddtrace: both invocations'
/// spans reach the intake, tagged, by SHUTDOWN at the latest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddtrace_function_through_the_extension_binary_on_the_local_platform() {
    let Some(python) = peers_tracer::python() else {
        return;
    };
    let intake = FakeIntake::start().await;
    let platform = ddlambda_tests::platform::ddtrace_under_extension(
        &python,
        &peers_tracer::fixtures_dir().join("python_function.py"),
        FUNCTION,
        intake.base(),
        peers_tracer::free_port(),
    )
    .env("DD_TRACE_API_VERSION", "v0.4")
    .build()
    .await
    .expect("platform");
    for n in 0..2 {
        let event = format!(r#"{{"n":{n}}}"#);
        let result = platform
            .invoke(
                event.into_bytes(),
                ddlambda_platform::InvokeOptions::default(),
            )
            .await
            .expect("invoke");
        assert_eq!(
            result.report.status,
            ddlambda_platform::Status::Success,
            "{result:?}"
        );
    }
    platform
        .shutdown(ddlambda_platform::ShutdownReason::Spindown)
        .await;

    // The extension may add spans of its own (cold start); ours are the workload's.
    let spans: Vec<pb::Span> = intake
        .spans()
        .into_iter()
        .filter(|s| s.service.starts_with("demo-"))
        .collect();
    let mut by_invocation: BTreeMap<String, Vec<&pb::Span>> = BTreeMap::new();
    for s in &spans {
        let root = spans
            .iter()
            .find(|r| r.trace_id == s.trace_id && r.parent_id == 0)
            .unwrap_or_else(|| panic!("no root for span {s:?}"));
        by_invocation
            .entry(root.meta["invocation"].clone())
            .or_default()
            .push(s);
    }
    assert_eq!(by_invocation.len(), 2, "{spans:#?}");
    for (n, trace) in &by_invocation {
        let mut names: Vec<&str> = trace.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["cache.get", "db.query", "web.request"],
            "invocation {n}"
        );
        for s in trace {
            assert_eq!(s.meta["_dd.origin"], "lambda");
            assert_eq!(s.meta["functionname"], FUNCTION.to_lowercase());
            assert_eq!(s.meta["account_id"], ACCOUNT);
            assert_eq!(s.meta["region"], "eu-west-1");
            // The first invocation is the cold start. (The second's spans may race the
            // extension's own view of its INVOKE, so only the tag's presence is checked.)
            if n == "0" {
                assert_eq!(s.meta["cold_start"], "true");
            } else {
                assert!(s.meta.contains_key("cold_start"));
            }
        }
    }
    let error = spans.iter().find(|s| s.name == "cache.get").unwrap();
    assert_eq!(error.error, 1);
    assert_eq!(error.meta["error.type"], "builtins.ValueError");
}
