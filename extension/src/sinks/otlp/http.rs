//! OTLP/HTTP requests and the specification's response rules: 2xx is success (a partial
//! success is logged with its counts, never retried); 408, 429, 502, 503 and 504 are worth
//! another attempt; anything else is a refusal. The body of a failure is a `google.rpc.Status`
//! whose message goes into the error.
//!
//! A `Retry-After` on a retryable answer is honoured: the flush layer waits at least that long
//! before the next attempt, or carries the item to the next flush when the wait does not fit
//! in the flush's budget.

use std::sync::OnceLock;
use std::time::Duration;

use http::StatusCode;
use prost::Message;

use super::config::SignalConfig;
use crate::sinks::SendError;

/// How much of a response body is read: enough for any status or partial-success message.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// `ExportTraceServiceResponse` and `ExportMetricsServiceResponse` alike: field 1, whose
/// `rejected_spans` / `rejected_data_points` and `error_message` share numbers.
#[derive(Clone, PartialEq, Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// `google.rpc.Status`, the body of a failed export.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The HTTP client, built on first use (its TLS set-up loads root certificates).
#[derive(Default)]
pub struct Client(OnceLock<Result<reqwest::Client, String>>);

impl Client {
    pub fn warm_up(&self) {
        let _ = self.get();
    }

    fn get(&self) -> Result<&reqwest::Client, SendError> {
        self.0
            .get_or_init(|| {
                crate::http_client(concat!(
                    "ddlambda-extension/",
                    env!("CARGO_PKG_VERSION"),
                    " (OTLP/HTTP)"
                ))
            })
            .as_ref()
            .map_err(|e| SendError::Retryable(format!("HTTP client unavailable: {e}")))
    }

    /// POSTs one export request; `what` names the payload's unit in logs (`spans`, `points`).
    pub async fn export(
        &self,
        signal: &SignalConfig,
        body: Vec<u8>,
        timeout: Duration,
        what: &str,
    ) -> Result<(), SendError> {
        let url = &signal.url;
        let mut req = self
            .get()?
            .post(url)
            .timeout(timeout.min(signal.timeout))
            .header(http::header::CONTENT_TYPE, "application/x-protobuf");
        for (k, v) in &signal.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let body = if signal.gzip {
            req = req.header(http::header::CONTENT_ENCODING, "gzip");
            crate::sinks::datadog::gzip(&body)
        } else {
            body
        };
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::from_request(url, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = read_limited(resp).await;
        if status.is_success() {
            log_partial_success(url, &bytes, what);
            return Ok(());
        }
        let mut text = format!("POST {url}: HTTP {status}");
        if let Ok(s) = RpcStatus::decode(&bytes[..])
            && !s.message.is_empty()
        {
            text.push_str(&format!(": {}", s.message));
        }
        Err(if retryable(status) {
            SendError::retryable(text, &headers)
        } else {
            SendError::Rejected(text)
        })
    }
}

/// The OTLP/HTTP specification's retryable statuses (and 408, which means the same).
pub fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 502 | 503 | 504)
}

async fn read_limited(mut resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    out
}

fn log_partial_success(url: &str, body: &[u8], what: &str) {
    let Ok(ExportResponse {
        partial_success: Some(p),
    }) = ExportResponse::decode(body)
    else {
        return;
    };
    if p.rejected != 0 || !p.error_message.is_empty() {
        tracing::warn!(
            "POST {url}: partial success, the receiver rejected {} {what}: {}",
            p.rejected,
            p.error_message
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_follow_the_otlp_specification() {
        for s in [408, 429, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 500, 501] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
