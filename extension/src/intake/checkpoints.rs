//! `POST /ddlambda/v1/checkpoints` (wire/PROTOCOL.md): raw data-streams checkpoints from the
//! wrapper, straight into the streams aggregator. Aggregating on arrival keeps memory flat (a
//! sketch per edge, not a list of points) and the aggregator's buckets outlive invocations, so
//! there is nothing to hold per request: the flusher drains finished buckets, SHUTDOWN the rest.
//!
//! The trace agent routes the path here and answers `200 {"accepted": n}` on `Ok`, `400` with
//! the error's text on `Err`; the `ddlambda-invocation-end` header is the trace agent's to
//! handle, as on any wrapper request.

use ddlambda_wire::checkpoint::{CheckpointBatch, DecodeError};

use crate::aggregate::streams::StreamsAggregator;

/// What a good body brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub checkpoints: usize,
}

/// A body that was refused as a whole; nothing of it was aggregated.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("checkpoint {index} has a negative timestamp ({timestamp_ns} ns)")]
    NegativeTimestamp { index: usize, timestamp_ns: i64 },
}

/// Decodes a checkpoints body and aggregates it. `request_id` (the `ddlambda-request-id`
/// header) only labels the log line: checkpoints are not held per invocation.
pub fn handle(
    body: &[u8],
    request_id: Option<&str>,
    streams: &StreamsAggregator,
) -> Result<Accepted, CheckpointError> {
    let batch = CheckpointBatch::decode(body)?;
    if let Some((index, cp)) = batch
        .checkpoints
        .iter()
        .enumerate()
        .find(|(_, cp)| cp.timestamp_ns < 0)
    {
        return Err(CheckpointError::NegativeTimestamp {
            index,
            timestamp_ns: cp.timestamp_ns,
        });
    }
    let accepted = Accepted {
        checkpoints: batch.checkpoints.len(),
    };
    tracing::debug!(
        request_id = request_id.unwrap_or("-"),
        checkpoints = accepted.checkpoints,
        service = %batch.service,
        "data-streams checkpoints received"
    );
    streams.add_batch(batch);
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use ddlambda_wire::checkpoint::Checkpoint;

    use super::*;

    fn body(ts: i64) -> Vec<u8> {
        CheckpointBatch {
            service: "svc".into(),
            env: "none".into(),
            checkpoints: vec![Checkpoint {
                edge_tags: vec!["direction:in".into()],
                hash: 1,
                parent_hash: 0,
                timestamp_ns: ts,
                pathway_latency_ns: 0,
                edge_latency_ns: 0,
                payload_size: 0,
            }],
        }
        .encode()
    }

    #[test]
    fn good_body_is_aggregated() {
        let agg = StreamsAggregator::default();
        let n = handle(&body(1_000_000_000_000), Some("r1"), &agg).unwrap();
        assert_eq!(n.checkpoints, 1);
        let out = agg.take(UNIX_EPOCH + Duration::from_secs(2000), false);
        assert_eq!(out[0].buckets[0].points.len(), 1);
    }

    #[test]
    fn bad_bodies_are_refused_whole() {
        let agg = StreamsAggregator::default();
        assert!(handle(b"\xc1", None, &agg).is_err());
        let err = handle(&body(-5), None, &agg).unwrap_err();
        assert!(err.to_string().contains("negative timestamp"), "{err}");
        assert_eq!(agg.checkpoints_seen(), 0);
    }
}
