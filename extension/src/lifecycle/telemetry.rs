//! The Telemetry API receiver: a tolerant HTTP listener for the platform's record batches.
//!
//! Every record is parsed on its own; an unknown type or a malformed record is logged and
//! skipped, and the batch is always answered 200 (a 4xx would only make Lambda redeliver the
//! same batch, or drop it whole as the `lambda-extension` crate does). It binds `0.0.0.0`
//! because Lambda posts to the sandbox's own address (`sandbox.localdomain`), not loopback.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::enhanced::oom;

/// Lambda sends at most `maxBytes` (256 KiB) per batch; leave ample room.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// One platform record, classified.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `type`, e.g. `platform.runtimeDone`, or `function` (see [`parse_batch`]).
    pub kind: String,
    /// `record.requestId` when there is one.
    pub request_id: Option<String>,
    /// The whole record as received (`time`, `type`, `record`), for observers.
    pub raw: Value,
}

impl Record {
    pub fn is_runtime_done(&self) -> bool {
        self.kind == "platform.runtimeDone"
    }

    /// `record.status` of a runtimeDone or report (`success`, `timeout`, `error`, `failure`).
    pub fn status(&self) -> Option<&str> {
        self.raw.get("record")?.get("status")?.as_str()
    }
}

/// Something that wants to see every platform record (enhanced metrics, error spans).
pub trait TelemetryObserver: Send + Sync {
    fn on_platform_record(&self, record: &Value);
    /// INVOKE for `request_id` (process metrics start sampling here).
    fn on_invoke(&self, _request_id: &str) {}
    /// The lifecycle stopped waiting for `request_id`'s runtime (its `runtimeDone` or the
    /// wrapper's end signal, or waiting gave up), right before that invocation's flush: the
    /// last moment to add to it.
    fn on_runtime_done(&self, _request_id: &str) {}
    /// SHUTDOWN, before the final flush.
    fn on_shutdown(&self) {}
}

/// The first item of a record, read without decoding its body.
#[derive(serde::Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    record: Option<&'a RawValue>,
}

