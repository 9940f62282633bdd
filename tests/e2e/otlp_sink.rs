//! The OTLP sink against a real OTLP/HTTP receiver: `tests/peers/otlp_receiver.py`, which
//! decodes every export with the OpenTelemetry project's `opentelemetry-proto` package.
//!
//! - The `datadog-agent` binary on the local platform beside a Python function traced by real
//!   ddtrace and sending DogStatsD metrics with the real `datadog` client, with both a Datadog
//!   API key (a loopback fake intake) and an OTLP endpoint: the spans the receiver decodes
//!   equal the ones the Datadog intake decodes, field by field (ids, parentage, times, status,
//!   attributes, links), and so do the metrics' totals; traces are gzipped, metrics not
//!   (per-signal compression), and the configured headers arrive percent-decoded.
//! - The extension's flusher and OTLP fan-out in-process, beside the local sink: a 503 then 200
//!   is retried within the flush, a failure that outlasts the flush is carried to the next, and
//!   neither loses or duplicates a span; a 400 is refused once, never retried; what OTLP cannot
//!   carry (data-streams pipeline stats) is written by the local sink.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ddlambda_extension::buffer::{Buffer, Inbox, Scope};
use ddlambda_extension::event::{Event, ForwardKind, ForwardPayload, TracePayload};
use ddlambda_extension::flush::enrich::FunctionTags;
use ddlambda_extension::flush::retry::RetryPolicy;
use ddlambda_extension::flush::stats::Counters;
use ddlambda_extension::flush::{Flusher, Trigger};
use ddlambda_extension::sinks::local::LocalSink;
use ddlambda_extension::sinks::otlp::{OtlpConfig, OtlpSink};
use ddlambda_extension::sinks::{AnySink, Beside, OtlpFanOut};
use ddlambda_tests::intake::FakeIntake;
use ddlambda_tests::{ChildGuard, http, peers_dir, peers_tracer, require_peer};
use ddlambda_wire::Span;
use libdd_trace_protobuf::pb;
use serde_json::Value;

const FUNCTION: &str = "Otlp-E2E";
const ACCOUNT: &str = "123456789012";

/// The receiver, killed by PID when dropped.
struct Receiver {
    addr: String,
    _child: ChildGuard,
}

