//! Data-streams aggregation: raw checkpoints (from the wrapper, `wire::checkpoint`) into 10-second
//! buckets per (hash, parent hash, edge tags), each with DDSketches of pathway latency, edge
//! latency and payload size; drained as [`PipelineStats`], encoded for the intake by
//! [`encode_pipeline_stats`].
//!
//! Finished buckets (`start + 10 s ≤ now`) leave at every flush, as the Go tracer sends them;
//! SHUTDOWN (`force`) takes the open ones too, so no checkpoint is lost. A checkpoint arriving
//! late for a bucket already sent opens that bucket again: the backend merges submissions.
//!
//! Sketches are `libdd-ddsketch`'s (γ = 1.015625, offset 1338.5, latencies in seconds, sizes in
//! bytes): byte-identical to what ddtrace (Python) 4.x sends.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ddlambda_wire::checkpoint::{Checkpoint, CheckpointBatch};
use flate2::Compression;
use flate2::write::GzEncoder;
use libdd_ddsketch::DDSketch;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::event::{Drain, Outgoing};

/// Bucket width, as every tracer uses.
pub const BUCKET: Duration = Duration::from_secs(10);
/// Upstream path on `trace.agent.<site>`.
pub const PIPELINE_STATS_PATH: &str = "/api/v0.1/pipeline_stats";
/// `Lang` of the payloads we build (tracers send `go`, `python`, `javascript`).
pub const LANG: &str = "rust";

/// One pipeline-stats payload: the finished buckets of one (service, env). Its `Serialize` is
/// the readable form (sketches as counts and quantiles) the local sink prints; the intake form
/// is [`encode_pipeline_stats`].
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStats {
    pub service: String,
    pub env: String,
    pub tracer_version: &'static str,
    pub buckets: Vec<StatsBucket>,
}

/// Ten seconds of checkpoints.
#[derive(Debug, Clone, Serialize)]
pub struct StatsBucket {
    /// Unix nanoseconds, aligned on the bucket width.
    pub start_ns: u64,
    pub duration_ns: u64,
    pub points: Vec<StatsPoint>,
}

/// Every checkpoint of one edge in one bucket.
#[derive(Debug, Clone, Serialize)]
pub struct StatsPoint {
    pub edge_tags: Vec<String>,
    pub hash: u64,
    pub parent_hash: u64,
    /// Seconds.
    pub pathway_latency: Sketch,
    /// Seconds.
    pub edge_latency: Sketch,
    /// Bytes.
    pub payload_size: Sketch,
}

/// A DDSketch; serializes readably as its count and a few quantiles.
#[derive(Debug, Clone, Default)]
pub struct Sketch(pub DDSketch);

impl Sketch {
    fn add(&mut self, v: f64) {
        // Only negative, NaN or infinite values are refused; callers pass clamped finite values.
        let _ = self.0.add(v);
    }

    /// Number of values added.
    pub fn count(&self) -> f64 {
        self.0.count()
    }

    /// The value at quantile `q` (0..=1), within the sketch's relative accuracy.
    pub fn quantile(&self, q: f64) -> f64 {
        let bins = self.0.ordered_bins();
        let total: f64 = bins.iter().map(|b| b.1).sum();
        let rank = q.clamp(0.0, 1.0) * (total - 1.0).max(0.0);
        let mut seen = 0.0;
        for (value, weight) in &bins {
            seen += weight;
            if *weight > 0.0 && seen > rank {
                return *value;
            }
        }
        bins.last().map_or(0.0, |b| b.0)
    }

    /// The protobuf bytes the intake reads.
    pub fn encode(&self) -> Vec<u8> {
        self.0.clone().encode_to_vec()
    }
}

impl Serialize for Sketch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("count", &self.count())?;
        m.serialize_entry("p50", &self.quantile(0.5))?;
        m.serialize_entry("p99", &self.quantile(0.99))?;
        m.serialize_entry("max", &self.quantile(1.0))?;
        m.end()
    }
}

