//! The local trace agent on `127.0.0.1:8126`: what real tracers and the ddlambda wrapper send.
//!
//! - `PUT|POST /v0.4/traces`, `/v0.5/traces`: decoded (`wire::trace`) into [`Event::Traces`];
//!   the reply is the agent's `{"rate_by_service": …}`. As the agent does on arrival, spans of
//!   tracers that do not compute top-level marks (no `Datadog-Client-Computed-Top-Level`) get
//!   them, and traces whose tracer computes APM stats (`Datadog-Client-Computed-Stats`) are
//!   marked `_dd.compute_stats: 0` so the backend does not count them twice.
//! - `/v0.6/stats`, `/v0.1/pipeline_stats`, `/telemetry/proxy/…`: kept byte for byte as
//!   [`Event::Forward`] for their upstream intakes.
//! - `POST` on the proxied routes of [`crate::event::PROXY_ROUTES`] (profiling, debugger, LLM
//!   Observability's EVP paths): kept byte for byte, headers included, as [`Event::Forward`];
//!   they wait in the buffer like everything else and go upstream after the runtime is done.
//! - `/info` on any method (ddapm-test-agent forwards it as POST), advertising what is served.
//! - The wrapper's `/ddlambda/v1/*` routes and headers (wire/PROTOCOL.md) → [`Event::Wrapper`];
//!   `/ddlambda/v1/checkpoints` goes to the data-streams aggregator (`intake::checkpoints`).
//!
//! Every body is capped ([`TraceAgentConfig::max_body_bytes`], and lower on the proxied routes): a
//! declared length over the cap is refused before reading, an undeclared one as soon as the
//! count passes it (413, logged and counted in [`TraceAgent::refused_too_large`]). A malformed
//! body gets a 400 naming what was wrong; nothing else is affected.

mod body;
mod info;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ddlambda_wire::invocation::{
    self, CHECKPOINTS_PATH, END_PATH, HELLO_PATH, Hello, INVOCATION_END_HEADER, InvocationEnd,
    InvocationStart, REQUEST_ID_HEADER, START_PATH,
};
use ddlambda_wire::trace::{self, DecodeError};
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::aggregate::streams::StreamsAggregator;
use crate::buffer::{Admission, Inbox};
use crate::event::{
    Event, ForwardKind, ForwardPayload, ProxyRoute, TracePayload, WrapperSignal, proxy_route,
};
use crate::intake::checkpoints;

/// The cap bottlecap settled on after 2 MiB broke real functions (datadog-lambda-extension#899).
pub const DEFAULT_MAX_BODY_BYTES: usize = 50 * 1024 * 1024;
/// Where tracers look for the agent.
pub const DEFAULT_ADDR: &str = invocation::DEFAULT_AGENT_ADDR;

/// Bodies larger than this are decoded off the async workers, so one big payload never stalls
/// the other listeners.
const DECODE_INLINE_MAX: usize = 256 * 1024;
/// The prefix under which tracers send their instrumentation telemetry.
const TELEMETRY_PREFIX: &str = "/telemetry/proxy";
/// What the agent answers on trace routes; tracers read the sampling rates out of it.
const RATE_BY_SERVICE: &str = r#"{"rate_by_service":{"service:,env:":1}}"#;

/// Where and how the trace agent listens.
#[derive(Debug, Clone)]
pub struct TraceAgentConfig {
    pub addr: SocketAddr,
    pub max_body_bytes: usize,
}

impl Default for TraceAgentConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8126)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The trace agent's state: where received data goes.
pub struct TraceAgent {
    inbox: Arc<dyn Inbox>,
    /// The data-streams aggregator for `/ddlambda/v1/checkpoints`; without one the route is 404.
    checkpoints: Option<Arc<StreamsAggregator>>,
    max_body_bytes: usize,
    /// Bodies refused with 413 since start.
    too_large: AtomicU64,
}

impl TraceAgent {
    pub fn new(config: &TraceAgentConfig, inbox: Arc<dyn Inbox>) -> Self {
        Self {
            inbox,
            checkpoints: None,
            max_body_bytes: config.max_body_bytes,
            too_large: AtomicU64::new(0),
        }
    }

    /// How many bodies were refused for being over their route's cap (413) since start.
    pub fn refused_too_large(&self) -> u64 {
        self.too_large.load(Ordering::Relaxed)
    }

    /// Routes the wrapper's raw checkpoints to `streams`.
    pub fn with_checkpoints(mut self, streams: Arc<StreamsAggregator>) -> Self {
        self.checkpoints = Some(streams);
        self
    }
}

/// Binds the configured address; a failure (port taken) is the caller's to report.
pub async fn bind(config: &TraceAgentConfig) -> io::Result<TcpListener> {
    TcpListener::bind(config.addr).await
}

/// Serves connections on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, agent: Arc<TraceAgent>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: keep serving.
                tracing::warn!("trace agent: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let agent = agent.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let agent = agent.clone();
                async move { Ok::<_, Infallible>(agent.handle(req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("trace agent: connection ended: {e}");
            }
        });
    }
}

