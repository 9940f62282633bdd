//! Data-streams pathways: the hash scheme, the propagated context codec and the checkpoint rule.
//!
//! **Hash.** FNV-1 64 (multiply, then XOR — not FNV-1a), as the Go and Python tracers do:
//! `node = FNV1(service ‖ env ‖ sorted edge tags)`, `pathway = FNV1(LE64(node) ‖ LE64(parent))`.
//! Python mixes process tags in between env and the tags (on by default); we never send process
//! tags, so for the same service, env and tags our hash equals what ddtrace computes with
//! `DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED=false` — and what Go computes without process
//! tags. (The JS tracer hashes with truncated SHA-256; the backend only needs each pathway to be
//! self-consistent, so interop is by parent hash, which we read from any tracer's context.)
//!
//! **Context.** 8-byte little-endian hash, then zigzag varints (sketches-go flavour: at most 9
//! bytes, the 9th carrying 8 bits) of the pathway start and the edge start in Unix milliseconds;
//! standard base64 with padding under [`PATHWAY_KEY`] in the `_datadog` carrier, the legacy raw
//! [`LEGACY_PATHWAY_KEY`] is read too. Anything short or invalid is an error, which callers turn
//! into "no parent".

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Carrier key every tracer injects: the context in base64.
pub const PATHWAY_KEY: &str = "dd-pathway-ctx-base64";
/// Legacy carrier key: the raw binary context (Python and JS still read it, and fall back to
/// base64 when it does not decode as binary).
pub const LEGACY_PATHWAY_KEY: &str = "dd-pathway-ctx";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const NS_PER_MS: i64 = 1_000_000;
/// Largest encoded context: 8 hash bytes and two 9-byte varints.
pub const MAX_ENCODED_LEN: usize = 8 + 9 + 9;

/// Why a context did not decode; every case means "no parent" to a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathwayError {
    #[error("pathway context shorter than the 8-byte hash ({0} bytes)")]
    ShortHash(usize),
    #[error("pathway context ends inside the {0} varint")]
    TruncatedVarint(&'static str),
    #[error("pathway context is not valid base64: {0}")]
    Base64(String),
    #[error("pathway context has a negative {0}")]
    Negative(&'static str),
}

/// FNV-1 64 over `bytes`, continuing from `state` (start with [`fnv1_start`]).
#[inline]
pub fn fnv1_update(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state = state.wrapping_mul(FNV_PRIME);
        state ^= u64::from(b);
    }
    state
}

/// The FNV-1 64 offset basis.
#[inline]
pub const fn fnv1_start() -> u64 {
    FNV_OFFSET
}

/// FNV-1 64 of `bytes`.
#[inline]
pub fn fnv1_64(bytes: &[u8]) -> u64 {
    fnv1_update(FNV_OFFSET, bytes)
}

/// The node hash: FNV-1 of service, env and the edge tags sorted byte-wise, concatenated
/// without separators. `edge_tags` need not be sorted.
pub fn node_hash<S: AsRef<str>>(service: &str, env: &str, edge_tags: &[S]) -> u64 {
    let mut h = fnv1_update(fnv1_update(FNV_OFFSET, service.as_bytes()), env.as_bytes());
    if is_sorted(edge_tags) {
        for t in edge_tags {
            h = fnv1_update(h, t.as_ref().as_bytes());
        }
    } else {
        let mut sorted: Vec<&str> = edge_tags.iter().map(AsRef::as_ref).collect();
        sorted.sort_unstable();
        for t in sorted {
            h = fnv1_update(h, t.as_bytes());
        }
    }
    h
}

fn is_sorted<S: AsRef<str>>(tags: &[S]) -> bool {
    tags.windows(2).all(|w| w[0].as_ref() <= w[1].as_ref())
}

/// The pathway hash: FNV-1 of the node hash, then the parent hash, each 8 bytes LE.
#[inline]
pub fn pathway_hash(node: u64, parent: u64) -> u64 {
    fnv1_update(
        fnv1_update(FNV_OFFSET, &node.to_le_bytes()),
        &parent.to_le_bytes(),
    )
}