/// Why a payload could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("msgpack: {0}")]
    Msgpack(#[from] rmp_serde::encode::Error),
    #[error("gzip: {0}")]
    Gzip(#[from] std::io::Error),
}

/// The body of `POST /api/v0.1/pipeline_stats`: gzip (level 1, as the tracers) of msgpack in the
/// tracers' schema (`Env, Service, Stats[{Start, Duration, Stats[{EdgeTags, Hash, ParentHash,
/// PathwayLatency, EdgeLatency, PayloadSize, TimestampType}], Backlogs}], TracerVersion, Lang`).
pub fn encode_pipeline_stats(p: &PipelineStats) -> Result<Vec<u8>, EncodeError> {
    let msgpack = rmp_serde::to_vec_named(&wire::Payload::from(p))?;
    let mut gz = GzEncoder::new(
        Vec::with_capacity(msgpack.len() / 2 + 64),
        Compression::fast(),
    );
    gz.write_all(&msgpack)?;
    Ok(gz.finish()?)
}

/// The tracers' msgpack schema, field names as the intake expects them.
mod wire {
    use serde::{Serialize, Serializer};

    use super::PipelineStats;

    /// Sketch bytes as msgpack `bin`, not an array of integers.
    pub struct Bin(pub Vec<u8>);

    impl Serialize for Bin {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Payload<'a> {
        pub env: &'a str,
        pub service: &'a str,
        pub stats: Vec<Bucket<'a>>,
        pub tracer_version: &'a str,
        pub lang: &'a str,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Bucket<'a> {
        pub start: u64,
        pub duration: u64,
        pub stats: Vec<Point<'a>>,
        pub backlogs: [(); 0],
    }

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Point<'a> {
        pub edge_tags: &'a [String],
        pub hash: u64,
        pub parent_hash: u64,
        pub pathway_latency: Bin,
        pub edge_latency: Bin,
        pub payload_size: Bin,
        pub timestamp_type: &'static str,
    }

    impl<'a> From<&'a PipelineStats> for Payload<'a> {
        fn from(p: &'a PipelineStats) -> Self {
            Payload {
                env: &p.env,
                service: &p.service,
                stats: p
                    .buckets
                    .iter()
                    .map(|b| Bucket {
                        start: b.start_ns,
                        duration: b.duration_ns,
                        stats: b
                            .points
                            .iter()
                            .map(|pt| Point {
                                edge_tags: &pt.edge_tags,
                                hash: pt.hash,
                                parent_hash: pt.parent_hash,
                                pathway_latency: Bin(pt.pathway_latency.encode()),
                                edge_latency: Bin(pt.edge_latency.encode()),
                                payload_size: Bin(pt.payload_size.encode()),
                                timestamp_type: "current",
                            })
                            .collect(),
                        backlogs: [],
                    })
                    .collect(),
                tracer_version: p.tracer_version,
                lang: super::LANG,
            }
        }
    }
}

/// An edge within a bucket. Hashing looks at the two hashes only (they nearly always decide);
/// equality compares the tags too, so tags the hash ignored still keep points apart.
#[derive(Debug, PartialEq, Eq)]
struct PointKey {
    hash: u64,
    parent_hash: u64,
    edge_tags: Vec<String>,
}

impl Hash for PointKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash ^ self.parent_hash.rotate_left(29));
    }
}

#[derive(Default)]
struct PointStats {
    pathway_latency: Sketch,
    edge_latency: Sketch,
    payload_size: Sketch,
}

type Bucket = HashMap<PointKey, PointStats, IdentityHash>;

/// Buckets by start, per (service, env).
#[derive(Default)]
struct State {
    groups: HashMap<(String, String), BTreeMap<u64, Bucket>>,
    checkpoints: u64,
}

/// The data-streams aggregator: fed by `intake::checkpoints`, drained by the flusher.
pub struct StreamsAggregator {
    state: Mutex<State>,
    bucket_ns: u64,
}

impl Default for StreamsAggregator {
    fn default() -> Self {
        Self::new(BUCKET)
    }
}

