//! AWS X-Ray: the runtime's trace header, its conversion to a Datadog context, and the
//! "datadog-metadata" subsegment that lets Datadog's X-Ray integration parent X-Ray traces under
//! Datadog ones.
//!
//! Deliberate differences from datadog-lambda (Python), which parses positionally and maps every
//! parseable header to priority 2: the header is parsed by key in any order (as the AWS SDKs do),
//! and `Sampled=1` maps to 2 (USER_KEEP), anything else to -1 (USER_REJECT), as in
//! datadog-lambda-js and -go.

use std::net::UdpSocket;
use std::time::{SystemTime, UNIX_EPOCH};

use ddlambda_wire::SpanContext;
use serde::Serialize;

/// The environment variable the runtime copies `Lambda-Runtime-Trace-Id` into.
pub const TRACE_ID_ENV: &str = "_X_AMZN_TRACE_ID";
/// The X-Ray daemon's UDP address (`host:port`).
pub const DAEMON_ADDRESS_ENV: &str = "AWS_XRAY_DAEMON_ADDRESS";

/// A parsed X-Ray trace header: `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1|?>;…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrayHeader {
    /// The full `Root` value, e.g. `1-5e272390-8c398be037738dc042009320`.
    pub root: String,
    /// The `Parent` segment id (16 hex), if present.
    pub parent: Option<String>,
    /// The raw `Sampled` value, if present.
    pub sampled: Option<String>,
}

impl XrayHeader {
    /// Parses the header by key; fields may come in any order, unknown keys (`Lineage`, `Self`)
    /// are ignored. `None` without a `Root`.
    pub fn parse(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, None);
        for field in header.split(';') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "Root" => root = Some(value.to_owned()),
                "Parent" => parent = Some(value.to_owned()),
                "Sampled" => sampled = Some(value.to_owned()),
                _ => {}
            }
        }
        let root = root.filter(|r| !r.is_empty())?;
        Some(Self {
            root,
            parent,
            sampled,
        })
    }

    /// The header from `_X_AMZN_TRACE_ID`, if set and parseable.
    pub fn from_env() -> Option<Self> {
        std::env::var(TRACE_ID_ENV)
            .ok()
            .and_then(|h| Self::parse(&h))
    }

    /// `Sampled=1`.
    pub fn is_sampled(&self) -> bool {
        self.sampled.as_deref() == Some("1")
    }

    /// The Datadog context X-Ray's ids map to; `None` when the root or parent is malformed.
    pub fn to_context(&self) -> Option<SpanContext> {
        let trace_id = convert_trace_id(&self.root)?;
        let parent_id = convert_entity_id(self.parent.as_deref()?)?;
        Some(SpanContext {
            sampling_priority: Some(if self.is_sampled() { 2 } else { -1 }),
            ..SpanContext::new(trace_id, parent_id)
        })
    }
}

/// X-Ray root → Datadog trace id: the low 64 bits of the 96-bit random part, masked to 63 bits.
pub fn convert_trace_id(root: &str) -> Option<u64> {
    let mut parts = root.split('-');
    let (_version, _epoch, random) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || random.len() != 24 {
        return None;
    }
    let low = u64::from_str_radix(&random[8..], 16).ok()?;
    Some(low & 0x7FFF_FFFF_FFFF_FFFF).filter(|&id| id != 0)
}

/// X-Ray (sub)segment id (16 hex) → Datadog span id.
pub fn convert_entity_id(id: &str) -> Option<u64> {
    if id.len() != 16 {
        return None;
    }
    u64::from_str_radix(id, 16).ok().filter(|&id| id != 0)
}

