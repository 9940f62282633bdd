//! One loopback HTTP server for the Runtime, Extensions and Telemetry APIs, as
//! `AWS_LAMBDA_RUNTIME_API` points every child at a single host:port.

mod extensions;
mod runtime;
mod telemetry;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::PlatformError;
use crate::platform::Shared;

/// Lambda's limit on a synchronous response (and on a request body we accept).
pub(crate) const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// Binds 127.0.0.1 (port 0 = any free port).
pub(crate) async fn bind(port: u16) -> Result<TcpListener, PlatformError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(PlatformError::Bind)
}

/// Serves until the task is aborted; aborting it also ends every open connection (and the
/// long polls in them), so a dropped platform leaves no task behind.
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let shared = shared.clone();
            connections.spawn(async move {
                let service = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(route(shared, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method().clone(), segments.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            runtime::next(shared).await
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            let id = id.to_string();
            runtime::response(shared, &id, req).await
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let id = id.to_string();
            runtime::error_report(shared, &id, req).await
        }
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            runtime::init_error(shared, req).await
        }
        (Method::POST, ["2020-01-01", "extension", "register"]) => {
            extensions::register(shared, req).await
        }
        (Method::GET, ["2020-01-01", "extension", "event", "next"]) => {
            extensions::next(shared, req).await
        }
        (Method::POST, ["2020-01-01", "extension", "init", "error"]) => {
            extensions::report_error(shared, req, true).await
        }
        (Method::POST, ["2020-01-01", "extension", "exit", "error"]) => {
            extensions::report_error(shared, req, false).await
        }
        (Method::PUT, ["2022-07-01", "telemetry"]) => telemetry::subscribe(shared, req).await,
        (method, _) => error(
            StatusCode::NOT_FOUND,
            "InvalidRequest",
            &format!("{method} {path} is not a Runtime, Extensions or Telemetry API route"),
        ),
    }
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Lambda's error body: `{"errorMessage", "errorType"}`.
pub(crate) fn error(status: StatusCode, error_type: &str, message: &str) -> HttpResponse {
    json(
        status,
        &serde_json::json!({ "errorMessage": message, "errorType": error_type }),
    )
}

/// `202 {"status":"OK"}`, the answer to every accepted report.
pub(crate) fn accepted() -> HttpResponse {
    json(StatusCode::ACCEPTED, &serde_json::json!({ "status": "OK" }))
}

/// Reads a body of at most `limit` bytes; `None` if larger or broken.
pub(crate) async fn body(req: Request<Incoming>, limit: usize) -> Option<Bytes> {
    Limited::new(req.into_body(), limit)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
}

/// A header as a string.
pub(crate) fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The address children reach the APIs at.
pub(crate) fn runtime_api(addr: SocketAddr) -> String {
    format!("127.0.0.1:{}", addr.port())
}
