//! Reading a request body under a byte cap, without buffering past it.

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::{Reply, text};

/// Why a body was not read.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Declared or found to be over the cap.
    TooLarge { cap: usize, declared: Option<u64> },
    /// The client went away or sent a broken chunked encoding.
    Unreadable(String),
}

impl Refusal {
    pub(super) fn reply(&self) -> Reply {
        let status = match self {
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Unreadable(_) => StatusCode::BAD_REQUEST,
        };
        text(status, self.to_string())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge {
                cap,
                declared: Some(len),
            } => write!(f, "body of {len} bytes is over the {cap}-byte limit"),
            Refusal::TooLarge {
                cap,
                declared: None,
            } => write!(f, "body is over the {cap}-byte limit"),
            Refusal::Unreadable(e) => write!(f, "could not read the body: {e}"),
        }
    }
}

/// Collects `body`, refusing a declared `Content-Length` over `cap` before reading a byte, and
/// an undeclared (chunked) one as soon as the count passes `cap`.
pub(super) async fn collect(
    headers: &HeaderMap,
    body: Incoming,
    cap: usize,
) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap as u64) {
        return Err(Refusal::TooLarge { cap, declared });
    }
    match Limited::new(body, cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Refusal::TooLarge { cap, declared })
        }
        Err(e) => Err(Refusal::Unreadable(e.to_string())),
    }
}