impl StreamsAggregator {
    /// An empty aggregator with buckets `bucket` wide (10 s upstream; shorter in tests).
    pub fn new(bucket: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            bucket_ns: u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX).max(1),
        }
    }

    /// Adds every checkpoint of a batch.
    pub fn add_batch(&self, batch: CheckpointBatch) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.checkpoints += batch.checkpoints.len() as u64;
        let buckets = state.groups.entry((batch.service, batch.env)).or_default();
        for cp in batch.checkpoints {
            let bucket = buckets
                .entry(self.bucket_start(cp.timestamp_ns))
                .or_default();
            add_point(bucket, cp);
        }
    }

    /// Checkpoints added since start.
    pub fn checkpoints_seen(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .checkpoints
    }

    fn bucket_start(&self, timestamp_ns: i64) -> u64 {
        let ts = u64::try_from(timestamp_ns).unwrap_or(0);
        ts - ts % self.bucket_ns
    }

    /// Takes the buckets that are finished at `now` (all of them when `force`), one payload per
    /// (service, env).
    pub fn take(&self, now: SystemTime, force: bool) -> Vec<PipelineStats> {
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        state.groups.retain(|(service, env), buckets| {
            let taken = if force {
                std::mem::take(buckets)
            } else {
                // Buckets starting at or after `first_open` are still open.
                let first_open = now_ns.saturating_sub(self.bucket_ns).saturating_add(1);
                let open = buckets.split_off(&first_open);
                std::mem::replace(buckets, open)
            };
            if !taken.is_empty() {
                out.push(PipelineStats {
                    service: service.clone(),
                    env: env.clone(),
                    tracer_version: env!("CARGO_PKG_VERSION"),
                    buckets: taken
                        .into_iter()
                        .map(|(start_ns, points)| StatsBucket {
                            start_ns,
                            duration_ns: self.bucket_ns,
                            points: points
                                .into_iter()
                                .map(|(k, s)| StatsPoint {
                                    edge_tags: k.edge_tags,
                                    hash: k.hash,
                                    parent_hash: k.parent_hash,
                                    pathway_latency: s.pathway_latency,
                                    edge_latency: s.edge_latency,
                                    payload_size: s.payload_size,
                                })
                                .collect(),
                        })
                        .collect(),
                });
            }
            !buckets.is_empty()
        });
        out
    }
}

fn add_point(bucket: &mut Bucket, cp: Checkpoint) {
    let mut edge_tags = cp.edge_tags;
    if !edge_tags.is_sorted() {
        edge_tags.sort_unstable();
    }
    let stats = bucket
        .entry(PointKey {
            hash: cp.hash,
            parent_hash: cp.parent_hash,
            edge_tags,
        })
        .or_default();
    stats
        .pathway_latency
        .add(cp.pathway_latency_ns.max(0) as f64 / 1e9);
    stats
        .edge_latency
        .add(cp.edge_latency_ns.max(0) as f64 / 1e9);
    stats.payload_size.add(cp.payload_size as f64);
}

impl Drain for StreamsAggregator {
    fn drain(&self, now: SystemTime, force: bool) -> Vec<Outgoing> {
        self.take(now, force)
            .into_iter()
            .map(Outgoing::PipelineStats)
            .collect()
    }
}

/// The point key already hashes to a well-mixed u64 (pathway hashes are FNV outputs): no need
/// for SipHash on the hot path.
#[derive(Default, Clone, Copy)]
struct IdentityHash;

impl std::hash::BuildHasher for IdentityHash {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `PointKey`; fold anything else in for safety.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn cp(hash: u64, parent: u64, ts_s: f64, edge_ms: i64) -> Checkpoint {
        Checkpoint {
            edge_tags: vec!["type:sqs".into(), "direction:in".into()],
            hash,
            parent_hash: parent,
            timestamp_ns: (ts_s * 1e9) as i64,
            pathway_latency_ns: edge_ms * 2_000_000,
            edge_latency_ns: edge_ms * 1_000_000,
            payload_size: 100,
        }
    }

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn batch(cps: Vec<Checkpoint>) -> CheckpointBatch {
        CheckpointBatch {
            service: "svc".into(),
            env: "prod".into(),
            checkpoints: cps,
        }
    }

