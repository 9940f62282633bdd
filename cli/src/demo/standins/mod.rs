//! Embedded stand-ins for SQS and Kinesis: a loopback HTTP server speaking the AWS JSON
//! protocol (`X-Amz-Target`, `application/x-amz-json-1.0` / `-1.1`) for exactly the calls the
//! demo's functions and its event source mapping make, so the demo needs no AWS account and no
//! Python. Signatures are not checked. State lives in memory for the server's lifetime.
//!
//! Deliberate differences from the services: one Kinesis shard; SQS `ReceiveMessage` hands each
//! message out once (no visibility timeout, `DeleteMessage*` only acknowledges); no long polling.

mod kinesis;
mod sqs;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Account id in the ARNs and queue URLs the stand-ins hand out.
pub const ACCOUNT: &str = "123456789012";

/// An AWS-style client error: `__type` and `message`, status 400.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A missing or mistyped request member.
    fn invalid(member: &str) -> Self {
        Self::new(
            "InvalidParameterValue",
            format!("{member} is missing or not of the right type"),
        )
    }
}

type ApiResult = Result<Value, ApiError>;

/// A required string member of a request body.
fn string<'a>(body: &'a Value, member: &str) -> Result<&'a str, ApiError> {
    body.get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid(member))
}

/// The running server; stops when dropped.
pub struct StandIns {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for StandIns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    sqs: Mutex<sqs::Sqs>,
    kinesis: Mutex<kinesis::Kinesis>,
}

impl StandIns {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start(region: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let endpoint = format!("http://{addr}");
        let state = Arc::new(State {
            sqs: Mutex::new(sqs::Sqs::new(&endpoint, region)),
            kinesis: Mutex::new(kinesis::Kinesis::new(region)),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    // A client hanging up mid-request is its business, not the demo's.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `http://127.0.0.1:<port>`: the `AWS_ENDPOINT_URL` for SQS and Kinesis clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(error(
                "1.0",
                &ApiError::new("InternalFailure", e.to_string()),
            ));
        }
    };
    let (service, operation) = target.split_once('.').unwrap_or(("", ""));
    let version = if service == "AmazonSQS" { "1.0" } else { "1.1" };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let e = ApiError::new("SerializationException", format!("body is not JSON: {e}"));
            return Ok(error(version, &e));
        }
    };
    let result = match service {
        "AmazonSQS" => lock(&state.sqs).call(operation, &request),
        "Kinesis_20131202" => lock(&state.kinesis).call(operation, &request),
        _ => Err(ApiError::new(
            "UnknownOperationException",
            format!("X-Amz-Target {target:?} is not served by the demo's stand-ins"),
        )),
    };
    Ok(match result {
        Ok(v) => json_response(version, StatusCode::OK, &v),
        Err(e) => error(version, &e),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps half-updated in a way that matters to the demo.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(version: &str, e: &ApiError) -> Response<Full<Bytes>> {
    json_response(
        version,
        StatusCode::BAD_REQUEST,
        &json!({"__type": e.kind, "message": e.message}),
    )
}

fn json_response(version: &str, status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())));
    *resp.status_mut() = status;
    if let Ok(ct) = format!("application/x-amz-json-{version}").parse() {
        resp.headers_mut().insert("content-type", ct);
    }
    resp
}

/// Seconds since the epoch, as the JSON protocols write timestamps.
fn epoch_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests;
