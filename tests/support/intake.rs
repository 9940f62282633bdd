//! A fake Datadog intake on a free loopback port: it records every request (path, `DD-API-KEY`,
//! whether it was gzip, the gunzipped body, the status it answered) and decodes the endpoints
//! the extension's Datadog sink sends to: traces (`AgentPayload`), series, sketches and
//! pipeline stats. A body that does not decode is answered `400`, so a sink bug shows up as a
//! missing payload and the sink's own error path; [`FakeIntake::fail_next`] injects failures.

use std::convert::Infallible;
use std::io::Read;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use ddlambda_extension::aggregate::metrics::sketches::proto::SketchPayload;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libdd_trace_protobuf::pb;
use prost::Message;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::AbortOnDrop;

/// Span payloads.
pub const TRACES: &str = "/api/v0.2/traces";
/// Client-computed trace stats (msgpack), forwarded as they came.
pub const STATS: &str = "/api/v0.2/stats";
/// Metric series (JSON).
pub const SERIES: &str = "/api/v2/series";
/// Distribution sketches (protobuf).
pub const SKETCHES: &str = "/api/beta/sketches";
/// Data-streams pipeline stats (gzip msgpack).
pub const PIPELINE_STATS: &str = "/api/v0.1/pipeline_stats";

/// One request as the intake received it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The URL path.
    pub path: String,
    /// The `DD-API-KEY` header (empty when absent).
    pub api_key: String,
    /// Whether the body came with `Content-Encoding: gzip`.
    pub gzip: bool,
    /// The body, gunzipped when it was gzip.
    pub body: Vec<u8>,
    /// What the intake answered.
    pub status: u16,
    /// Every header as received (names lowercase), for the proxied routes' pass-through.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Request {
    /// Whether the intake accepted it (a 2xx answer).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Request>>,
    fail_count: AtomicUsize,
    fail_status: AtomicU16,
}

/// The running intake; its server task stops when this is dropped.
pub struct FakeIntake {
    base: String,
    state: Arc<State>,
    _server: AbortOnDrop<()>,
}

impl FakeIntake {
    /// Binds `127.0.0.1:0` and serves on the current Tokio runtime.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake intake on 127.0.0.1:0");
        let addr = listener.local_addr().expect("the fake intake's address");
        let state = Arc::new(State::default());
        let server = AbortOnDrop(tokio::spawn(serve(listener, state.clone())));
        Self {
            base: format!("http://{addr}"),
            state,
            _server: server,
        }
    }

    /// `http://127.0.0.1:<port>`, for `DD_APM_DD_URL`, `DD_DD_URL` and the sink's bases.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Answers the next `count` requests with `status` (recorded, never decoded).
    pub fn fail_next(&self, count: usize, status: u16) {
        self.state.fail_status.store(status, Ordering::SeqCst);
        self.state.fail_count.store(count, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().clone()
    }

    /// The accepted requests to `path`, removed from the record.
    pub fn take(&self, path: &str) -> Vec<Request> {
        let mut all = self.lock();
        let (taken, kept) = std::mem::take(&mut *all)
            .into_iter()
            .partition(|r| r.path == path && r.accepted());
        *all = kept;
        taken
    }

    /// The accepted requests to `path`.
    pub fn accepted(&self, path: &str) -> Vec<Request> {
        self.lock()
            .iter()
            .filter(|r| r.path == path && r.accepted())
            .cloned()
            .collect()
    }

    /// The decoded span payloads.
    pub fn agent_payloads(&self) -> Vec<pb::AgentPayload> {
        self.accepted(TRACES)
            .iter()
            .map(|r| decode_agent_payload(&r.body).expect("accepted, so it decodes"))
            .collect()
    }

    /// Every span of every payload.
    pub fn spans(&self) -> Vec<pb::Span> {
        self.agent_payloads()
            .into_iter()
            .flat_map(|p| p.tracer_payloads)
            .flat_map(|t| t.chunks)
            .flat_map(|c| c.spans)
            .collect()
    }

    /// The decoded series bodies.
    pub fn series(&self) -> Vec<serde_json::Value> {
        self.accepted(SERIES)
            .iter()
            .map(|r| serde_json::from_slice(&r.body).expect("accepted, so it decodes"))
            .collect()
    }

    /// The decoded sketch payloads.
    pub fn sketches(&self) -> Vec<SketchPayload> {
        self.accepted(SKETCHES)
            .iter()
            .map(|r| SketchPayload::decode(r.body.as_slice()).expect("accepted, so it decodes"))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move {
                    let status = record(req, &state).await;
                    let mut resp = http::Response::new(Full::new(Bytes::from_static(b"{}")));
                    *resp.status_mut() =
                        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn record(req: http::Request<hyper::body::Incoming>, state: &State) -> u16 {
    let path = req.uri().path().to_owned();
    let api_key = req
        .headers()
        .get("dd-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (body, readable) = match req.into_body().collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            match gzip.then(|| gunzip(&body)) {
                Some(Some(raw)) => (raw, true),
                Some(None) => (body.to_vec(), false),
                None => (body.to_vec(), true),
            }
        }
        Err(_) => (Vec::new(), false),
    };
    let injected = state
        .fail_count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if injected {
        state.fail_status.load(Ordering::SeqCst)
    } else if readable && decodes(&path, gzip, &body) {
        202
    } else {
        400
    };
    state
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Request {
            path,
            api_key,
            gzip,
            body,
            status,
            headers,
        });
    status
}