/// The "datadog-metadata" subsegment datagram for a context extracted from the event (key
/// `trace`), exactly as datadog-lambda sends it at the start of an invocation. `trace-id` is the
/// full (up to 128-bit) decimal trace id, as Python's `str(context.trace_id)` writes it.
pub fn metadata_datagram(header: &XrayHeader, ctx: &SpanContext) -> Option<String> {
    let trace_id = (u128::from(ctx.trace_id_high.unwrap_or(0)) << 64) | u128::from(ctx.trace_id);
    let trace = TraceMetadata {
        trace_id: trace_id.to_string(),
        parent_id: ctx.parent_id.to_string(),
        sampling_priority: ctx.sampling_priority.unwrap_or(1).to_string(),
    };
    subsegment_datagram(header, "trace", &trace)
}

/// The subsegment datagram carrying the trigger tags of `aws.lambda` (key
/// `lambda_function_tags`), which datadog-lambda sends at the end of an invocation so X-Ray
/// spans get them in hybrid tracing.
pub fn function_tags_datagram<K, V>(header: &XrayHeader, tags: &[(K, V)]) -> Option<String>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    if tags.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = tags
        .iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().into()))
        .collect();
    subsegment_datagram(header, "lambda_function_tags", &map)
}

/// A "datadog-metadata" subsegment (`metadata.datadog.<key>`): header line, newline, compact
/// segment JSON. `None` when the X-Ray trace is sampled out (`Sampled=0`, or no `Sampled`,
/// which datadog-lambda's parser rejects) or the header has no parent.
pub fn subsegment_datagram(
    header: &XrayHeader,
    key: &str,
    metadata: &impl Serialize,
) -> Option<String> {
    if header.sampled.as_deref().is_none_or(|s| s == "0") {
        return None;
    }
    let parent_id = header.parent.as_deref()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let segment = Segment {
        id: &format!("{:016x}", random_u64()),
        trace_id: &header.root,
        parent_id,
        name: "datadog-metadata",
        start_time: now,
        end_time: now,
        kind: "subsegment",
        metadata: Metadata {
            datadog: std::iter::once((key, metadata)).collect(),
        },
    };
    let json = serde_json::to_string(&segment).ok()?;
    Some(format!("{{\"format\": \"json\", \"version\": 1}}\n{json}"))
}

/// Sends a datagram to `AWS_XRAY_DAEMON_ADDRESS` (`host:port`). Returns whether it was sent;
/// a missing or malformed address is not an error (no daemon, nothing to do).
pub fn send_to_daemon(datagram: &str) -> std::io::Result<bool> {
    let Ok(address) = std::env::var(DAEMON_ADDRESS_ENV) else {
        return Ok(false);
    };
    send_to(&address, datagram)
}

/// Sends a datagram to the given `host:port` daemon address (the first address when the
/// variable holds a `tcp:… udp:…` pair, as the X-Ray SDKs accept).
pub fn send_to(address: &str, datagram: &str) -> std::io::Result<bool> {
    let address = address
        .split_whitespace()
        .find_map(|a| a.strip_prefix("udp:"))
        .unwrap_or(address.trim());
    if !address.contains(':') {
        tracing::debug!(
            address,
            "AWS_XRAY_DAEMON_ADDRESS has no port; subsegment not sent"
        );
        return Ok(false);
    }
    let socket = UdpSocket::bind(("0.0.0.0", 0))?;
    socket.send_to(datagram.as_bytes(), address)?;
    Ok(true)
}

#[derive(Serialize)]
struct Segment<'a, M: Serialize> {
    id: &'a str,
    trace_id: &'a str,
    parent_id: &'a str,
    name: &'a str,
    start_time: f64,
    end_time: f64,
    #[serde(rename = "type")]
    kind: &'a str,
    metadata: Metadata<'a, M>,
}

#[derive(Serialize)]
struct Metadata<'a, M: Serialize> {
    datadog: std::collections::BTreeMap<&'a str, &'a M>,
}

#[derive(Serialize)]
struct TraceMetadata {
    #[serde(rename = "trace-id")]
    trace_id: String,
    #[serde(rename = "parent-id")]
    parent_id: String,
    #[serde(rename = "sampling-priority")]
    sampling_priority: String,
}