impl Receiver {
    fn start() -> Option<Self> {
        let python = require_peer(
            "opentelemetry-proto (venv testagent)",
            peers_dir().join("testagent/bin/python"),
        )?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/otlp_receiver.py");
        let mut child = ChildGuard::spawn(
            Command::new(python)
                .arg(script)
                .arg("0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )
        .expect("start the OTLP receiver");
        let stdout = child.0.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the receiver says where it listens");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or_else(|| panic!("unexpected receiver output {line:?}"));
        Some(Self {
            addr: format!("127.0.0.1:{port}"),
            _child: child,
        })
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `count` exports are answered with `status`.
    fn fail_next(&self, status: u16, count: usize) {
        let body = format!("{status} {count}");
        let r = http::request(
            &self.addr,
            "POST",
            "/control/fail",
            &[],
            body.as_bytes(),
            Some(Duration::from_secs(30)),
        )
        .expect("control request");
        assert_eq!(r.status, 204);
    }

    /// Every export so far, as the receiver decoded it.
    fn received(&self) -> Vec<Value> {
        let r = http::request(
            &self.addr,
            "GET",
            "/received",
            &[],
            b"",
            Some(Duration::from_secs(30)),
        )
        .expect("received");
        let all = r.json();
        let all = all.as_array().expect("a list").clone();
        for export in &all {
            assert!(export["error"].is_null(), "undecodable export: {export}");
        }
        all
    }
}

/// The spans of accepted (200) trace exports, each with its resource's attributes.
fn accepted_spans(exports: &[Value]) -> Vec<(BTreeMap<String, Value>, Value)> {
    let mut out = Vec::new();
    for e in exports
        .iter()
        .filter(|e| e["path"] == "/v1/traces" && e["status"] == 200)
    {
        for rs in e["request"]["resource_spans"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let resource = attributes(&rs["resource"]["attributes"]);
            for ss in rs["scope_spans"].as_array().into_iter().flatten() {
                assert_eq!(ss["scope"]["name"], "Datadog");
                for span in ss["spans"].as_array().into_iter().flatten() {
                    out.push((resource.clone(), span.clone()));
                }
            }
        }
    }
    out
}

/// OTLP `KeyValue`s as key → the `AnyValue` JSON (`{"string_value": …}`, …), keys unique.
fn attributes(list: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for kv in list.as_array().into_iter().flatten() {
        let key = kv["key"].as_str().expect("key").to_owned();
        let previous = out.insert(key.clone(), kv["value"].clone());
        assert!(previous.is_none(), "attribute {key} twice");
    }
    out
}

fn string(v: &str) -> Value {
    serde_json::json!({ "string_value": v })
}

fn id_bytes(b64: &Value) -> Vec<u8> {
    B64.decode(b64.as_str().unwrap_or("")).expect("base64 id")
}

fn nanos(v: &Value) -> u64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The Python function: real ddtrace spans (one with a link, one in error) and DogStatsD
/// metrics through the real `datadog` client.
const FUNCTION_PY: &str = r#"
import os

from datadog.dogstatsd import DogStatsd
from ddtrace.trace import Context, tracer
from lambda_loop import serve

statsd = DogStatsd(host="127.0.0.1", port=int(os.environ["DD_DOGSTATSD_PORT"]), disable_telemetry=True)


def handler(event):
    n = event.get("n", 0)
    with tracer.trace("web.request", service="demo-svc", resource="GET /orders", span_type="web") as root:
        root.set_tag("http.method", "GET")
        root.set_tag("span.kind", "server")
        root.set_tag("invocation", str(n))
        root.set_metric("orders.count", 2.5)
        root.link_span(Context(trace_id=0xABCDEF, span_id=0x1234), {"link.name": "upstream"})
        with tracer.trace("db.query", service="demo-db", resource="SELECT * FROM orders", span_type="sql") as db:
            db.set_tag("span.kind", "client")
        try:
            with tracer.trace("cache.get", resource="orders:42"):
                raise ValueError("cache miss is not an option")
        except ValueError:
            pass
    statsd.increment("otlp.e2e.orders", 3, tags=["team:a", "team:b"])
    statsd.gauge("otlp.e2e.depth", 7 + n)
    statsd.distribution("otlp.e2e.latency", 12.5 * (n + 1))
    return {"ok": True}


serve(handler, before_response=tracer.flush)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddtrace_spans_and_dogstatsd_metrics_reach_otlp_as_they_reach_datadog() {
    let Some(python) = peers_tracer::python() else {
        return;
    };
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let function = dir.path().join("function.py");
    std::fs::write(&function, FUNCTION_PY).unwrap();
    let intake = FakeIntake::start().await;
    let platform = ddlambda_tests::platform::ddtrace_under_extension(
        &python,
        &function,
        FUNCTION,
        intake.base(),
        peers_tracer::free_port(),
    )
    .env("DD_TRACE_API_VERSION", "v0.4")
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base())
    .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    .env(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "x-otlp-key=s3cr3t%21, x-team = e2e",
    )
    .env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    .build()
    .await
    .expect("platform");
    for n in 0..2 {
        let result = platform
            .invoke(
                format!(r#"{{"n":{n}}}"#).into_bytes(),
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

    let exports = receiver.received();
    for e in &exports {
        let headers = &e["headers"];
        assert_eq!(headers["content-type"], "application/x-protobuf", "{e}");
        assert_eq!(headers["x-otlp-key"], "s3cr3t!", "percent-decoded");
        assert_eq!(headers["x-team"], "e2e", "trimmed");
        let want = if e["path"] == "/v1/traces" {
            "gzip"
        } else {
            ""
        };
        assert_eq!(e["encoding"], want, "per-signal compression");
    }

    // Spans: the Datadog intake's decoding is the reference.
    let dd: Vec<pb::Span> = intake
        .spans()
        .into_iter()
        .filter(|s| s.service.starts_with("demo-"))
        .collect();
    assert_eq!(dd.len(), 6, "{dd:#?}");
    let otlp = accepted_spans(&exports);
    for s in &dd {
        let span_id = B64.encode(s.span_id.to_be_bytes());
        let matches: Vec<_> = otlp
            .iter()
            .filter(|(_, o)| o["span_id"] == span_id)
            .collect();
        assert_eq!(
            matches.len(),
            1,
            "span {} exported once over OTLP",
            s.span_id
        );
        let (resource, o) = matches[0];
        // ddtrace puts the high half on the trace's first span only.
        let tid = dd
            .iter()
            .filter(|t| t.trace_id == s.trace_id)
            .find_map(|t| t.meta.get("_dd.p.tid"))
            .expect("ddtrace sends 128-bit ids");
        check_span(s, tid, resource, o);
    }
    // Parentage holds within OTLP itself: every child's parent is exported, in its trace.
    for (_, o) in &otlp {
        if let Some(parent) = o.get("parent_span_id") {
            let p = otlp
                .iter()
                .find(|(_, p)| p["span_id"] == *parent)
                .unwrap_or_else(|| panic!("parent of {o} not exported"));
            assert_eq!(p.1["trace_id"], o["trace_id"]);
            assert!(nanos(&p.1["start_time_unix_nano"]) <= nanos(&o["start_time_unix_nano"]));
            assert!(nanos(&p.1["end_time_unix_nano"]) >= nanos(&o["end_time_unix_nano"]));
        }
    }

    // Metrics: the same totals as the Datadog intake's.
    let points = metric_points(&exports);
    let orders = &points["otlp.e2e.orders"];
    assert!(orders.iter().all(|(kind, _)| kind == "sum"));
    let total: f64 = orders
        .iter()
        .map(|(_, p)| p["as_double"].as_f64().unwrap())
        .sum();
    assert_eq!(total, 6.0);
    assert_eq!(dd_series_total(&intake, "otlp.e2e.orders"), 6.0);
    for (_, p) in orders {
        let attrs = attributes(&p["attributes"]);
        let teams: Vec<&str> = attrs["team"]["array_value"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["string_value"].as_str().unwrap())
            .collect();
        assert_eq!(
            teams,
            ["a", "b"],
            "a repeated tag key is one array attribute"
        );
        assert!(nanos(&p["time_unix_nano"]) > nanos(&p["start_time_unix_nano"]));
    }
    let mut depths: Vec<f64> = points["otlp.e2e.depth"]
        .iter()
        .map(|(kind, p)| {
            assert_eq!(kind, "gauge");
            p["as_double"].as_f64().unwrap()
        })
        .collect();
    depths.sort_by(f64::total_cmp);
    assert_eq!(depths, [7.0, 8.0]);
    let latency = &points["otlp.e2e.latency"];
    let count: u64 = latency
        .iter()
        .map(|(kind, p)| {
            assert_eq!(kind, "exponential_histogram");
            p["count"].as_str().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    let sum: f64 = latency
        .iter()
        .map(|(_, p)| p["sum"].as_f64().unwrap())
        .sum();
    assert_eq!((count, sum), (2, 37.5));
    let dd_sketch_count: i64 = intake
        .sketches()
        .iter()
        .flat_map(|p| &p.sketches)
        .filter(|s| s.metric == "otlp.e2e.latency")
        .flat_map(|s| &s.dogsketches)
        .map(|d| d.cnt)
        .sum();
    assert_eq!(dd_sketch_count, 2);
}

/// One OTLP span against the Datadog intake's decoding of the same span.
fn check_span(s: &pb::Span, tid: &str, resource: &BTreeMap<String, Value>, o: &Value) {
    let ctx = format!("{} {o}", s.name);
    assert_eq!(resource["service.name"], string(&s.service), "{ctx}");
    assert_eq!(resource["faas.name"], string(&FUNCTION.to_lowercase()));
    assert_eq!(resource["cloud.region"], string("eu-west-1"));
    assert_eq!(resource["cloud.account.id"], string(ACCOUNT));
    assert_eq!(resource["cloud.provider"], string("aws"));
    assert_eq!(resource["deployment.environment.name"], string("demo"));
    assert_eq!(resource["telemetry.sdk.language"], string("python"));

    let tid = u64::from_str_radix(tid, 16).expect("ddtrace sends 128-bit ids");
    assert_ne!(tid, 0);
    let mut trace_id = tid.to_be_bytes().to_vec();
    trace_id.extend(s.trace_id.to_be_bytes());
    assert_eq!(id_bytes(&o["trace_id"]), trace_id, "{ctx}");
    if s.parent_id == 0 {
        assert!(o.get("parent_span_id").is_none(), "{ctx}");
    } else {
        assert_eq!(
            id_bytes(&o["parent_span_id"]),
            s.parent_id.to_be_bytes(),
            "{ctx}"
        );
    }
    assert_eq!(o["name"], s.name.as_str());
    assert_eq!(nanos(&o["start_time_unix_nano"]), s.start as u64, "{ctx}");
    assert_eq!(
        nanos(&o["end_time_unix_nano"]),
        (s.start + s.duration) as u64,
        "{ctx}"
    );
    let kind = match s.meta.get("span.kind").map(String::as_str) {
        Some("server") => Some("SPAN_KIND_SERVER"),
        Some("client") => Some("SPAN_KIND_CLIENT"),
        Some("internal") => Some("SPAN_KIND_INTERNAL"),
        _ => None,
    };
    assert_eq!(o["kind"].as_str(), kind, "{ctx}");
    if s.error == 1 {
        assert_eq!(o["status"]["code"], "STATUS_CODE_ERROR", "{ctx}");
        let message = s.meta.get("error.message").or(s.meta.get("error.msg"));
        assert_eq!(o["status"]["message"].as_str(), message.map(String::as_str));
        assert!(message.is_some_and(|m| m.contains("cache miss")));
    } else {
        assert!(
            o.get("status").is_none_or(|st| st.get("code").is_none()),
            "{ctx}"
        );
    }

    let attrs = attributes(&o["attributes"]);
    assert_eq!(attrs["operation.name"], string(&s.name));
    assert_eq!(attrs["resource.name"], string(&s.resource));
    if !s.r#type.is_empty() {
        assert_eq!(attrs["span.type"], string(&s.r#type));
    }
    // What the Datadog sink adds for its intake is not the span's.
    for (k, v) in s.meta.iter().filter(|(k, _)| *k != "_dd.compute_stats") {
        assert_eq!(attrs.get(k), Some(&string(v)), "meta {k} of {ctx}");
    }
    for (k, v) in s.metrics.iter().filter(|(k, _)| *k != "_top_level") {
        if !s.meta.contains_key(k) {
            assert_eq!(
                attrs.get(k).and_then(|a| a["double_value"].as_f64()),
                Some(*v),
                "metric {k} of {ctx}"
            );
        }
    }

    let links = o["links"].as_array().cloned().unwrap_or_default();
    assert_eq!(links.len(), s.span_links.len(), "{ctx}");
    for (l, dl) in links.iter().zip(&s.span_links) {
        let mut tid = dl.trace_id_high.to_be_bytes().to_vec();
        tid.extend(dl.trace_id.to_be_bytes());
        assert_eq!(id_bytes(&l["trace_id"]), tid);
        assert_eq!(id_bytes(&l["span_id"]), dl.span_id.to_be_bytes());
        let la = attributes(&l["attributes"]);
        for (k, v) in &dl.attributes {
            assert_eq!(la.get(k), Some(&string(v)), "link attribute {k}");
        }
        assert_eq!(l["flags"].as_u64().unwrap_or(0), u64::from(dl.flags & 0xff));
    }
    if s.name == "web.request" {
        assert_eq!(links.len(), 1, "ddtrace's link_span arrives: {ctx}");
    }
}

/// Metric name → (data kind, data point) across accepted metric exports.
fn metric_points(exports: &[Value]) -> BTreeMap<String, Vec<(String, Value)>> {
    let mut out: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for e in exports
        .iter()
        .filter(|e| e["path"] == "/v1/metrics" && e["status"] == 200)
    {
        for rm in e["request"]["resource_metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for sm in rm["scope_metrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    let name = m["name"].as_str().unwrap().to_owned();
                    for kind in ["sum", "gauge", "exponential_histogram"] {
                        let Some(data) = m.get(kind) else { continue };
                        if kind != "gauge" {
                            assert_eq!(
                                data["aggregation_temporality"], "AGGREGATION_TEMPORALITY_DELTA",
                                "{m}"
                            );
                        }
                        for p in data["data_points"].as_array().into_iter().flatten() {
                            out.entry(name.clone())
                                .or_default()
                                .push((kind.to_owned(), p.clone()));
                        }
                    }
                }
            }
        }
    }
    out
}

fn dd_series_total(intake: &FakeIntake, metric: &str) -> f64 {
    intake
        .series()
        .iter()
        .flat_map(|b| b["series"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["metric"] == metric)
        .flat_map(|s| s["points"].as_array().cloned().unwrap_or_default())
        .map(|p| p["value"].as_f64().unwrap_or(0.0))
        .sum()
}

/// The flusher and OTLP fan-out in-process, beside the local sink.
struct InProcess {
    buffer: Arc<Buffer>,
    flusher: Flusher<AnySink>,
    local_output: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl InProcess {
    fn new(receiver: &Receiver) -> Self {
        let env: BTreeMap<&str, String> =
            BTreeMap::from([("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base())]);
        let mut warnings = Vec::new();
        let config = OtlpConfig::from_lookup(|k| env.get(k).cloned(), &mut warnings)
            .expect("valid")
            .expect("configured");
        assert!(warnings.is_empty(), "{warnings:?}");
        let dir = tempfile::tempdir().unwrap();
        let local_output = dir.path().join("local.jsonl");
        let local = LocalSink::new(local_output.to_str()).unwrap();
        let sink = AnySink::Otlp(OtlpFanOut::new(OtlpSink::new(config), Beside::Local(local)));
        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(64 << 20, true, counters.clone()));
        let policy = RetryPolicy {
            max_attempts: 2,
            first_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        let flusher = Flusher::new(
            buffer.clone(),
            sink,
            FunctionTags::default(),
            counters,
            policy,
        );
        Self {
            buffer,
            flusher,
            local_output,
            _dir: dir,
        }
    }

    /// Pushes one trace of `n` spans with ids from `first`.
    fn push_trace(&self, first: u64, n: u64) {
        let spans = (first..first + n)
            .map(|id| Span {
                service: "svc".into(),
                name: "op".into(),
                resource: format!("r{id}"),
                trace_id: first,
                span_id: id,
                parent_id: if id == first { 0 } else { first },
                start: 1_700_000_000_000_000_000,
                duration: 1000,
                ..Span::default()
            })
            .collect();
        self.buffer.push(Event::Traces(TracePayload {
            traces: vec![spans],
            lang: "python".into(),
            ..TracePayload::default()
        }));
    }

    async fn flush(&self) -> ddlambda_extension::flush::FlushReport {
        self.flusher
            .flush(
                Trigger::EndOfInvocation,
                Scope::All,
                tokio::time::Instant::now() + Duration::from_secs(30),
                false,
            )
            .await
    }
}

/// Span ids in each trace export, by the status the receiver answered.
fn exported_ids(exports: &[Value]) -> Vec<(u64, Vec<u64>)> {
    exports
        .iter()
        .filter(|e| e["path"] == "/v1/traces")
        .map(|e| {
            let ids = e["request"]["resource_spans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|rs| rs["scope_spans"].as_array().cloned().unwrap_or_default())
                .flat_map(|ss| ss["spans"].as_array().cloned().unwrap_or_default())
                .map(|s| {
                    let b: [u8; 8] = id_bytes(&s["span_id"]).try_into().expect("8 bytes");
                    u64::from_be_bytes(b)
                })
                .collect();
            (e["status"].as_u64().unwrap(), ids)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_carry_over_and_refusals_lose_and_duplicate_nothing() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let p = InProcess::new(&receiver);

    // 503 then 200: retried inside the flush.
    receiver.fail_next(503, 1);
    p.push_trace(100, 3);
    p.buffer.push(Event::Forward(ForwardPayload {
        kind: ForwardKind::PipelineStats,
        path: "/v0.1/pipeline_stats".into(),
        headers: Vec::new(),
        body: bytes::Bytes::from_static(b"{}"),
        request_id: None,
    }));
    let report = p.flush().await;
    assert_eq!(report.sent_requests, 2, "{report:?}");
    assert_eq!(
        exported_ids(&receiver.received()),
        [(503, vec![100, 101, 102]), (200, vec![100, 101, 102])]
    );
    // What OTLP cannot carry went to the local sink, once.
    let local = std::fs::read_to_string(&p.local_output).unwrap();
    let lines: Vec<Value> = local
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{local}");
    assert_eq!(lines[0]["kind"], "pipeline_stats");

    // A failure that outlasts the flush's attempts is carried, then delivered once.
    receiver.fail_next(503, 2);
    p.push_trace(200, 2);
    let report = p.flush().await;
    assert_eq!(report.carried_requests, 1, "{report:?}");
    let report = p.flush().await;
    assert_eq!(report.sent_requests, 1, "{report:?}");
    let got = exported_ids(&receiver.received());
    assert_eq!(
        got[2..],
        [
            (503, vec![200, 201]),
            (503, vec![200, 201]),
            (200, vec![200, 201])
        ]
    );

    // A 400 is refused once and never retried.
    receiver.fail_next(400, 1);
    p.push_trace(300, 1);
    let report = p.flush().await;
    assert_eq!(report.rejected_requests, 1, "{report:?}");
    let got = exported_ids(&receiver.received());
    assert_eq!(got[5..], [(400, vec![300])]);
    assert_eq!(p.flusher.carried(), 0);

    // Every accepted span exactly once.
    let mut accepted: Vec<u64> = got
        .iter()
        .filter(|(status, _)| *status == 200)
        .flat_map(|(_, ids)| ids.clone())
        .collect();
    accepted.sort_unstable();
    assert_eq!(accepted, [100, 101, 102, 200, 201]);
}
