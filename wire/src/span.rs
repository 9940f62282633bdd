//! The Datadog span model, as the v0.4 trace payload carries it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One span, field for field the v0.4 msgpack map real tracers send to `:8126`.
///
/// Zero and empty fields are omitted when encoding, as ddtrace does, and default when
/// decoding, since tracers omit them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Span {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub resource: String,
    /// Low 64 bits of the trace id (the high half is the `_dd.p.tid` meta tag).
    #[serde(default)]
    pub trace_id: u64,
    #[serde(default)]
    pub span_id: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub parent_id: u64,
    /// Start, in nanoseconds since the Unix epoch.
    #[serde(default)]
    pub start: i64,
    /// Duration in nanoseconds.
    #[serde(default)]
    pub duration: i64,
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub error: i32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub span_links: Vec<SpanLink>,
    /// Structured payloads by key, each value msgpack-encoded by the tracer and kept as bytes
    /// (ddtrace's LLMObs events ride here under `_llmobs`, AppSec's under `appsec`).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "bytes_map"
    )]
    pub meta_struct: BTreeMap<String, Vec<u8>>,
}

/// `meta_struct` values as msgpack `bin` (the tracers' encoding), read back from `bin` or a
/// sequence of bytes (JSON).
mod bytes_map {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{MapAccess, SeqAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    struct Bin<'a>(&'a [u8]);

    impl serde::Serialize for Bin<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(map.len()))?;
        for (k, v) in map {
            out.serialize_entry(k, &Bin(v))?;
        }
        out.end()
    }

    struct Bytes(Vec<u8>);

    impl<'de> serde::Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                    while let Some(b) = seq.next_element::<u8>()? {
                        out.push(b);
                    }
                    Ok(Bytes(out))
                }
            }
            d.deserialize_bytes(V)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BTreeMap<String, Vec<u8>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of byte strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, Bytes(v))) = map.next_entry::<String, Bytes>()? {
                    out.insert(k, v);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// A link from a span to another span context (v0.4 `span_links`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub trace_id_high: u64,
    pub span_id: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tracestate: String,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub flags: u32,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

/// Encodes traces (each a list of spans) as a v0.4 body: a msgpack array of arrays of maps.
pub fn encode_v04(traces: &[Vec<Span>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * traces.iter().map(Vec::len).sum::<usize>().max(1));
    // Writing into a Vec cannot fail, and every field of `Span` is msgpack-representable.
    rmp_serde::encode::write_named(&mut out, traces).expect("v0.4 encoding into a Vec");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v04_round_trip_omits_empty_fields() {
        let span = Span {
            service: "svc".into(),
            name: "aws.lambda".into(),
            resource: "fn".into(),
            trace_id: 1,
            span_id: 2,
            start: 10,
            duration: 5,
            ..Span::default()
        };
        let body = encode_v04(&[vec![span.clone()]]);
        let back: Vec<Vec<Span>> = rmp_serde::from_slice(&body).unwrap();
        assert_eq!(back, vec![vec![span]]);
        // No parent_id, error, meta, metrics, type or span_links keys in the map.
        assert!(!body.windows(9).any(|w| w == b"parent_id"));
        assert!(!body.windows(4).any(|w| w == b"meta"));
    }

    #[test]
    fn meta_struct_values_are_msgpack_bin_and_survive_json() {
        let span = Span {
            name: "llm".into(),
            meta_struct: BTreeMap::from([("_llmobs".to_owned(), vec![0x81, 0xa1, b'k', 0x01])]),
            ..Span::default()
        };
        let body = encode_v04(&[vec![span.clone()]]);
        // bin8 marker, length 4, the bytes.
        assert!(
            body.windows(6)
                .any(|w| w == [0xc4, 4, 0x81, 0xa1, b'k', 0x01])
        );
        assert_eq!(
            crate::trace::decode_v04(&body).unwrap(),
            vec![vec![span.clone()]]
        );
        let back: Vec<Vec<Span>> = rmp_serde::from_slice(&body).unwrap();
        assert_eq!(back, vec![vec![span.clone()]]);
        let json = serde_json::to_string(&span).unwrap();
        assert_eq!(serde_json::from_str::<Span>(&json).unwrap(), span);
    }
}
