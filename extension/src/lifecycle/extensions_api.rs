//! A small client for the Extensions and Telemetry APIs at `AWS_LAMBDA_RUNTIME_API`.
//!
//! Plain HTTP/1.1 over a fresh loopback connection per call (hyper's connection API): no pool
//! to go stale across a freeze, no TLS, nothing to build before the first call.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;

/// `Lambda-Extension-Identifier`: names the extension on every call after register.
pub const EXTENSION_ID_HEADER: &str = "Lambda-Extension-Identifier";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("connecting to the Runtime API at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{method} {path}: {source}")]
    Http {
        method: Method,
        path: String,
        source: hyper::Error,
    },
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
    #[error("{0}")]
    Protocol(String),
}

/// What register answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub extension_id: String,
    /// Present when the platform honoured `Lambda-Extension-Accept-Feature: accountId`.
    pub account_id: Option<String>,
    pub function_name: Option<String>,
}

/// What `/next` delivered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "eventType", rename_all = "UPPERCASE")]
pub enum NextEvent {
    #[serde(rename_all = "camelCase")]
    Invoke {
        request_id: String,
        /// Epoch milliseconds.
        deadline_ms: u64,
        #[serde(default)]
        invoked_function_arn: String,
    },
    #[serde(rename_all = "camelCase")]
    Shutdown {
        #[serde(default)]
        shutdown_reason: String,
        /// Epoch milliseconds.
        deadline_ms: u64,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody {
    #[serde(default)]
    function_name: Option<String>,
    #[serde(default)]
    account_id: Option<String>,
}

/// The client. Cloning is free.
#[derive(Debug, Clone)]
pub struct ExtensionsApi {
    addr: String,
}

impl ExtensionsApi {
    /// `addr` is `AWS_LAMBDA_RUNTIME_API` (`host:port`).
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(HeaderMap, Bytes), ApiError> {
        self.call_then(method, path, headers, body, || {}).await
    }

    /// [`Self::call`], running `queued` once the request is handed to the connection (so
    /// work that must not delay the request starts right after it).
    async fn call_then(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        queued: impl FnOnce(),
    ) -> Result<(HeaderMap, Bytes), ApiError> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|source| ApiError::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let http_err = |source| ApiError::Http {
            method: method.clone(),
            path: path.to_owned(),
            source,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_err)?;
        tokio::spawn(async move {
            // The connection ends with the response; its error, if any, surfaces there.
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::HOST, &self.addr);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let has_body = body.is_some();
        if has_body {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ApiError::Protocol(format!("building {method} {path}: {e}")))?;
        // hyper queues the request to the connection task when `send_request` is called.
        let response = sender.send_request(req);
        queued();
        let resp = response.await.map_err(http_err)?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(http_err)?.to_bytes();
        if !parts.status.is_success() {
            return Err(ApiError::Status {
                method,
                path: path.to_owned(),
                status: parts.status,
                body: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            });
        }
        Ok((parts.headers, bytes))
    }

    /// Registers for INVOKE and SHUTDOWN under `name` (the executable's file name), asking
    /// for the account id.
    pub async fn register(&self, name: &str) -> Result<Registration, ApiError> {
        let (headers, body) = self
            .call(
                Method::POST,
                "/2020-01-01/extension/register",
                &[
                    ("Lambda-Extension-Name", name),
                    ("Lambda-Extension-Accept-Feature", "accountId"),
                ],
                Some(br#"{"events":["INVOKE","SHUTDOWN"]}"#.to_vec()),
            )
            .await?;
        let extension_id = headers
            .get(EXTENSION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError::Protocol(format!("register answered without {EXTENSION_ID_HEADER}"))
            })?
            .to_owned();
        // The body is informational; an odd one must not fail registration.
        let info: Option<RegisterBody> = serde_json::from_slice(&body).ok();
        let (function_name, account_id) = info
            .map(|b| (b.function_name, b.account_id))
            .unwrap_or_default();
        Ok(Registration {
            extension_id,
            account_id: account_id.filter(|a| !a.is_empty()),
            function_name,
        })
    }

    /// Long-polls the next event.
    pub async fn next(&self, extension_id: &str) -> Result<NextEvent, ApiError> {
        self.next_then(extension_id, || {}).await
    }

    /// [`Self::next`], running `queued` as soon as the request is on its way (the first
    /// `/next` ends init: what can wait, waits for it).
    pub async fn next_then(
        &self,
        extension_id: &str,
        queued: impl FnOnce(),
    ) -> Result<NextEvent, ApiError> {
        let (_, body) = self
            .call_then(
                Method::GET,
                "/2020-01-01/extension/event/next",
                &[(EXTENSION_ID_HEADER, extension_id)],
                None,
                queued,
            )
            .await?;
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::Protocol(format!(
                "/next answered an unreadable event ({e}): {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ))
        })
    }

    /// Subscribes `destination` (an `http://host:port/` URI) to platform records.
    pub async fn subscribe_telemetry(
        &self,
        extension_id: &str,
        destination: &str,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({
            "schemaVersion": "2022-12-13",
            "destination": { "protocol": "HTTP", "URI": destination },
            // `function`: the function's log lines, scanned for out-of-memory reports
            // (`telemetry::parse_batch` keeps only those); `extension` logs are of no use here.
            "types": ["platform", "function"],
            // The smallest delay Lambda allows: runtimeDone is what ends an invocation.
            "buffering": { "maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25 },
        });
        self.call(
            Method::PUT,
            "/2022-07-01/telemetry",
            &[(EXTENSION_ID_HEADER, extension_id)],
            Some(body.to_string().into_bytes()),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_next_events() {
        let invoke: NextEvent = serde_json::from_str(
            r#"{"eventType":"INVOKE","deadlineMs":1700000000123,"requestId":"r-1",
                "invokedFunctionArn":"arn:aws:lambda:us-east-1:1:function:f",
                "tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-2-3"}}"#,
        )
        .unwrap();
        assert_eq!(
            invoke,
            NextEvent::Invoke {
                request_id: "r-1".into(),
                deadline_ms: 1700000000123,
                invoked_function_arn: "arn:aws:lambda:us-east-1:1:function:f".into()
            }
        );
        let shutdown: NextEvent = serde_json::from_str(
            r#"{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":5}"#,
        )
        .unwrap();
        assert_eq!(
            shutdown,
            NextEvent::Shutdown {
                shutdown_reason: "spindown".into(),
                deadline_ms: 5
            }
        );
    }
}
