//! The `/api/beta/sketches` body: the agent's `SketchPayload` protobuf.
//!
//! Defined once here with prost derive, from `DataDog/agent-payload`
//! `proto/metrics/agent_payload.proto` (package `datadog.agentpayload`):
//!
//! ```text
//! SketchPayload { repeated Sketch sketches = 1; CommonMetadata metadata = 2; }
//! Sketch        { string metric = 1; string host = 2; repeated Distribution distributions = 3;
//!                 repeated string tags = 4; reserved 5, 6; repeated Dogsketch dogsketches = 7; }
//! Dogsketch     { int64 ts = 1; int64 cnt = 2; double min = 3; double max = 4; double avg = 5;
//!                 double sum = 6; repeated sint32 k = 7; repeated uint32 n = 8; }
//! CommonMetadata{ string agent_version = 1; string timezone = 2; double current_epoch = 3;
//!                 string internal_ip = 4; string public_ip = 5; string api_key = 6; }
//! ```
//!
//! The deprecated `Distribution` (field 3) is never sent.

use serde::Serialize;

use super::sketch::AgentSketch;

/// One distribution context and its sketches, one per 10 s interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SketchSeries {
    pub metric: String,
    pub tags: Vec<String>,
    pub points: Vec<SketchPoint>,
}

/// A sketch for the interval starting at `timestamp` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SketchPoint {
    pub timestamp: i64,
    pub sketch: AgentSketch,
}

/// One request's worth of sketches (at most [`MAX_SKETCHES_PER_BATCH`] contexts).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SketchBatch {
    pub sketches: Vec<SketchSeries>,
}

/// bottlecap's per-request cap (`dogstatsd/src/constants.rs`).
pub const MAX_SKETCHES_PER_BATCH: usize = 1000;

/// The agent-payload messages, field numbers as in the proto above.
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SketchPayload {
        #[prost(message, repeated, tag = "1")]
        pub sketches: Vec<Sketch>,
        #[prost(message, optional, tag = "2")]
        pub metadata: Option<CommonMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sketch {
        #[prost(string, tag = "1")]
        pub metric: String,
        #[prost(string, tag = "2")]
        pub host: String,
        #[prost(string, repeated, tag = "4")]
        pub tags: Vec<String>,
        #[prost(message, repeated, tag = "7")]
        pub dogsketches: Vec<Dogsketch>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dogsketch {
        #[prost(int64, tag = "1")]
        pub ts: i64,
        #[prost(int64, tag = "2")]
        pub cnt: i64,
        #[prost(double, tag = "3")]
        pub min: f64,
        #[prost(double, tag = "4")]
        pub max: f64,
        #[prost(double, tag = "5")]
        pub avg: f64,
        #[prost(double, tag = "6")]
        pub sum: f64,
        #[prost(sint32, repeated, tag = "7")]
        pub k: Vec<i32>,
        #[prost(uint32, repeated, tag = "8")]
        pub n: Vec<u32>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CommonMetadata {
        #[prost(string, tag = "1")]
        pub agent_version: String,
        #[prost(string, tag = "2")]
        pub timezone: String,
        #[prost(double, tag = "3")]
        pub current_epoch: f64,
        #[prost(string, tag = "4")]
        pub internal_ip: String,
        #[prost(string, tag = "5")]
        pub public_ip: String,
        #[prost(string, tag = "6")]
        pub api_key: String,
    }
}

/// The message for `batch`.
pub fn sketch_payload(batch: &SketchBatch) -> proto::SketchPayload {
    proto::SketchPayload {
        sketches: batch
            .sketches
            .iter()
            .map(|s| proto::Sketch {
                metric: s.metric.clone(),
                host: String::new(),
                tags: s.tags.clone(),
                dogsketches: s.points.iter().map(dogsketch).collect(),
            })
            .collect(),
        metadata: None,
    }
}

fn dogsketch(p: &SketchPoint) -> proto::Dogsketch {
    let s = &p.sketch;
    proto::Dogsketch {
        ts: p.timestamp,
        cnt: i64::try_from(s.count).unwrap_or(i64::MAX),
        min: s.min,
        max: s.max,
        avg: s.avg,
        sum: s.sum,
        k: s.bins.keys().map(|k| i32::from(*k)).collect(),
        n: s.bins.values().copied().collect(),
    }
}

/// The protobuf body for `/api/beta/sketches` (uncompressed; the sink compresses).
pub fn sketch_payload_protobuf(batch: &SketchBatch) -> Vec<u8> {
    prost::Message::encode_to_vec(&sketch_payload(batch))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn encodes_dogsketches_with_agent_keys() {
        let mut sketch = AgentSketch::default();
        sketch.insert(1.0);
        sketch.insert_n(-2.0, 3);
        let batch = SketchBatch {
            sketches: vec![SketchSeries {
                metric: "lat".into(),
                tags: vec!["a:b".into()],
                points: vec![SketchPoint {
                    timestamp: 1_700_000_000,
                    sketch,
                }],
            }],
        };
        let bytes = sketch_payload_protobuf(&batch);
        let back = proto::SketchPayload::decode(bytes.as_slice()).expect("decodes");
        let d = &back.sketches[0].dogsketches[0];
        assert_eq!(back.sketches[0].metric, "lat");
        assert_eq!(back.sketches[0].tags, ["a:b"]);
        assert_eq!(
            (d.ts, d.cnt, d.min, d.max, d.sum),
            (1_700_000_000, 4, -2.0, 1.0, -5.0)
        );
        assert_eq!(d.k, [-i32::from(super::super::sketch::key(2.0)), 1338]);
        assert_eq!(d.n, [3, 1]);
    }
}
