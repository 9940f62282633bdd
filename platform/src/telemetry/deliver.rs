//! One subscriber's delivery task: buffers records by the subscriber's `maxItems`, `maxBytes`
//! and `timeoutMs`, and POSTs each batch as a JSON array, one batch in flight at a time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};

use super::{Command, Record, Subscription};
use crate::config::TelemetryFaults;
use crate::timeline::{Actor, EventKind, TimelineLog};

/// How long one POST may take before the batch counts as undelivered.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection attempts per batch (the subscriber's listener may be a moment late).
const ATTEMPTS: u32 = 3;

pub(super) async fn run(
    sub: Subscription,
    faults: TelemetryFaults,
    mut rx: mpsc::UnboundedReceiver<Command>,
    timeline: TimelineLog,
    actor: Actor,
) {
    let mut batch: Vec<Arc<Record>> = Vec::new();
    let mut bytes = 0usize;
    let mut due: Option<Instant> = None;
    let mut sent = 0u32;
    let mut send =
        async |batch: &mut Vec<Arc<Record>>, bytes: &mut usize, due: &mut Option<Instant>| {
            if batch.is_empty() {
                return;
            }
            sent += 1;
            let records = std::mem::take(batch);
            *bytes = 0;
            *due = None;
            deliver(&sub, &faults, sent, &records, &timeline, &actor).await;
        };
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                send(&mut batch, &mut bytes, &mut due).await;
                continue;
            }
        };
        match cmd {
            Some(Command::Record(r)) => {
                if !batch.is_empty() && bytes + r.bytes > sub.max_bytes {
                    send(&mut batch, &mut bytes, &mut due).await;
                }
                bytes += r.bytes;
                batch.push(r);
                due.get_or_insert_with(|| Instant::now() + sub.timeout);
                if batch.len() >= sub.max_items || bytes >= sub.max_bytes {
                    send(&mut batch, &mut bytes, &mut due).await;
                }
            }
            Some(Command::Flush(ack)) => {
                send(&mut batch, &mut bytes, &mut due).await;
                let _ = ack.send(());
            }
            None => {
                send(&mut batch, &mut bytes, &mut due).await;
                return;
            }
        }
    }
}

async fn deliver(
    sub: &Subscription,
    faults: &TelemetryFaults,
    number: u32,
    records: &[Arc<Record>],
    timeline: &TimelineLog,
    actor: &Actor,
) {
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    if faults
        .drop_every
        .is_some_and(|n| n > 0 && number.is_multiple_of(n))
    {
        let kind = EventKind::TelemetryBatch {
            records: records.len(),
            delivered: false,
            dropped: true,
        };
        timeline.record(actor.clone(), kind, None);
        return;
    }
    let body: Bytes = {
        let values: Vec<&serde_json::Value> = records.iter().map(|r| &r.json).collect();
        serde_json::to_vec(&values).unwrap_or_default().into()
    };
    let copies = if faults.duplicate { 2 } else { 1 };
    for _ in 0..copies {
        let mut delivered = false;
        for attempt in 0..ATTEMPTS {
            match timeout(POST_TIMEOUT, post(sub, body.clone())).await {
                Ok(Ok(status)) => {
                    delivered = status.is_success();
                    if !delivered {
                        tracing::debug!(subscriber = %sub.name, %status, "telemetry batch refused");
                    }
                    break;
                }
                Ok(Err(e)) => {
                    tracing::debug!(subscriber = %sub.name, error = %e, attempt, "telemetry POST failed")
                }
                Err(_) => {
                    tracing::debug!(subscriber = %sub.name, attempt, "telemetry POST timed out")
                }
            }
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
        }
        let kind = EventKind::TelemetryBatch {
            records: records.len(),
            delivered,
            dropped: false,
        };
        timeline.record(actor.clone(), kind, None);
    }
}

async fn post(
    sub: &Subscription,
    body: Bytes,
) -> Result<http::StatusCode, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(("127.0.0.1", sub.port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::post(sub.path.as_str())
        .header(http::header::HOST, sub.host.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    let resp = sender.send_request(req).await?;
    Ok(resp.status())
}