/// A pathway as it travels: its hash, when its first checkpoint was set and when the previous
/// checkpoint (the start of the current edge) was set. Times are Unix nanoseconds in process;
/// the wire keeps milliseconds (truncated, as Go and Python do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pathway {
    pub hash: u64,
    pub pathway_start_ns: i64,
    pub edge_start_ns: i64,
}

impl Pathway {
    /// Pathway start in Unix milliseconds (what the wire carries).
    pub fn pathway_start_ms(&self) -> i64 {
        self.pathway_start_ns.div_euclid(NS_PER_MS)
    }

    /// Edge start in Unix milliseconds (what the wire carries).
    pub fn edge_start_ms(&self) -> i64 {
        self.edge_start_ns.div_euclid(NS_PER_MS)
    }

    /// The binary context into `out`; returns its length (20 bytes for current timestamps).
    pub fn encode_into(&self, out: &mut [u8; MAX_ENCODED_LEN]) -> usize {
        out[..8].copy_from_slice(&self.hash.to_le_bytes());
        let mut n = 8;
        n += put_varint(zigzag(self.pathway_start_ms()), &mut out[n..]);
        n += put_varint(zigzag(self.edge_start_ms()), &mut out[n..]);
        n
    }

    /// The binary context.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let n = self.encode_into(&mut buf);
        buf[..n].to_vec()
    }

    /// The context as carriers hold it under [`PATHWAY_KEY`].
    pub fn to_base64(&self) -> String {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let n = self.encode_into(&mut buf);
        STANDARD.encode(&buf[..n])
    }

    /// Decodes a binary context; trailing bytes are ignored, as every tracer does.
    pub fn decode(bytes: &[u8]) -> Result<Self, PathwayError> {
        let hash_bytes: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(PathwayError::ShortHash(bytes.len()))?;
        let mut rest = &bytes[8..];
        let pathway_start_ms =
            unzigzag(take_varint(&mut rest).ok_or(PathwayError::TruncatedVarint("pathway start"))?);
        let edge_start_ms =
            unzigzag(take_varint(&mut rest).ok_or(PathwayError::TruncatedVarint("edge start"))?);
        if pathway_start_ms < 0 {
            return Err(PathwayError::Negative("pathway start"));
        }
        if edge_start_ms < 0 {
            return Err(PathwayError::Negative("edge start"));
        }
        Ok(Self {
            hash: u64::from_le_bytes(hash_bytes),
            pathway_start_ns: pathway_start_ms.saturating_mul(NS_PER_MS),
            edge_start_ns: edge_start_ms.saturating_mul(NS_PER_MS),
        })
    }

    /// Decodes a base64 context (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, PathwayError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| PathwayError::Base64(e.to_string()))?;
        Self::decode(&bytes)
    }

    /// Finds the parent pathway in a `_datadog` carrier: [`PATHWAY_KEY`] first, then the legacy
    /// key (as raw bytes carried in a JSON string, then as base64). `None` means "no parent".
    pub fn from_carrier(carrier: &serde_json::Map<String, serde_json::Value>) -> Option<Self> {
        let text = |k: &str| carrier.get(k).and_then(|v| v.as_str());
        Self::from_carrier_values(text(PATHWAY_KEY), text(LEGACY_PATHWAY_KEY))
    }

    /// [`Self::from_carrier`] for callers that already hold the two values.
    pub fn from_carrier_values(current: Option<&str>, legacy: Option<&str>) -> Option<Self> {
        if let Some(p) = current.and_then(|s| Self::from_base64(s).ok()) {
            return Some(p);
        }
        let legacy = legacy?;
        Self::decode(legacy.as_bytes())
            .ok()
            .or_else(|| Self::from_base64(legacy).ok())
    }

    /// Sets a checkpoint continuing this pathway (or starting one when `parent` is `None`).
    pub fn checkpoint(parent: Option<&Pathway>, node: u64, now_ns: i64) -> Checkpointed {
        let (parent_hash, pathway_start_ns, edge_start_ns) = match parent {
            Some(p) => (p.hash, p.pathway_start_ns, p.edge_start_ns),
            None => (0, now_ns, now_ns),
        };
        Checkpointed {
            pathway: Pathway {
                hash: pathway_hash(node, parent_hash),
                pathway_start_ns,
                edge_start_ns: now_ns,
            },
            parent_hash,
            pathway_latency_ns: now_ns.saturating_sub(pathway_start_ns).max(0),
            edge_latency_ns: now_ns.saturating_sub(edge_start_ns).max(0),
        }
    }
}