    #[test]
    fn aggregates_per_edge_and_bucket() {
        let agg = StreamsAggregator::default();
        agg.add_batch(batch(vec![
            cp(1, 0, 1000.5, 10),
            cp(1, 0, 1001.0, 20),
            cp(2, 1, 1001.0, 5),
            cp(1, 0, 1012.0, 5),
        ]));
        // At 1010 the [1000, 1010) bucket is finished, [1010, 1020) is open.
        let out = agg.take(at(1010), false);
        assert_eq!(out.len(), 1);
        let b = &out[0].buckets;
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].start_ns, 1_000_000_000_000);
        assert_eq!(b[0].points.len(), 2);
        let p1 = b[0].points.iter().find(|p| p.hash == 1).unwrap();
        assert_eq!(p1.edge_tags, vec!["direction:in", "type:sqs"]);
        assert_eq!(p1.edge_latency.count(), 2.0);
        assert!((p1.edge_latency.quantile(1.0) - 0.020).abs() < 0.001);
        assert!(agg.take(at(1010), false).is_empty());
        // SHUTDOWN takes the open bucket.
        let rest = agg.take(at(1011), true);
        assert_eq!(rest[0].buckets[0].start_ns, 1_010_000_000_000);
        assert_eq!(rest[0].buckets[0].points[0].payload_size.count(), 1.0);
        assert!(agg.take(at(5000), true).is_empty());
        assert_eq!(agg.checkpoints_seen(), 4);
    }

    #[test]
    fn encodes_the_tracer_schema() {
        let agg = StreamsAggregator::default();
        agg.add_batch(batch(vec![cp(7, 3, 1000.0, 1500)]));
        let p = agg.take(at(2000), false).remove(0);
        let body = encode_pipeline_stats(&p).unwrap();
        assert_eq!(&body[..2], &[0x1f, 0x8b]);
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut raw)
            .unwrap();
        let v: wire_test::Payload = rmp_serde::from_slice(&raw).unwrap();
        assert_eq!((v.service.as_str(), v.env.as_str()), ("svc", "prod"));
        assert_eq!(v.lang, "rust");
        assert_eq!(v.stats[0].start, 1_000_000_000_000);
        assert_eq!(v.stats[0].duration, 10_000_000_000);
        let point = &v.stats[0].stats[0];
        assert_eq!((point.hash, point.parent_hash), (7, 3));
        assert_eq!(point.timestamp_type, "current");
        let sk = DDSketch::from_encoded(&point.edge_latency.0).unwrap();
        assert_eq!(sk.count(), 1.0);
        assert_eq!(point.edge_tags, vec!["direction:in", "type:sqs"]);
        // The bin marker itself: 0xc4 follows the key.
        let key = b"EdgeLatency";
        let at = raw.windows(key.len()).position(|w| w == key).unwrap();
        assert_eq!(raw[at + key.len()], 0xc4);
    }

    #[test]
    fn sketch_bytes_match_ddtrace() {
        // data-streams.md §9.2: ddtrace 4.16.0 `DDSketch().to_proto()` of [1.5].
        let mut s = Sketch::default();
        s.add(1.5);
        let hex: String = s.encode().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "0a1209000000000040f03f110000000000ea9440120d1208000000000000f03f18a8151a00"
        );
    }

    /// The payload as the intake reads it.
    mod wire_test {
        use serde::Deserialize;

        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct Payload {
            pub env: String,
            pub service: String,
            pub lang: String,
            pub stats: Vec<Bucket>,
        }

        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct Bucket {
            pub start: u64,
            pub duration: u64,
            pub stats: Vec<Point>,
        }

        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct Point {
            pub edge_tags: Vec<String>,
            pub hash: u64,
            pub parent_hash: u64,
            pub edge_latency: Bin,
            pub timestamp_type: String,
        }

        pub struct Bin(pub Vec<u8>);

        impl<'de> Deserialize<'de> for Bin {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = Bin;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("msgpack bin")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bin, E> {
                        Ok(Bin(v.to_vec()))
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    }
}