/// A reply: status and body (JSON or a plain-text message).
type Reply = Response<Full<Bytes>>;

impl TraceAgent {
    async fn handle(&self, req: Request<Incoming>) -> Reply {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let reply = match path.as_str() {
            "/v0.4/traces" | "/v0.5/traces" => match method {
                Method::PUT | Method::POST => self.traces(req, path == "/v0.5/traces").await,
                _ => method_not_allowed("PUT or POST"),
            },
            "/info" => json(
                StatusCode::OK,
                info::body(self.checkpoints.is_some(), self.max_body_bytes),
            ),
            "/v0.6/stats" => {
                self.forward(
                    req,
                    ForwardKind::TracerStats,
                    path.clone(),
                    self.max_body_bytes,
                )
                .await
            }
            "/v0.1/pipeline_stats" => {
                self.forward(
                    req,
                    ForwardKind::PipelineStats,
                    path.clone(),
                    self.max_body_bytes,
                )
                .await
            }
            p if p.starts_with(TELEMETRY_PREFIX) => {
                let below = p[TELEMETRY_PREFIX.len()..].to_owned();
                self.forward(req, ForwardKind::Telemetry, below, self.max_body_bytes)
                    .await
            }
            HELLO_PATH => {
                self.wrapper(req, |b| Ok(WrapperSignal::Hello(from_json::<Hello>(b)?)))
                    .await
            }
            START_PATH => {
                self.wrapper(req, |b| {
                    Ok(WrapperSignal::Start(from_json::<InvocationStart>(b)?))
                })
                .await
            }
            END_PATH => {
                self.wrapper(req, |b| {
                    let end: InvocationEnd = from_json(b)?;
                    Ok(WrapperSignal::End {
                        request_id: end.request_id,
                    })
                })
                .await
            }
            CHECKPOINTS_PATH if self.checkpoints.is_some() => self.checkpoints(req).await,
            p => match proxy_route(p) {
                Some(route) => self.proxy(req, route).await,
                // `/v0.7/config` (remote configuration) among others: tracers take 404 as
                // "not here".
                None => text(StatusCode::NOT_FOUND, format!("{path} is not served here")),
            },
        };
        if reply.status().is_client_error() {
            tracing::debug!("trace agent: {method} {path} → {}", reply.status());
        }
        reply
    }

