//! An in-process stand-in for the extension's trace agent: records every request.

#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A fake agent on a free loopback port. `knows_protocol = false` answers the ddlambda
/// routes with 404, like a plain trace agent.
pub struct FakeAgent {
    pub addr: String,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeAgent {
    pub async fn start(knows_protocol: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let store = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let store = store.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let store = store.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let path = parts.uri.path().to_owned();
                            store.lock().unwrap().push(Request {
                                method: parts.method.to_string(),
                                path: path.clone(),
                                headers: parts.headers,
                                body,
                            });
                            let status = if !knows_protocol && path.starts_with("/ddlambda/") {
                                404
                            } else {
                                200
                            };
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Every span of every `/v0.4/traces` body, decoded.
    pub fn traces(&self) -> Vec<Vec<ddlambda::wire::Span>> {
        self.requests()
            .iter()
            .filter(|r| r.path == "/v0.4/traces")
            .flat_map(|r| rmp_serde::from_slice::<Vec<Vec<ddlambda::wire::Span>>>(&r.body).unwrap())
            .collect()
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Gives this test thread its own (empty) subscriber before anything creates a span.
///
/// `tracing` caches each callsite's interest process-wide. A test thread with no subscriber
/// that registers a callsite (e.g. `aws.lambda`) while another test is installing its
/// thread-local subscriber can cache "never" for everyone, and that other test then sees no
/// span at all. Once every test in a binary sets its own default first, no callsite is
/// registered on behalf of "no subscriber".
pub fn own_subscriber() -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(tracing_subscriber::registry())
}

impl FakeAgent {
    /// Flushes `tracer` until the agent's traces satisfy `done` (or ~5 s pass), and returns
    /// them.
    pub async fn traces_until(
        &self,
        tracer: &ddlambda::Tracer,
        done: impl Fn(&[Vec<ddlambda::wire::Span>]) -> bool,
    ) -> Vec<Vec<ddlambda::wire::Span>> {
        let mut traces = Vec::new();
        for _ in 0..500 {
            tracer.flush().await;
            traces = self.traces();
            if done(&traces) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        traces
    }
}

/// The span called `name`.
pub fn by_name<'a>(spans: &'a [ddlambda::wire::Span], name: &str) -> &'a ddlambda::wire::Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
}

/// An event of `tests/fixtures/events`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}
