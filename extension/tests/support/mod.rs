//! Test doubles for the extension binary: a scripted Extensions + Telemetry API, a recording
//! intake with injectable faults, and a guard that kills the extension process by PID.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const LONG: Duration = Duration::from_secs(60);

/// Epoch milliseconds `d` from now.
pub fn epoch_ms_in(d: Duration) -> u64 {
    (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + d).as_millis() as u64
}

/// A free loopback TCP port (bound then released; good enough on loopback).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free loopback UDP port.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

/// One call the extension made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Register {
        name: String,
        accept_feature: String,
    },
    Next,
    Subscribe(String),
}

#[derive(Default)]
struct ApiState {
    queue: VecDeque<Value>,
    calls: Vec<(Instant, Call)>,
    destination: Option<String>,
    /// The record types of the Telemetry subscription.
    subscribed_types: Vec<String>,
}

/// A scripted Extensions API (register, `/next` long-poll, Telemetry subscribe).
#[derive(Clone)]
pub struct FakeLambda {
    pub addr: SocketAddr,
    state: Arc<Mutex<ApiState>>,
    /// Built once: building a client loads TLS roots, which would blur timings.
    client: reqwest::Client,
}

impl FakeLambda {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ApiState::default()));
        let s = state.clone();
        tokio::spawn(serve(listener, move |req: Request<Incoming>| {
            let state = s.clone();
            async move {
                let path = req.uri().path().to_owned();
                let header = |k: &str| {
                    req.headers()
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let name = header("lambda-extension-name");
                let feature = header("lambda-extension-accept-feature");
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let now = Instant::now();
                match path.as_str() {
                    "/2020-01-01/extension/register" => {
                        state.lock().unwrap().calls.push((
                            now,
                            Call::Register {
                                name,
                                accept_feature: feature,
                            },
                        ));
                        let mut r = reply(
                            200,
                            json!({"functionName":"fn","functionVersion":"$LATEST","handler":"h","accountId":"123456789012"}).to_string(),
                        );
                        r.headers_mut()
                            .insert("lambda-extension-identifier", "ext-id-1".parse().unwrap());
                        r
                    }
                    "/2022-07-01/telemetry" => {
                        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                        let dest = v["destination"]["URI"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        let mut st = state.lock().unwrap();
                        st.calls.push((now, Call::Subscribe(dest.clone())));
                        st.destination = Some(dest);
                        st.subscribed_types = v["types"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect();
                        reply(200, "OK")
                    }
                    "/2020-01-01/extension/event/next" => {
                        state.lock().unwrap().calls.push((now, Call::Next));
                        // Long poll, bounded by the test's own timeouts.
                        let deadline = Instant::now() + LONG;
                        while Instant::now() < deadline {
                            if let Some(ev) = state.lock().unwrap().queue.pop_front() {
                                return reply(200, ev.to_string());
                            }
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        reply(500, "test over")
                    }
                    _ => reply(404, "no such route"),
                }
            }
        }));
        Self {
            addr,
            state,
            client: reqwest_client(),
        }
    }

    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    pub fn push_invoke(&self, request_id: &str, timeout: Duration) {
        self.state.lock().unwrap().queue.push_back(json!({
            "eventType": "INVOKE",
            "requestId": request_id,
            "deadlineMs": epoch_ms_in(timeout),
            "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5759e988-bd862e3fe1be46a994272793"}
        }));
    }

    pub fn push_shutdown(&self, deadline: Duration) {
        self.state.lock().unwrap().queue.push_back(json!({
            "eventType": "SHUTDOWN",
            "shutdownReason": "spindown",
            "deadlineMs": epoch_ms_in(deadline),
        }));
    }

    pub fn calls(&self) -> Vec<(Instant, Call)> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn next_calls(&self) -> usize {
        self.calls()
            .iter()
            .filter(|(_, c)| *c == Call::Next)
            .count()
    }

    /// Waits until the extension has called `/next` `n` times in all.
    pub async fn wait_next_calls(&self, n: usize) {
        let deadline = Instant::now() + LONG;
        while self.next_calls() < n {
            assert!(
                Instant::now() < deadline,
                "extension never called /next #{n}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for the Telemetry subscription and returns its destination.
    pub async fn wait_subscription(&self) -> String {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(d) = self.state.lock().unwrap().destination.clone() {
                return d;
            }
            assert!(Instant::now() < deadline, "extension never subscribed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The record types the extension subscribed to (empty before it did).
    pub fn subscribed_types(&self) -> Vec<String> {
        self.state.lock().unwrap().subscribed_types.clone()
    }

    /// Posts a batch of records to the subscribed destination; returns the HTTP status.
    pub async fn send_telemetry(&self, body: &str) -> u16 {
        let dest = self.wait_subscription().await;
        self.client
            .post(dest)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

pub fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A record the platform would send.
pub fn runtime_done(request_id: &str, status: &str) -> String {
    json!([{
        "time": "2026-11-23T00:00:00.000Z",
        "type": "platform.runtimeDone",
        "record": {"requestId": request_id, "status": status, "metrics": {"durationMs": 1.5, "producedBytes": 10}}
    }])
    .to_string()
}

/// How the fake intake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Ok,
    /// Answer this status to the next `n` requests, then behave normally.
    FailNext(u16, usize),
    /// Never answer.
    Hang,
}

/// One request the intake received, body decompressed.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    pub status: u16,
}

/// A recording Datadog intake.
#[derive(Clone)]
pub struct FakeIntake {
    pub addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeIntake {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(Mutex::new(behaviour));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (b, r) = (behaviour.clone(), received.clone());
        tokio::spawn(serve(listener, move |req: Request<Incoming>| {
            let (behaviour, received) = (b.clone(), r.clone());
            async move {
                let path = req.uri().path().to_owned();
                let headers = req.headers().clone();
                // Stored as received and decoded when read, so the intake answers at once.
                let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                let status = {
                    let mut b = behaviour.lock().unwrap();
                    match *b {
                        Behaviour::Ok => 202,
                        Behaviour::Hang => 0,
                        Behaviour::FailNext(status, n) => {
                            *b = if n <= 1 {
                                Behaviour::Ok
                            } else {
                                Behaviour::FailNext(status, n - 1)
                            };
                            status
                        }
                    }
                };
                received.lock().unwrap().push(Received {
                    path,
                    headers,
                    body,
                    status,
                });
                if status == 0 {
                    std::future::pending::<()>().await;
                }
                reply(status, "{}")
            }
        }));
        Self {
            addr,
            behaviour,
            received,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    /// What arrived, bodies decompressed.
    pub fn received(&self) -> Vec<Received> {
        let mut all = self.received.lock().unwrap().clone();
        for r in &mut all {
            let gz = r
                .headers
                .get("content-encoding")
                .is_some_and(|v| v.as_bytes() == b"gzip");
            if gz {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&r.body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                r.body = out;
            }
        }
        all
    }

    /// Spans the tests sent (not those the extension writes from telemetry, e.g. the error
    /// span of a timed-out invocation) in every accepted (2xx) trace request.
    pub fn accepted_spans(&self) -> Vec<libdd_trace_protobuf::pb::Span> {
        self.all_accepted_spans()
            .into_iter()
            .filter(|s| s.meta.get("_dd.ddlambda.source").map(String::as_str) != Some("telemetry"))
            .collect()
    }

    /// Every span in every accepted (2xx) trace request.
    pub fn all_accepted_spans(&self) -> Vec<libdd_trace_protobuf::pb::Span> {
        use prost::Message;
        self.received()
            .into_iter()
            .filter(|r| r.path == "/api/v0.2/traces" && (200..300).contains(&r.status))
            .flat_map(|r| {
                let p = libdd_trace_protobuf::pb::AgentPayload::decode(&r.body[..]).unwrap();
                p.tracer_payloads
                    .into_iter()
                    .flat_map(|t| t.chunks)
                    .flat_map(|c| c.spans)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub async fn wait_spans(&self, n: usize) -> Vec<libdd_trace_protobuf::pb::Span> {
        let deadline = Instant::now() + LONG;
        loop {
            let spans = self.accepted_spans();
            if spans.len() >= n {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "intake got {} of {n} spans",
                spans.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The extension binary under test, killed by PID when dropped.
pub struct Extension {
    pub child: tokio::process::Child,
    stdout: Option<tokio::task::JoinHandle<String>>,
    stderr: Option<tokio::task::JoinHandle<String>>,
    pub trace_port: u16,
    pub statsd_port: u16,
    pub telemetry_port: u16,
    pub started: Instant,
}

impl Extension {
    /// Starts `datadog-agent` against `api`, with free ports and `env` on top.
    pub fn start(api: &FakeLambda, env: &[(&str, &str)]) -> Self {
        let trace_port = free_port();
        let statsd_port = free_udp_port();
        let telemetry_port = free_port();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_datadog-agent"));
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", "fn")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_REGION", "us-east-1")
            .env("DD_APM_RECEIVER_PORT", trace_port.to_string())
            .env("DD_DOGSTATSD_PORT", statsd_port.to_string())
            .env("DDLAMBDA_TELEMETRY_PORT", telemetry_port.to_string())
            .env("DDLAMBDA_TELEMETRY_HOST", "127.0.0.1")
            .env("DD_LOG_LEVEL", "debug")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn datadog-agent");
        let stdout = child.stdout.take().map(drain_pipe);
        let stderr = child.stderr.take().map(drain_pipe);
        Self {
            child,
            stdout,
            stderr,
            trace_port,
            statsd_port,
            telemetry_port,
            started,
        }
    }

    /// Sends a v0.4 payload to the trace agent, with the wrapper's headers when given.
    pub async fn send_spans(
        &self,
        traces: &[Vec<ddlambda_wire::Span>],
        request_id: Option<&str>,
        end: bool,
    ) -> u16 {
        let url = format!("http://127.0.0.1:{}/v0.4/traces", self.trace_port);
        let deadline = Instant::now() + LONG;
        loop {
            let mut req = reqwest_client()
                .put(&url)
                .header("Content-Type", "application/msgpack")
                .header("Datadog-Meta-Lang", "python")
                .header("X-Datadog-Trace-Count", traces.len().to_string())
                .body(ddlambda_wire::span::encode_v04(traces));
            if let Some(r) = request_id {
                req = req.header("ddlambda-request-id", r);
            }
            if end {
                req = req.header("ddlambda-invocation-end", "1");
            }
            match req.send().await {
                Ok(resp) => return resp.status().as_u16(),
                // The listener may not be up yet.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(e) => panic!("trace agent unreachable: {e}"),
            }
        }
    }

    pub async fn post_json(&self, path: &str, body: Value) -> u16 {
        reqwest_client()
            .post(format!("http://127.0.0.1:{}{path}", self.trace_port))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Waits for the process to exit; returns its exit status, stdout and stderr (echoed, so
    /// a failing test shows the extension's log).
    pub async fn wait_exit(mut self) -> Exited {
        let status = tokio::time::timeout(LONG, self.child.wait())
            .await
            .expect("extension did not exit")
            .unwrap();
        let at = Instant::now();
        let stdout = self.stdout.take().unwrap().await.unwrap();
        let stderr = self.stderr.take().unwrap().await.unwrap();
        eprintln!("--- datadog-agent stderr ---\n{stderr}--- end ---");
        Exited {
            status,
            at,
            stdout,
            stderr,
        }
    }
}

/// Reads a pipe to the end in the background, so the child never blocks on a full pipe.
fn drain_pipe<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut r: R,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf).await;
        String::from_utf8_lossy(&buf).into_owned()
    })
}

impl Drop for Extension {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY-free: a plain kill(2) by our own child's PID.
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// How the extension process ended.
pub struct Exited {
    pub status: std::process::ExitStatus,
    pub at: Instant,
    pub stdout: String,
    pub stderr: String,
}

/// `n` spans in one trace.
pub fn trace(trace_id: u64, n: usize) -> Vec<ddlambda_wire::Span> {
    (0..n as u64)
        .map(|i| ddlambda_wire::Span {
            service: "svc".into(),
            name: "op".into(),
            resource: format!("res-{i}"),
            trace_id,
            span_id: trace_id * 1000 + i + 1,
            parent_id: if i == 0 { 0 } else { trace_id * 1000 + 1 },
            // Now, as a tracer's would be: the extension attributes spans without a request id
            // to an invocation by their start time.
            start: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
            duration: 1000,
            ..Default::default()
        })
        .collect()
}