/// A random 64-bit id without a RNG dependency: std's per-process random SipHash keys, mixed
/// with the clock and a counter.
fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Root=1-5e272390-8c398be037738dc042009320;Parent=94ae789b969f1cc5;Sampled=1";

    #[test]
    fn reference_vectors() {
        let ctx = XrayHeader::parse(HEADER).unwrap().to_context().unwrap();
        assert_eq!(ctx.trace_id, 3995693151288333088);
        assert_eq!(ctx.parent_id, 10713633173203262661);
        assert_eq!(ctx.sampling_priority, Some(2));
        assert_eq!(
            convert_trace_id("1-5ce31dc2-2c779014b90ce44db5e03875"),
            Some(4110911582297405557)
        );
        assert_eq!(
            convert_entity_id("0b11cc4230d3e09e"),
            Some(797643193680388254)
        );
        assert_eq!(
            convert_trace_id("1-5ce31dc2-00000000e1be46a994272793"),
            Some(7043144561403045779)
        );
        assert_eq!(
            convert_trace_id("1-5ce31dc2-bd862e3fe1be46a994272793"),
            Some(7043144561403045779)
        );
        assert_eq!(
            convert_trace_id("1-5ce31dc2-00000000ffffffffffffffff"),
            Some(9223372036854775807)
        );
        assert_eq!(
            convert_entity_id("53995c3f42cd8ad8"),
            Some(6023947403358210776)
        );
    }

    #[test]
    fn parsed_by_key_in_any_order() {
        let h = XrayHeader::parse(
            "Sampled=0;Lineage=c6c5b1b9:0;Parent=94ae789b969f1cc5;Root=1-5e272390-8c398be037738dc042009320",
        )
        .unwrap();
        let ctx = h.to_context().unwrap();
        assert_eq!(ctx.trace_id, 3995693151288333088);
        assert_eq!(ctx.sampling_priority, Some(-1));
        assert!(XrayHeader::parse("Parent=94ae789b969f1cc5").is_none());
        assert!(
            XrayHeader::parse("Root=1-5e272390-8c398be037738dc042009320")
                .unwrap()
                .to_context()
                .is_none()
        );
        assert!(
            XrayHeader::parse("Root=nonsense;Parent=94ae789b969f1cc5")
                .unwrap()
                .to_context()
                .is_none()
        );
    }

    #[test]
    fn datagram_shape() {
        let h = XrayHeader::parse(HEADER).unwrap();
        let ctx = SpanContext {
            sampling_priority: Some(1),
            ..SpanContext::new(123, 321)
        };
        let d = metadata_datagram(&h, &ctx).unwrap();
        let (head, body) = d.split_once('\n').unwrap();
        assert_eq!(head, r#"{"format": "json", "version": 1}"#);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["trace_id"], "1-5e272390-8c398be037738dc042009320");
        assert_eq!(v["parent_id"], "94ae789b969f1cc5");
        assert_eq!(v["name"], "datadog-metadata");
        assert_eq!(v["type"], "subsegment");
        assert_eq!(v["id"].as_str().unwrap().len(), 16);
        assert_eq!(
            v["metadata"],
            serde_json::json!({"datadog": {"trace": {"trace-id": "123", "parent-id": "321", "sampling-priority": "1"}}})
        );
        let tags = function_tags_datagram(&h, &[("function_trigger.event_source", "sqs")]).unwrap();
        let v: serde_json::Value = serde_json::from_str(tags.split_once('\n').unwrap().1).unwrap();
        assert_eq!(
            v["metadata"],
            serde_json::json!({"datadog": {"lambda_function_tags": {"function_trigger.event_source": "sqs"}}})
        );
        let unsampled = XrayHeader::parse(&HEADER.replace("Sampled=1", "Sampled=0")).unwrap();
        assert!(metadata_datagram(&unsampled, &ctx).is_none());
    }
}
