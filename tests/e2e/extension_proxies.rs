//! The proxied tracer routes (profiling, LLM Observability's EVP paths, the debugger) through
//! the extension to a loopback fake intake: body and `Content-Type` byte for byte, `DD-API-KEY`
//! and the function's tags added, hop-by-hop headers dropped, and nothing sent while the
//! runtime is still working.
//!
//! The first test runs the `datadog-agent` binary on the local Lambda platform beside a Python
//! function where real ddtrace 4.16 profiles and records an LLMObs span. The tracer talks to a
//! recording tee in front of the extension's trace agent, so what the tracer sent can be
//! compared with what reached the intake. The other tests drive the extension's parts
//! in-process with handcrafted debugger requests (ddtrace cannot be made to upload a snapshot
//! quickly), including intake failures.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
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
use ddlambda_tests::intake::{FakeIntake, Request};
use ddlambda_tests::peers_tracer;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const FUNCTION: &str = "Proxies-E2E";
const API_KEY: &str = "e2e-key";
const PROFILE_INTAKE: &str = "/api/v2/profile";
const LLMOBS_INTAKE: &str = "/api/v2/llmobs";
const PROFILE_ROUTE: &str = "/profiling/v1/input";
const LLMOBS_ROUTE: &str = "/evp_proxy/v2/api/v2/llmobs";

/// One request as the tracer sent it, and what the extension answered.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    status: u16,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A recording HTTP tee in front of the extension's trace agent. `GET /__state` answers how
/// many profile and LLMObs requests the extension accepted so far, and how many proxied
/// requests the intake holds: the function asks it before returning.
struct Tee {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: AbortOnDrop<()>,
}