    async fn traces(&self, req: Request<Incoming>, v05: bool) -> Reply {
        let (parts, body) = req.into_parts();
        let wrapper = WrapperHeaders::of(&parts.headers);
        let body = match body::collect(&parts.headers, body, self.max_body_bytes).await {
            Ok(body) => body,
            Err(refusal) => {
                self.end_signal(&wrapper);
                return self.refuse(parts.uri.path(), &refusal);
            }
        };
        let body_bytes = body.len();
        let mut traces = match decode(body, v05).await {
            Ok(traces) => traces,
            Err(e) => {
                let version = if v05 { "v0.5" } else { "v0.4" };
                tracing::warn!("trace agent: refused a {version} payload: {e}");
                self.end_signal(&wrapper);
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("malformed {version} trace payload: {e}"),
                );
            }
        };
        if !header_is_true(&parts.headers, "datadog-client-computed-top-level") {
            traces.iter_mut().for_each(|t| trace::mark_top_level(t));
        }
        if header_is_true(&parts.headers, "datadog-client-computed-stats") {
            // The tracer counts these spans in the stats it sends to `/v0.6/stats`: the
            // backend must not count them again.
            for first in traces.iter_mut().filter_map(|t| t.first_mut()) {
                first
                    .meta
                    .insert(trace::COMPUTE_STATS_KEY.to_owned(), "0".to_owned());
            }
        }
        let payload = TracePayload {
            request_id: wrapper.request_id.clone(),
            end_of_invocation: wrapper.end,
            traces,
            lang: header_str(&parts.headers, "datadog-meta-lang"),
            lang_version: header_str(&parts.headers, "datadog-meta-lang-version"),
            tracer_version: header_str(&parts.headers, "datadog-meta-tracer-version"),
            body_bytes,
        };
        match self.inbox.push(Event::Traces(payload)) {
            Admission::Accepted | Admission::Disabled => json(StatusCode::OK, RATE_BY_SERVICE),
            Admission::Dropped => {
                // The spans are lost (and counted); the end of the invocation must not be.
                self.end_signal(&wrapper);
                full()
            }
        }
    }

    /// A proxied route: `POST` only, as bottlecap routes them; the rest is [`Self::forward`].
    async fn proxy(&self, req: Request<Incoming>, route: &'static ProxyRoute) -> Reply {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        let cap = route.max_body_bytes.min(self.max_body_bytes);
        self.forward(
            req,
            ForwardKind::Proxy(route),
            route.local_path.to_owned(),
            cap,
        )
        .await
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        kind: ForwardKind,
        path: String,
        cap: usize,
    ) -> Reply {
        let (parts, body) = req.into_parts();
        let wrapper = WrapperHeaders::of(&parts.headers);
        let body = match body::collect(&parts.headers, body, cap).await {
            Ok(body) => body,
            Err(refusal) => {
                self.end_signal(&wrapper);
                return self.refuse(parts.uri.path(), &refusal);
            }
        };
        let payload = ForwardPayload {
            kind,
            path,
            headers: parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body,
            request_id: wrapper.request_id.clone(),
        };
        let admission = self.inbox.push(Event::Forward(payload));
        self.end_signal(&wrapper);
        match admission {
            // The agent answers stats with 202 and an empty JSON object; tracers accept any
            // 2xx on the other routes.
            Admission::Accepted | Admission::Disabled => json(StatusCode::ACCEPTED, "{}"),
            Admission::Dropped => full(),
        }
    }

    async fn wrapper(
        &self,
        req: Request<Incoming>,
        parse: impl FnOnce(&[u8]) -> Result<WrapperSignal, String>,
    ) -> Reply {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        let (parts, body) = req.into_parts();
        let body = match body::collect(&parts.headers, body, self.max_body_bytes).await {
            Ok(body) => body,
            Err(refusal) => return self.refuse(parts.uri.path(), &refusal),
        };
        match parse(&body) {
            Ok(signal) => {
                // Signals are tiny and the buffer never refuses them for space.
                self.inbox.push(Event::Wrapper(signal));
                json(StatusCode::OK, "{}")
            }
            Err(e) => text(StatusCode::BAD_REQUEST, e),
        }
    }

    async fn checkpoints(&self, req: Request<Incoming>) -> Reply {
        let Some(streams) = &self.checkpoints else {
            return text(StatusCode::NOT_FOUND, "data streams are not enabled");
        };
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        let (parts, body) = req.into_parts();
        let wrapper = WrapperHeaders::of(&parts.headers);
        let body = match body::collect(&parts.headers, body, self.max_body_bytes).await {
            Ok(body) => body,
            Err(refusal) => {
                self.end_signal(&wrapper);
                return self.refuse(parts.uri.path(), &refusal);
            }
        };
        let reply = match checkpoints::handle(&body, wrapper.request_id.as_deref(), streams) {
            Ok(accepted) => json(
                StatusCode::OK,
                format!(r#"{{"accepted":{}}}"#, accepted.checkpoints),
            ),
            Err(e) => text(
                StatusCode::BAD_REQUEST,
                format!("malformed checkpoints: {e}"),
            ),
        };
        // Even a refused body ends the invocation when it says so: the runtime is done.
        self.end_signal(&wrapper);
        reply
    }

    /// The reply to an unread body; one over its cap is counted, and logged since the tracer's
    /// data is lost.
    fn refuse(&self, path: &str, refusal: &body::Refusal) -> Reply {
        let reply = refusal.reply();
        if reply.status() == StatusCode::PAYLOAD_TOO_LARGE {
            self.too_large.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("trace agent: refused a body on {path}: {refusal}");
        }
        reply
    }

    /// `ddlambda-invocation-end` on a request whose body does not carry it to the buffer (a
    /// forwarded or refused one): the runtime is done with the invocation all the same, and the
    /// extension must not wait for it.
    fn end_signal(&self, wrapper: &WrapperHeaders) {
        if let (true, Some(request_id)) = (wrapper.end, &wrapper.request_id) {
            self.inbox.push(Event::Wrapper(WrapperSignal::End {
                request_id: request_id.clone(),
            }));
        }
    }
}

/// Decodes off the async workers when the body is big.
async fn decode(body: Bytes, v05: bool) -> Result<Vec<Vec<ddlambda_wire::Span>>, DecodeError> {
    let inline = body.len() <= DECODE_INLINE_MAX;
    let run = move || {
        if body.is_empty() {
            // Some clients probe with an empty body: no traces, not an error.
            Ok(Vec::new())
        } else if v05 {
            trace::decode_v05(&body)
        } else {
            trace::decode_v04(&body)
        }
    };
    if inline {
        return run();
    }
    match tokio::task::spawn_blocking(run).await {
        Ok(decoded) => decoded,
        // Only this connection's task goes down; the listener keeps serving.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The wrapper's headers (wire/PROTOCOL.md).
struct WrapperHeaders {
    request_id: Option<String>,
    end: bool,
}

impl WrapperHeaders {
    fn of(headers: &HeaderMap) -> Self {
        Self {
            request_id: headers
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            end: header_is_true(headers, INVOCATION_END_HEADER),
        }
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn header_is_true(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn from_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("malformed JSON body: {e}"))
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    reply(status, "application/json", body.into())
}

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut body = body.into();
    body.push('\n');
    reply(status, "text/plain; charset=utf-8", body.into())
}

fn method_not_allowed(allowed: &'static str) -> Reply {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("this route takes {allowed}"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&allowed.replace(" or ", ", ")) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    r
}

/// The buffer is full: the payload was dropped (and counted). 429 tells the sender so; the
/// agent answers the same when it sheds load.
fn full() -> Reply {
    text(
        StatusCode::TOO_MANY_REQUESTS,
        "the extension's buffer is full: payload dropped",
    )
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Reply {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}