impl fmt::Display for Pathway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// The outcome of a checkpoint: the child pathway (same pathway start, edge clock restarted
/// now) and the latencies it records, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    pub pathway: Pathway,
    pub parent_hash: u64,
    pub pathway_latency_ns: i64,
    pub edge_latency_ns: i64,
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// sketches-go `EncodeVarint64`: 7 bits per byte, except that a 9th byte carries the last 8.
fn put_varint(mut v: u64, out: &mut [u8]) -> usize {
    for (i, slot) in out.iter_mut().enumerate().take(8) {
        if v < 0x80 {
            *slot = v as u8;
            return i + 1;
        }
        *slot = (v as u8) | 0x80;
        v >>= 7;
    }
    out[8] = v as u8;
    9
}

fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        if i == 8 {
            return Some(v | (u64::from(b) << 56));
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn fnv1_matches_go_test_vector() {
        // dd-trace-go pathway_test.go "test BaseHash".
        assert_eq!(fnv1_64(b"svcenvch") as i64, -9046347542012827189);
    }

    #[test]
    fn root_produce_matches_ddtrace() {
        let tags = ["direction:out", "topic:topic1", "type:kafka"];
        let node = node_hash("service-1", "env1", &tags);
        assert_eq!(node, 16357505790288925528);
        let t = 1_700_000_000_000 * NS_PER_MS;
        let c = Pathway::checkpoint(None, node, t);
        assert_eq!(c.pathway.hash, 2791036541516892107);
        assert_eq!(c.parent_hash, 0);
        assert_eq!((c.pathway_latency_ns, c.edge_latency_ns), (0, 0));
        assert_eq!(
            hex(&c.pathway.encode()),
            "cbc73f6cf2c0bb2680a0abfef96280a0abfef962"
        );
        assert_eq!(c.pathway.to_base64(), "y8c/bPLAuyaAoKv++WKAoKv++WI=");
    }

    #[test]
    fn chained_consume_matches_ddtrace() {
        let parent = Pathway::from_base64("y8c/bPLAuyaAoKv++WKAoKv++WI=").unwrap();
        // Unsorted on purpose: the hash sorts.
        let tags = ["type:kafka", "direction:in", "topic:topic1", "group:group1"];
        let node = node_hash("service-1", "env1", &tags);
        let c = Pathway::checkpoint(Some(&parent), node, 1_700_000_001_500 * NS_PER_MS);
        assert_eq!(c.pathway.hash, 8858868147270760597);
        assert_eq!(c.parent_hash, 2791036541516892107);
        assert_eq!(c.pathway_latency_ns, 1_500 * NS_PER_MS);
        assert_eq!(c.edge_latency_ns, 1_500 * NS_PER_MS);
        assert_eq!(c.pathway.to_base64(), "lbgYxqQF8XqAoKv++WK4t6v++WI=");
    }

    #[test]
    fn go_unit_test_chain() {
        let a = Pathway::checkpoint(None, node_hash::<&str>("service-1", "env", &[]), 0);
        assert_eq!(a.pathway.hash, 4279514949650268859);
        let b = Pathway::checkpoint(
            Some(&a.pathway),
            node_hash("service-1", "env", &["topic:topic1"]),
            0,
        );
        assert_eq!(b.pathway.hash, 2769553530254190806);
        let c = Pathway::checkpoint(
            Some(&b.pathway),
            node_hash("service-1", "env", &["topic:topic2"]),
            0,
        );
        assert_eq!(c.pathway.hash, 9208858094421796675);
    }

    #[test]
    fn decodes_js_fixture() {
        let p = Pathway::from_base64("Z7CzXmXArPrE58Cfj2LI2cOfj2I=").unwrap();
        assert_eq!(p.hash, 18063023747089281127);
        assert_eq!(p.pathway_start_ms(), 1685673482722);
        assert_eq!(p.edge_start_ms(), 1685673506404);
    }

    #[test]
    fn varint_vectors() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x02]),
            (-1, &[0x01]),
            (1679672748, &[216, 150, 238, 193, 12]),
            (1679711644352, &[128, 171, 237, 233, 226, 97]),
            (
                9007199254740991 / 2,
                &[254, 255, 255, 255, 255, 255, 255, 15],
            ),
        ];
        for &(v, want) in cases {
            let mut buf = [0u8; 9];
            let n = put_varint(zigzag(v), &mut buf);
            assert_eq!(&buf[..n], want, "{v}");
            let mut input = want;
            assert_eq!(unzigzag(take_varint(&mut input).unwrap()), v);
        }
        for v in [i64::MAX, i64::MIN, u32::MAX as i64 * 1000] {
            let mut buf = [0u8; 9];
            let n = put_varint(zigzag(v), &mut buf);
            assert!(n <= 9);
            let mut input = &buf[..n];
            assert_eq!(unzigzag(take_varint(&mut input).unwrap()), v);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Pathway::decode(&[1, 2, 3]), Err(PathwayError::ShortHash(3)));
        assert!(matches!(
            Pathway::decode(&[0; 8]),
            Err(PathwayError::TruncatedVarint(_))
        ));
        assert!(matches!(
            Pathway::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 2, 0x80]),
            Err(PathwayError::TruncatedVarint("edge start"))
        ));
        assert!(matches!(
            Pathway::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Err(PathwayError::Negative(_))
        ));
        assert!(matches!(
            Pathway::from_base64("not base64!"),
            Err(PathwayError::Base64(_))
        ));
        assert!(Pathway::from_base64("").is_err());
    }

    #[test]
    fn trailing_bytes_ignored_and_roundtrip() {
        let p = Pathway {
            hash: 42,
            pathway_start_ns: 1_700_000_000_123 * NS_PER_MS,
            edge_start_ns: 1_700_000_000_456 * NS_PER_MS,
        };
        let mut bytes = p.encode();
        assert_eq!(bytes.len(), 20);
        bytes.extend_from_slice(&[0, 0, 0]);
        assert_eq!(Pathway::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn carrier_keys() {
        let mut m = serde_json::Map::new();
        assert_eq!(Pathway::from_carrier(&m), None);
        m.insert(
            LEGACY_PATHWAY_KEY.into(),
            "y8c/bPLAuyaAoKv++WKAoKv++WI=".into(),
        );
        assert_eq!(
            Pathway::from_carrier(&m).map(|p| p.hash),
            Some(2791036541516892107)
        );
        m.insert(PATHWAY_KEY.into(), "lbgYxqQF8XqAoKv++WK4t6v++WI=".into());
        assert_eq!(
            Pathway::from_carrier(&m).map(|p| p.hash),
            Some(8858868147270760597)
        );
        m.insert(PATHWAY_KEY.into(), "garbage".into());
        // An invalid current key falls back to the legacy one.
        assert_eq!(
            Pathway::from_carrier(&m).map(|p| p.hash),
            Some(2791036541516892107)
        );
    }

    #[test]
    fn latencies_never_negative() {
        let parent = Pathway {
            hash: 1,
            pathway_start_ns: 2_000 * NS_PER_MS,
            edge_start_ns: 3_000 * NS_PER_MS,
        };
        let c = Pathway::checkpoint(Some(&parent), 7, 1_000 * NS_PER_MS);
        assert_eq!((c.pathway_latency_ns, c.edge_latency_ns), (0, 0));
        assert_eq!(c.pathway.pathway_start_ns, parent.pathway_start_ns);
        assert_eq!(c.pathway.edge_start_ns, 1_000 * NS_PER_MS);
    }
}