impl Tee {
    async fn start(
        upstream: SocketAddr,
        intake_count: Arc<dyn Fn() -> usize + Send + Sync>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the tee");
        let url = format!("http://{}", listener.local_addr().expect("tee address"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, intake_count) = (record.clone(), intake_count.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let (seen, intake_count) = (seen.clone(), intake_count.clone());
                        async move {
                            Ok::<_, Infallible>(tee(req, upstream, &seen, &*intake_count).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Tee {
            url,
            seen,
            _server: AbortOnDrop(server),
        }
    }

    fn accepted(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|s| s.path == path && (200..300).contains(&s.status))
            .cloned()
            .collect()
    }
}

async fn tee(
    req: http::Request<hyper::body::Incoming>,
    upstream: SocketAddr,
    seen: &Mutex<Vec<Seen>>,
    intake_count: &(dyn Fn() -> usize + Send + Sync),
) -> http::Response<Full<Bytes>> {
    let respond = |status: u16, body: Bytes| {
        let mut resp = http::Response::new(Full::new(body));
        *resp.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        resp
    };
    if req.uri().path() == "/__state" {
        let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        let count = |path: &str| {
            seen.iter()
                .filter(|s| s.path == path && (200..300).contains(&s.status))
                .count()
        };
        let state = json!({
            "profiles": count(PROFILE_ROUTE),
            "llmobs": count(LLMOBS_ROUTE),
            "intake": intake_count(),
        });
        return respond(200, Bytes::from(state.to_string()));
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return respond(400, Bytes::new());
    };
    let path = parts.uri.path().to_owned();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (status, reply) = match forward(upstream, parts, body.clone()).await {
        Ok(answer) => answer,
        Err(e) => (502, Bytes::from(e)),
    };
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Seen {
            path,
            headers,
            body,
            status,
        });
    respond(status, reply)
}

/// Sends the request on to the extension unchanged.
async fn forward(
    upstream: SocketAddr,
    parts: http::request::Parts,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connecting to the extension: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::from_parts(parts, Full::new(body));
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .map_err(|_| "the extension did not answer in 30 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// The function: a Runtime API loop where ddtrace profiles and records an LLMObs workflow. Its
/// handler returns once the extension has accepted a profile and the LLMObs span, with the
/// number of proxied requests the intake held at that moment.
const FUNCTION_PY: &str = r#"
import json
import os
import time
import urllib.request

from ddtrace.llmobs import LLMObs
from ddtrace.profiling import Profiler
from lambda_loop import serve

profiler = Profiler()
profiler.start()
LLMObs.enable(ml_app="proxies-e2e", agentless_enabled=False)

TEE = os.environ["DD_TRACE_AGENT_URL"]


def state():
    with urllib.request.urlopen(TEE + "/__state", timeout=10) as r:
        return json.loads(r.read())


def handler(event):
    with LLMObs.workflow(name="proxied-workflow") as span:
        LLMObs.annotate(span=span, input_data="question", output_data="answer")
    LLMObs.flush()
    # Something for the profiler to see.
    sum(i * i for i in range(2000000))
    # In Lambda, ddtrace uploads a profile every 60 s; stopping uploads the last one now.
    profiler.stop(flush=True)
    deadline = time.time() + 90
    while True:
        s = state()
        if s["profiles"] >= 1 and s["llmobs"] >= 1:
            return s
        if time.time() > deadline:
            s["timed_out"] = True
            return s
        time.sleep(0.1)


serve(handler)
"#;

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

/// What the tracer sent, as the intake records it (gunzipped when gzip).
fn as_recorded(seen: &Seen) -> Vec<u8> {
    if seen.header("content-encoding") == Some("gzip") {
        gunzip(&seen.body)
    } else {
        seen.body.to_vec()
    }
}

/// Each accepted tracer request is at the intake once, body and `Content-Type` unchanged, with
/// our key and tags, and without the hop-by-hop headers.
fn assert_passed_through(sent: &[Seen], received: &[Request]) {
    assert_eq!(
        sent.len(),
        received.len(),
        "accepted by the extension vs received by the intake"
    );
    for s in sent {
        let body = as_recorded(s);
        let r = received
            .iter()
            .find(|r| r.body == body)
            .unwrap_or_else(|| panic!("{} body ({} bytes) not at the intake", s.path, body.len()));
        assert_eq!(
            r.header("content-type"),
            s.header("content-type"),
            "{}",
            s.path
        );
        assert_eq!(r.api_key, API_KEY);
        let tags = r.header("x-datadog-additional-tags").unwrap_or_default();
        assert!(
            tags.contains("_dd.origin:lambda")
                && tags.contains(&format!("functionname:{}", FUNCTION.to_lowercase())),
            "{tags}"
        );
        // The tracer's own headers ride along; the tee's address and hop-by-hop ones do not.
        for (k, v) in &s.headers {
            match k.as_str() {
                "host" | "connection" | "transfer-encoding" => {
                    assert_ne!(r.header(k), Some(v.as_str()), "{k} passed on");
                }
                // Merged with ours, checked above.
                "x-datadog-additional-tags" => assert!(tags.starts_with(v.as_str()), "{tags}"),
                _ => assert_eq!(r.header(k), Some(v.as_str()), "{k} of {}", s.path),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddtrace_profiles_and_llmobs_spans_reach_their_intakes_after_the_runtime_is_done() {
    let Some(python) = peers_tracer::python() else {
        return;
    };
    let intake = Arc::new(FakeIntake::start().await);
    let agent_port = peers_tracer::free_port();
    let counted = intake.clone();
    let tee = Tee::start(
        SocketAddr::from(([127, 0, 0, 1], agent_port)),
        Arc::new(move || {
            counted
                .requests()
                .iter()
                .filter(|r| r.path == PROFILE_INTAKE || r.path == LLMOBS_INTAKE)
                .count()
        }),
    )
    .await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let script = dir.path().join("function.py");
    std::fs::write(&script, FUNCTION_PY).expect("write the function");

    let platform = ddlambda_tests::platform::ddtrace_under_extension(
        &python,
        &script,
        FUNCTION,
        intake.base(),
        agent_port,
    )
    .memory_mb(512)
    .timeout(Duration::from_secs(180))
    // The function's tracer, through the tee.
    .env("DD_TRACE_AGENT_URL", tee.url.as_str())
    // ddtrace 4.16 otherwise sends LLMObs spans inside the APM trace and uses the EVP route
    // only for spans it predicts the agent will drop; without APM tracing every LLMObs span
    // goes through the EVP proxy.
    .env("DD_APM_TRACING_ENABLED", "false")
    .env("DD_SERVICE", "proxies-svc")
    .env("DD_API_KEY", API_KEY)
    .env("DD_APM_TELEMETRY_DD_URL", intake.base())
    .env(
        "DD_APM_PROFILING_DD_URL",
        format!("{}{PROFILE_INTAKE}", intake.base()),
    )
    .env("DD_EVP_PROXY_CONFIG_DD_URL", intake.base())
    .build()
    .await
    .expect("platform");

    let result = platform
        .invoke(b"{}".to_vec(), ddlambda_platform::InvokeOptions::default())
        .await
        .expect("invoke");
    let ddlambda_platform::Outcome::Response(response) = &result.outcome else {
        panic!("the function failed: {result:?}");
    };
    let state: Value = serde_json::from_slice(response).expect("the handler's JSON");
    assert!(
        state.get("timed_out").is_none(),
        "no upload from ddtrace: {state}"
    );
    // While the runtime worked, the extension held what it had accepted...
    assert_eq!(
        state["intake"], 0,
        "sent while the runtime was working: {state}"
    );
    // ...and the post-runtime flush sent it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (intake.accepted(PROFILE_INTAKE).is_empty() || intake.accepted(LLMOBS_INTAKE).is_empty())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !intake.accepted(PROFILE_INTAKE).is_empty(),
        "no profile after the invocation"
    );
    assert!(
        !intake.accepted(LLMOBS_INTAKE).is_empty(),
        "no LLMObs span after the invocation"
    );

    // Whatever the extension accepted before SHUTDOWN is delivered by its end.
    let sent_profiles = tee.accepted(PROFILE_ROUTE);
    let sent_llmobs = tee.accepted(LLMOBS_ROUTE);
    platform
        .shutdown(ddlambda_platform::ShutdownReason::Spindown)
        .await;
    let profiles: Vec<Request> = intake
        .accepted(PROFILE_INTAKE)
        .into_iter()
        .filter(|r| sent_profiles.iter().any(|s| as_recorded(s) == r.body))
        .collect();
    assert_passed_through(&sent_profiles, &profiles);
    for s in &sent_profiles {
        let content_type = s.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("multipart/form-data; boundary="),
            "{content_type}"
        );
        assert_eq!(s.header("dd-evp-origin"), Some("dd-trace-py"));
    }

    let llmobs: Vec<Request> = intake.accepted(LLMOBS_INTAKE);
    assert_passed_through(&sent_llmobs, &llmobs);
    let spans: Vec<Value> = llmobs
        .iter()
        .flat_map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("LLMObs JSON");
            // One event, or a batch of them.
            match body {
                Value::Array(events) => events,
                event => vec![event],
            }
        })
        .flat_map(|event| event["spans"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(
        spans.iter().any(|s| s["name"] == "proxied-workflow"),
        "{spans:#?}"
    );
    for r in &llmobs {
        assert_eq!(r.header("x-datadog-evp-subdomain"), Some("llmobs-intake"));
    }
}

/// The trace agent, buffer, flusher and Datadog sink in-process, the proxied routes resolved
/// from `DD_*` settings as the binary resolves them.
struct Pipeline {
    agent: SocketAddr,
    flusher: Arc<Flusher<DatadogSink>>,
    intake: FakeIntake,
    _server: AbortOnDrop<()>,
}

impl Pipeline {
    async fn start() -> Self {
        let intake = FakeIntake::start().await;
        let env: BTreeMap<&str, String> = BTreeMap::from([
            ("DD_API_KEY", API_KEY.to_owned()),
            ("DD_SITE", "datadoghq.eu".to_owned()),
            (
                "DD_APM_DEBUGGER_DD_URL",
                format!("{}/api/v2/logs", intake.base()),
            ),
            (
                "DD_APM_DEBUGGER_DIAGNOSTICS_DD_URL",
                format!("{}/api/v2/debugger", intake.base()),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION.to_owned()),
            ("AWS_REGION", "eu-west-1".to_owned()),
        ]);
        let (config, warnings) = Config::from_lookup(|k| env.get(k).cloned());
        assert!(warnings.is_empty(), "{warnings:?}");
        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(64 << 20, true, counters.clone()));
        let agent_config = TraceAgentConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes: trace_agent::DEFAULT_MAX_BODY_BYTES,
        };
        let listener = trace_agent::bind(&agent_config).await.expect("bind");
        let agent = listener.local_addr().expect("agent address");
        let task = tokio::spawn(trace_agent::serve(
            listener,
            Arc::new(TraceAgent::new(&agent_config, buffer.clone())),
        ));
        let sink = DatadogSink::new(DatadogConfig {
            api_key: API_KEY.to_owned(),
            trace_base: intake.base().to_owned(),
            telemetry_base: intake.base().to_owned(),
            metrics_base: intake.base().to_owned(),
            env: String::new(),
        })
        .with_proxy_intakes(config.proxy_intakes.clone());
        let tags = FunctionTags::new(&config, Some("123456789012"));
        buffer.set_function_tags(tags.clone());
        let flusher = Arc::new(Flusher::new(
            buffer,
            sink,
            tags,
            counters,
            RetryPolicy::default(),
        ));
        Pipeline {
            agent,
            flusher,
            intake,
            _server: AbortOnDrop(task),
        }
    }

    async fn flush(&self) {
        self.flusher
            .flush(
                Trigger::Shutdown,
                Scope::All,
                tokio::time::Instant::now() + Duration::from_secs(20),
                false,
            )
            .await;
    }

    /// Sends one request as a tracer would, returning (status, what the tee would record).
    async fn send(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Seen) {
        let mut req = http::Request::post(path).header("host", self.agent.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (parts, _) = req.body(()).expect("a request").into_parts();
        let seen = Seen {
            path: path.to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: Bytes::copy_from_slice(body),
            status: 0,
        };
        let (status, _) = forward(self.agent, parts, seen.body.clone())
            .await
            .expect("the trace agent answers");
        (status, Seen { status, ..seen })
    }
}

/// Exception Replay's three routes, handcrafted as ddtrace sends them: each reaches its
/// intake once, unchanged, after a retried 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debugger_routes_reach_the_logs_and_debugger_intakes_and_survive_a_503() {
    let pipeline = Pipeline::start().await;
    let snapshot = br#"[{"service":"proxies-svc","ddsource":"dd_debugger","message":"snapshot","debugger":{"snapshot":{"id":"1","captures":{}}}}]"#;
    let diagnostics_type = "multipart/form-data; boundary=0f1e2d3c4b5a";
    let diagnostics = b"--0f1e2d3c4b5a\r\nContent-Disposition: form-data; name=\"event\"; filename=\"event.json\"\r\nContent-Type: application/json\r\n\r\n[{\"ddsource\":\"dd_debugger\",\"debugger\":{\"diagnostics\":{\"probeId\":\"p1\",\"status\":\"INSTALLED\"}}}]\r\n--0f1e2d3c4b5a--\r\n";
    let json_headers = [
        ("content-type", "application/json"),
        ("dd-evp-origin", "dd-trace-py"),
        ("connection", "keep-alive"),
        ("x-datadog-additional-tags", "debugger_version:4.16.0"),
    ];
    let mut sent = Vec::new();
    for (path, headers, body) in [
        ("/debugger/v1/input", &json_headers[..], &snapshot[..]),
        ("/debugger/v2/input", &json_headers[..], &snapshot[..]),
        (
            "/debugger/v1/diagnostics",
            &[("content-type", diagnostics_type)][..],
            &diagnostics[..],
        ),
    ] {
        let (status, seen) = pipeline.send(path, headers, body).await;
        assert_eq!(status, 202, "{path}");
        sent.push(seen);
    }
    // Nothing goes upstream before the flush.
    assert!(pipeline.intake.requests().is_empty());

    pipeline.intake.fail_next(1, 503);
    pipeline.flush().await;
    let requests = pipeline.intake.requests();
    assert_eq!(
        requests.iter().filter(|r| r.status == 503).count(),
        1,
        "{requests:#?}"
    );
    let logs = pipeline.intake.accepted("/api/v2/logs");
    let debugger = pipeline.intake.accepted("/api/v2/debugger");
    assert_passed_through(&sent[..1], &logs);
    assert_passed_through(&sent[1..], &debugger);
    // The tracer's tags are kept, ours follow.
    let tags = logs[0]
        .header("x-datadog-additional-tags")
        .unwrap_or_default();
    assert!(
        tags.starts_with("debugger_version:4.16.0,_dd.origin:lambda"),
        "{tags}"
    );
}

/// ddtrace 4.16's default LLMObs mode (APM tracing on, an agent present) sends no EVP request:
/// the LLMObs event rides its span's `meta_struct` (`_llmobs`) in the v0.4 trace. It must reach
/// the trace intake whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddtrace_llmobs_events_riding_the_apm_trace_reach_the_trace_intake() {
    let Some(python) = peers_tracer::python() else {
        return;
    };
    let pipeline = Pipeline::start().await;
    let mut cmd = std::process::Command::new(python);
    cmd.arg("-c")
        .arg(
            "from ddtrace.llmobs import LLMObs\n\
             from ddtrace.trace import tracer\n\
             LLMObs.enable(ml_app='proxies-e2e', agentless_enabled=False)\n\
             with LLMObs.workflow(name='riding-workflow') as span:\n\
             \x20   LLMObs.annotate(span=span, input_data='question', output_data='answer')\n\
             LLMObs.flush()\n\
             tracer.flush()\n",
        )
        .env("DD_TRACE_AGENT_URL", format!("http://{}", pipeline.agent))
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .env("DD_REMOTE_CONFIGURATION_ENABLED", "false");
    tokio::task::spawn_blocking(move || peers_tracer::run_workload(cmd, Duration::from_secs(90)))
        .await
        .expect("workload thread")
        .expect("the workload runs");

    let deadline = Instant::now() + Duration::from_secs(60);
    let span = loop {
        pipeline.flush().await;
        if let Some(s) = pipeline
            .intake
            .spans()
            .into_iter()
            .find(|s| s.meta_struct.contains_key("_llmobs"))
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no span with an LLMObs event: {:#?}",
            pipeline.intake.spans()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The tracer's msgpack, intact: it decodes, and names the workflow.
    let event: Value =
        rmp_serde::from_slice(&span.meta_struct["_llmobs"]).expect("msgpack LLMObs event");
    assert!(event.to_string().contains("riding-workflow"), "{event:#}");
    // Nothing went the EVP way.
    assert!(pipeline.intake.accepted(LLMOBS_INTAKE).is_empty());
}