/// Whether a body is well-formed for its endpoint; other paths take anything.
fn decodes(path: &str, gzip: bool, body: &[u8]) -> bool {
    match path {
        TRACES => decode_agent_payload(body).is_some(),
        SERIES => serde_json::from_slice::<serde_json::Value>(body).is_ok(),
        SKETCHES => SketchPayload::decode(body).is_ok(),
        PIPELINE_STATS => gzip && rmp_serde::from_slice::<PipelineStats>(body).is_ok(),
        _ => true,
    }
}

fn decode_agent_payload(body: &[u8]) -> Option<pb::AgentPayload> {
    pb::AgentPayload::decode(body).ok()
}

fn gunzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .ok()
        .map(|_| out)
}

/// A pipeline-stats payload in the tracers' schema (ours, or a tracer's forwarded).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PipelineStats {
    /// Service of the process that computed the stats.
    pub service: String,
    /// Its env (absent in some tracers' payloads).
    #[serde(default)]
    pub env: String,
    /// The tracer's language.
    pub lang: String,
    /// Time buckets.
    pub stats: Vec<StatsBucket>,
}

/// One time bucket of pipeline stats.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatsBucket {
    /// Start, in ns since the epoch.
    pub start: u64,
    /// Length, in ns.
    pub duration: u64,
    /// One point per pathway edge.
    pub stats: Vec<StatsPoint>,
}

/// The latencies and sizes seen on one pathway edge.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatsPoint {
    /// The edge's tags (`direction:in`, `topic:…`, `type:…`).
    pub edge_tags: Vec<String>,
    /// The node hash.
    pub hash: u64,
    /// The parent's node hash.
    pub parent_hash: u64,
    /// DDSketch of pathway latencies.
    pub pathway_latency: Bin,
    /// DDSketch of edge latencies.
    pub edge_latency: Bin,
    /// DDSketch of payload sizes.
    pub payload_size: Bin,
}

/// A msgpack `bin` (sketch protobuf bytes).
#[derive(Debug)]
pub struct Bin(pub Vec<u8>);

impl<'de> Deserialize<'de> for Bin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bin;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("msgpack bin")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bin, E> {
                Ok(Bin(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// How many observations a sketch holds.
pub fn sketch_count(b: &Bin) -> f64 {
    libdd_ddsketch::DDSketch::from_encoded(&b.0)
        .expect("a DDSketch protobuf")
        .count()
}

impl FakeIntake {
    /// The accepted pipeline-stats requests, removed from the record, with their payloads.
    pub fn take_pipeline_stats(&self) -> Vec<(Request, PipelineStats)> {
        self.take(PIPELINE_STATS)
            .into_iter()
            .map(|r| {
                let p = rmp_serde::from_slice(&r.body).expect("accepted, so it decodes");
                (r, p)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(intake: &FakeIntake, path: &'static str, body: Vec<u8>) -> u16 {
        let addr = intake.base().trim_start_matches("http://").to_owned();
        tokio::task::spawn_blocking(move || {
            crate::http::request(
                &addr,
                "POST",
                path,
                &[("DD-API-KEY", "k")],
                &body,
                Some(std::time::Duration::from_secs(30)),
            )
        })
        .await
        .expect("request thread")
        .expect("the intake answers")
        .status
    }

    #[tokio::test]
    async fn records_decodes_refuses_garbage_and_injects_failures() {
        let intake = FakeIntake::start().await;
        let payload = pb::AgentPayload {
            env: "e".into(),
            ..Default::default()
        };
        intake.fail_next(1, 503);
        assert_eq!(post(&intake, TRACES, payload.encode_to_vec()).await, 503);
        assert_eq!(post(&intake, TRACES, payload.encode_to_vec()).await, 202);
        assert_eq!(post(&intake, SERIES, b"not json".to_vec()).await, 400);
        assert_eq!(post(&intake, "/elsewhere", b"x".to_vec()).await, 202);

        let statuses: Vec<(String, u16)> = intake
            .requests()
            .into_iter()
            .map(|r| (r.path, r.status))
            .collect();
        assert_eq!(
            statuses,
            [
                (TRACES.to_owned(), 503),
                (TRACES.to_owned(), 202),
                (SERIES.to_owned(), 400),
                ("/elsewhere".to_owned(), 202),
            ]
        );
        assert!(intake.requests().iter().all(|r| r.api_key == "k"));
        assert_eq!(intake.agent_payloads(), [payload]);
        assert!(intake.series().is_empty());
        assert_eq!(intake.take(TRACES).len(), 1);
        assert!(intake.agent_payloads().is_empty());
    }
}
