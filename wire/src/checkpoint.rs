//! Raw data-streams checkpoints, wrapper → extension (`POST /ddlambda/v1/checkpoints`, see
//! `PROTOCOL.md`). The wrapper only records points; the extension owns the buckets and sketches,
//! so a checkpoint costs the function a hash and a push, and the same aggregation serves every
//! invocation of the sandbox.
//!
//! Body: msgpack map (named fields, so the format can grow):
//! `{service: str, env: str, checkpoints: [{edge_tags: [str], hash: u64, parent_hash: u64,
//! timestamp_ns: i64, pathway_latency_ns: i64, edge_latency_ns: i64, payload_size: u64}]}`.

use serde::{Deserialize, Serialize};

/// One checkpoint as set: what a tracer would add to its stats bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Sorted edge tags, e.g. `direction:in`, `topic:<arn>`, `type:sqs`.
    pub edge_tags: Vec<String>,
    pub hash: u64,
    pub parent_hash: u64,
    /// When the checkpoint was set, Unix nanoseconds: chooses the bucket.
    pub timestamp_ns: i64,
    /// Since the first checkpoint of the pathway; never negative.
    pub pathway_latency_ns: i64,
    /// Since the previous checkpoint; never negative.
    pub edge_latency_ns: i64,
    /// Bytes of the message (body and attributes), 0 when unknown.
    #[serde(default)]
    pub payload_size: u64,
}

/// A body of `POST /ddlambda/v1/checkpoints`: the checkpoints one function set, with the
/// service and env their hashes were computed with (the payload's `Service` and `Env`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBatch {
    pub service: String,
    pub env: String,
    pub checkpoints: Vec<Checkpoint>,
}

/// A checkpoints body that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid checkpoints body: {0}")]
pub struct DecodeError(#[from] rmp_serde::decode::Error);

impl CheckpointBatch {
    /// The msgpack body.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain strings and integers into a Vec cannot fail.
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }

    /// Reads a body; a bad body is an error and nothing of it is kept.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        Ok(rmp_serde::from_slice(body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let batch = CheckpointBatch {
            service: "svc".into(),
            env: "prod".into(),
            checkpoints: vec![Checkpoint {
                edge_tags: vec!["direction:in".into(), "type:sqs".into()],
                hash: u64::MAX,
                parent_hash: 0,
                timestamp_ns: 1_700_000_000_000_000_000,
                pathway_latency_ns: 5,
                edge_latency_ns: 3,
                payload_size: 120,
            }],
        };
        assert_eq!(CheckpointBatch::decode(&batch.encode()).unwrap(), batch);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(CheckpointBatch::decode(b"\x93\x01").is_err());
        assert!(CheckpointBatch::decode(b"").is_err());
    }
}