/// Parses one batch. Never fails: bad items are skipped with a log line.
///
/// `platform.*` records are kept whole. `function` records (the function's own log lines)
/// can be most of a batch and are only of interest when they report an out-of-memory
/// failure: their raw JSON text is scanned for [`oom`]'s patterns (none of which contains a
/// character JSON escapes) without being decoded, and only a matching line is kept, reduced to
/// its request id and the matched pattern; the text itself is dropped with the batch.
pub fn parse_batch(body: &[u8]) -> Vec<Record> {
    let items = match serde_json::from_slice::<Vec<&RawValue>>(body) {
        Ok(items) => items,
        Err(e) => {
            match serde_json::from_slice::<Value>(body) {
                Ok(other) => tracing::warn!(
                    "telemetry batch is not a JSON array (a {}); skipped",
                    kind_of(&other)
                ),
                Err(_) => tracing::warn!("telemetry batch is not JSON ({e}); skipped"),
            }
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, raw) in items.into_iter().enumerate() {
        let Ok(item) = serde_json::from_str::<Item<'_>>(raw.get()) else {
            tracing::warn!("telemetry record {i} is not an object with a string `type`; skipped");
            continue;
        };
        if item.kind == "function" {
            out.extend(function_record(&item));
            continue;
        }
        if !item.kind.starts_with("platform.") {
            tracing::debug!("telemetry record {i} of type {:?} ignored", item.kind);
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(raw.get()) else {
            continue;
        };
        let request_id = value
            .get("record")
            .and_then(|r| r.get("requestId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        out.push(Record {
            kind: item.kind.into_owned(),
            request_id,
            raw: value,
        });
    }
    out
}

/// A `function` record reporting an out-of-memory failure, reduced to
/// `{"type":"function","time":…,"record":{"requestId":…,"message":<the matched pattern>}}`.
fn function_record(item: &Item<'_>) -> Option<Record> {
    let raw = item.record?.get();
    let pattern = oom::matched_pattern(raw)?;
    // Only in the JSON log format does the line carry its request id.
    let request_id = serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|r| r.get("requestId")?.as_str().map(str::to_owned));
    let mut record = serde_json::Map::new();
    if let Some(id) = &request_id {
        record.insert("requestId".to_owned(), Value::from(id.as_str()));
    }
    record.insert("message".to_owned(), Value::from(pattern));
    let mut raw = serde_json::Map::new();
    raw.insert("type".to_owned(), Value::from("function"));
    if let Some(time) = &item.time {
        raw.insert("time".to_owned(), Value::from(time.as_ref()));
    }
    raw.insert("record".to_owned(), Value::Object(record));
    Some(Record {
        kind: "function".to_owned(),
        request_id,
        raw: Value::Object(raw),
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Binds the receiver on all interfaces (see the module doc).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await
}

/// Serves batches from `listener`, sending every record to `records`.
pub async fn serve(listener: TcpListener, records: mpsc::UnboundedSender<Record>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("telemetry listener accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let records = records.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, records.clone()));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("telemetry connection ended: {e}");
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    records: mpsc::UnboundedSender<Record>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match Limited::new(req.into_body(), MAX_BATCH_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            tracing::warn!("telemetry batch unreadable ({e}); skipped");
            return Ok(ok());
        }
    };
    for record in parse_batch(&body) {
        // The receiver is gone only while the process exits.
        let _ = records.send(record);
    }
    Ok(ok())
}

fn ok() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"OK")));
    *r.status_mut() = StatusCode::OK;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_bad_records_and_keeps_the_rest() {
        let body = br#"[
            {"time":"2026-11-23T00:00:00.000Z","type":"platform.start","record":{"requestId":"r1","version":"$LATEST"}},
            {"time":"2026-11-23T00:00:00.010Z","type":"platform.restoreRuntimeDone","record":{}},
            {"type": 5},
            "garbage",
            {"time":"2026-11-23T00:00:00.020Z","type":"platform.runtimeDone","record":{"requestId":"r1","status":"success","metrics":{"durationMs":3.2}}},
            {"time":"2026-11-23T00:00:00.020Z","type":"function","record":"hello"},
            {"time":"2026-11-23T00:00:00.030Z","type":"function","record":"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"},
            {"time":"2026-11-23T00:00:00.040Z","type":"function","record":{"timestamp":"t","level":"ERROR","requestId":"r1","message":"[ERROR] MemoryError\nTraceback (most recent call last)"}},
            {"time":"2026-11-23T00:00:00.050Z","type":"extension","record":"java.lang.OutOfMemoryError"}
        ]"#;
        let records = parse_batch(body);
        let kinds: Vec<_> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "platform.start",
                "platform.restoreRuntimeDone",
                "platform.runtimeDone",
                "function",
                "function",
            ]
        );
        // Function lines are kept only when they report an OOM, reduced to the pattern.
        assert_eq!(records[3].request_id, None);
        assert_eq!(
            records[3].raw,
            serde_json::json!({"type":"function","time":"2026-11-23T00:00:00.030Z",
                "record":{"message":"JavaScript heap out of memory"}})
        );
        assert_eq!(records[4].request_id.as_deref(), Some("r1"));
        assert_eq!(records[4].raw["record"]["message"], "MemoryError");
        assert!(records[2].is_runtime_done());
        assert_eq!(records[2].request_id.as_deref(), Some("r1"));
        assert_eq!(records[2].status(), Some("success"));
        assert!(parse_batch(b"{not json").is_empty());
        assert!(parse_batch(br#"{"type":"platform.start"}"#).is_empty());
    }

    #[tokio::test]
    async fn answers_200_even_to_a_bad_batch() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = tokio::spawn(serve(listener, tx));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let bad = client
            .post(format!("http://{addr}/"))
            .body("[{\"type\":\"platform.unknownThing\"}, 1, {\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"x\"}}]")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 200);
        let first = rx.recv().await.unwrap();
        assert_eq!(first.kind, "platform.unknownThing");
        let second = rx.recv().await.unwrap();
        assert_eq!(second.request_id.as_deref(), Some("x"));
        let garbage = client
            .post(format!("http://{addr}/"))
            .body("not json at all")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 200);
        server.abort();
    }
}
