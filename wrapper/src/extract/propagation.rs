//! Datadog and W3C tracecontext header extraction, with the semantics of ddtrace's
//! `HTTPPropagator.extract` (ddtrace 4.16.0), which every datadog-lambda carrier delegates to.
//!
//! A carrier's header map is a JSON object; keys match case-insensitively (ddtrace lowercases
//! them, the last duplicate wins). Values must be strings, as in ddtrace, where a non-string value
//! aborts the whole extraction.

use std::borrow::Cow;

use ddlambda_wire::SpanContext;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

const TRACE_ID: &str = "x-datadog-trace-id";
const PARENT_ID: &str = "x-datadog-parent-id";
const SAMPLING_PRIORITY: &str = "x-datadog-sampling-priority";
const ORIGIN: &str = "x-datadog-origin";
const TAGS: &str = "x-datadog-tags";
const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The tag carrying the high 64 bits of a 128-bit trace id.
const TID_TAG: &str = "_dd.p.tid";
/// ddtrace refuses `x-datadog-tags` longer than this (`DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH`).
const MAX_TAGS_LEN: usize = 512;

/// A propagation style that can be extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `x-datadog-*` headers.
    Datadog,
    /// W3C `traceparent` / `tracestate`.
    TraceContext,
}

/// Which header styles to read, in priority order (`DD_TRACE_PROPAGATION_STYLE_EXTRACT`, else
/// `DD_TRACE_PROPAGATION_STYLE`; ddtrace's default is `datadog,tracecontext,baggage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagator {
    styles: Vec<Style>,
}

impl Default for Propagator {
    fn default() -> Self {
        Self {
            styles: vec![Style::Datadog, Style::TraceContext],
        }
    }
}

impl Propagator {
    /// A propagator reading the given styles in order.
    pub fn new(styles: Vec<Style>) -> Self {
        Self { styles }
    }

    /// Styles from the environment, as ddtrace reads them. An empty value disables extraction;
    /// styles this crate does not read (b3, baggage, none) are skipped with a debug log.
    pub fn from_env() -> Self {
        let raw = std::env::var("DD_TRACE_PROPAGATION_STYLE_EXTRACT")
            .or_else(|_| std::env::var("DD_TRACE_PROPAGATION_STYLE"));
        match raw {
            Ok(value) => Self::parse(&value),
            Err(_) => Self::default(),
        }
    }

    /// Parses a comma-separated style list (`datadog,tracecontext`).
    pub fn parse(list: &str) -> Self {
        let mut styles = Vec::new();
        for name in list.split(',').map(|s| s.trim().to_ascii_lowercase()) {
            let style = match name.as_str() {
                "datadog" => Style::Datadog,
                "tracecontext" => Style::TraceContext,
                "" => continue,
                other => {
                    tracing::debug!(style = other, "propagation style not extracted by ddlambda");
                    continue;
                }
            };
            if !styles.contains(&style) {
                styles.push(style);
            }
        }
        Self { styles }
    }

    /// Extracts a context from a header map. The result may lack a parent id or a sampling
    /// priority; the caller decides whether it is usable.
    pub fn extract(&self, headers: &Map<String, Value>) -> Option<SpanContext> {
        self.extract_set(&HeaderSet::from_map(headers))
    }

    /// Extracts a context from the headers of a [`HeaderSet`].
    pub fn extract_set(&self, headers: &HeaderSet<'_>) -> Option<SpanContext> {
        if self.styles.is_empty() || headers.invalid {
            return None;
        }
        let mut primary: Option<SpanContext> = None;
        for &style in &self.styles {
            match &mut primary {
                None => {
                    primary = match style {
                        Style::Datadog => extract_datadog(headers),
                        Style::TraceContext => extract_tracecontext(headers),
                    };
                }
                // ddtrace's `_resolve_contexts`: a W3C context for the same trace carries the
                // more recent parent (a W3C-only hop in between); a different trace becomes a
                // span link there and is dropped here. Nothing else of a later context is
                // used, so only the W3C ids are read (no `tracestate`, no allocation).
                Some(first) => {
                    if style == Style::TraceContext
                        && let Some((trace_id, parent_id)) = traceparent_ids(headers)
                        && first.trace_id == trace_id as u64
                        && first.trace_id_high == high_bits(trace_id)
                    {
                        first.parent_id = parent_id;
                    }
                }
            }
        }
        primary
    }

    /// Extracts from a JSON value that should be a header map; anything else yields nothing.
    pub fn extract_value(&self, headers: &Value) -> Option<SpanContext> {
        match headers {
            Value::Object(map) => self.extract(map),
            _ => {
                tracing::debug!("trace context carrier is not a JSON object");
                None
            }
        }
    }
}

/// The high 64 bits of a 128-bit trace id, `None` when zero (a 64-bit id).
fn high_bits(trace_id: u128) -> Option<u64> {
    Some((trace_id >> 64) as u64).filter(|&h| h != 0)
}

/// The header names extraction reads; their lengths are distinct, so a key's length picks
/// the only name it can match.
const NAMES: [&str; 7] = [
    TRACE_ID,
    PARENT_ID,
    SAMPLING_PRIORITY,
    ORIGIN,
    TAGS,
    TRACEPARENT,
    TRACESTATE,
];

/// Positions in [`NAMES`] and in a [`HeaderSet`].
mod at {
    pub(super) const TRACE_ID: usize = 0;
    pub(super) const PARENT_ID: usize = 1;
    pub(super) const SAMPLING_PRIORITY: usize = 2;
    pub(super) const ORIGIN: usize = 3;
    pub(super) const TAGS: usize = 4;
    pub(super) const TRACEPARENT: usize = 5;
    pub(super) const TRACESTATE: usize = 6;
}

/// The slot of a header name in [`NAMES`], case-insensitively.
fn slot(key: &str) -> Option<usize> {
    let i = match key.len() {
        18 => 0,
        19 => 1,
        27 => 2,
        16 => 3,
        14 => 4,
        11 => 5,
        10 => 6,
        _ => return None,
    };
    key.eq_ignore_ascii_case(NAMES[i]).then_some(i)
}

/// The trace headers of a carrier, found case-insensitively in one pass (the last of several
/// keys differing only in case wins, as in ddtrace, which lowercases keys into a dict). Values
/// borrow from the carrier when they can.
#[derive(Debug, Default, Clone)]
pub struct HeaderSet<'a> {
    values: [Option<Cow<'a, str>>; 7],
    /// A trace header held a non-string value: ddtrace's extraction raises on it and yields
    /// no context at all.
    invalid: bool,
}

impl<'a> HeaderSet<'a> {
    /// The trace headers of a JSON header map.
    pub fn from_map(map: &'a Map<String, Value>) -> Self {
        let mut set = Self::default();
        for (key, value) in map {
            if let Some(i) = slot(key) {
                set.put(i, value);
            }
        }
        set
    }

    /// The trace headers of a `multiValueHeaders` map (the first value of each list).
    pub fn from_multi_value(map: &'a Map<String, Value>) -> Self {
        let mut set = Self::default();
        for (key, value) in map {
            let Some(i) = slot(key) else { continue };
            match value {
                Value::Array(values) => {
                    if let Some(first) = values.first() {
                        set.put(i, first);
                    }
                }
                Value::String(_) => set.put(i, value),
                _ => {}
            }
        }
        set
    }

    fn put(&mut self, i: usize, value: &'a Value) {
        match value {
            Value::String(s) => self.values[i] = Some(Cow::Borrowed(s)),
            _ => {
                tracing::debug!(
                    header = NAMES[i],
                    "trace header is not a string; carrier skipped"
                );
                self.invalid = true;
            }
        }
    }

    /// The value of `NAMES[i]`.
    fn get(&self, i: usize) -> Option<&str> {
        self.values[i].as_deref()
    }
}

impl<'de> HeaderSet<'de> {
    /// Reads the value of the map entry whose key was just read: kept if `key` is a trace
    /// header (which must be a string), skipped otherwise.
    pub(crate) fn read_entry<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match slot(key) {
            Some(i) => self.values[i] = Some(map.next_value::<CowStr<'de>>()?.0),
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Parses a header map straight from JSON text, keeping only the trace headers (other keys are
/// skipped without allocating). Fails on JSON that is not an object, or on a trace header
/// that is not a string (ddtrace yields no context for those either).
impl<'de> Deserialize<'de> for HeaderSet<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> Visitor<'de> for SetVisitor {
            type Value = HeaderSet<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of trace headers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut set = HeaderSet::default();
                while let Some(CowStr(key)) = map.next_key()? {
                    set.read_entry(&key, &mut map)?;
                }
                Ok(set)
            }
        }
        deserializer.deserialize_map(SetVisitor)
    }
}

/// A string that borrows from the input when it has no escapes.
pub(crate) struct CowStr<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Parses a decimal id the way Python's `int()` does for the usual forms (surrounding
/// whitespace, a leading `+`).
fn parse_decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    s.parse().ok()
}

/// [`parse_decimal`] for ids: digits only (after the optional `+`), at most `u64::MAX`. Ids are
/// read on every invocation, so this skips `FromStr`'s generic validation and sign handling.
fn parse_id(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |id, b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        id.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn extract_datadog(headers: &HeaderSet<'_>) -> Option<SpanContext> {
    let trace_id_str = headers.get(at::TRACE_ID)?;
    // Larger than 64 bits fails to parse, as ddtrace rejects it.
    let trace_id: u64 = match parse_id(trace_id_str) {
        Some(id) if id > 0 => id,
        _ => {
            tracing::debug!(trace_id = trace_id_str, "invalid x-datadog-trace-id");
            return None;
        }
    };
    // A present but malformed parent id or priority invalidates the whole Datadog context.
    let parent_id = match headers.get(at::PARENT_ID) {
        None => 0,
        Some(s) => match parse_id(s) {
            Some(id) => id,
            None => {
                tracing::debug!(parent_id = s, "invalid x-datadog-parent-id");
                return None;
            }
        },
    };
    let sampling_priority = match headers.get(at::SAMPLING_PRIORITY) {
        None => None,
        Some(s) => match parse_decimal::<i32>(s) {
            Some(p) => Some(p),
            None => {
                tracing::debug!(priority = s, "invalid x-datadog-sampling-priority");
                return None;
            }
        },
    };
    let mut ctx = SpanContext {
        trace_id,
        parent_id,
        sampling_priority,
        origin: headers.get(at::ORIGIN).map(str::to_owned),
        ..SpanContext::default()
    };
    if let Some(tags) = headers.get(at::TAGS) {
        apply_datadog_tags(&mut ctx, tags);
    }
    Some(ctx)
}

/// Reads `x-datadog-tags`: `_dd.p.*` keys only; a malformed or oversized list is ignored whole,
/// an invalid `_dd.p.tid` alone.
fn apply_datadog_tags(ctx: &mut SpanContext, tags: &str) {
    if tags.is_empty() {
        return;
    }
    if tags.len() > MAX_TAGS_LEN {
        tracing::debug!(len = tags.len(), "x-datadog-tags too long; ignored");
        return;
    }
    let pairs = || {
        tags.split(',').map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| !k.trim().is_empty() && !k.contains(' '))
                .map(|(k, v)| (k.trim(), v.trim()))
        })
    };
    // Validated whole first: one malformed pair voids the list.
    if pairs().any(|pair| pair.is_none()) {
        tracing::debug!(tags, "malformed x-datadog-tags; ignored");
        return;
    }
    for (key, value) in pairs().flatten() {
        if !key.starts_with("_dd.p.") || key == "_dd.p.upstream_services" {
            continue;
        }
        if key == TID_TAG {
            match parse_tid(value) {
                Some(high) => ctx.trace_id_high = Some(high),
                None => tracing::debug!(tid = value, "malformed _dd.p.tid; ignored"),
            }
        } else {
            ctx.propagation_tags
                .insert(key.to_owned(), value.to_owned());
        }
    }
}

/// `_dd.p.tid`: exactly 16 lowercase hex digits, not all zero.
pub(crate) fn parse_tid(value: &str) -> Option<u64> {
    if value.len() != 16
        || !value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    u64::from_str_radix(value, 16).ok().filter(|&v| v != 0)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The trace and parent ids of a valid `traceparent`.
fn traceparent_ids(headers: &HeaderSet<'_>) -> Option<(u128, u64)> {
    let traceparent = headers.get(at::TRACEPARENT)?.trim();
    parse_traceparent(traceparent).map(|(trace_id, parent_id, _)| (trace_id, parent_id))
}

fn extract_tracecontext(headers: &HeaderSet<'_>) -> Option<SpanContext> {
    let traceparent = headers.get(at::TRACEPARENT)?.trim();
    let Some((trace_id, parent_id, sampled)) = parse_traceparent(traceparent) else {
        tracing::debug!(traceparent, "invalid traceparent");
        return None;
    };
    let mut ctx = SpanContext {
        trace_id: trace_id as u64,
        trace_id_high: high_bits(trace_id),
        parent_id,
        sampling_priority: Some(i32::from(sampled)),
        ..SpanContext::default()
    };
    if let Some(tracestate) = headers.get(at::TRACESTATE) {
        apply_tracestate(&mut ctx, sampled, tracestate);
    }
    Some(ctx)
}

/// `version-traceid-parentid-flags`; version `ff` is invalid, version `00` takes no extra fields.
fn parse_traceparent(tp: &str) -> Option<(u128, u64, bool)> {
    // The fields have fixed widths: 2-32-16-2, then `-` and more only for later versions.
    let b = tp.as_bytes();
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let rest = match b.get(55) {
        None => None,
        Some(b'-') => Some(&tp[56..]),
        Some(_) => return None,
    };
    // Every bound is next to an ASCII `-` (or the end): all char boundaries.
    let (version, trace, parent, flags) = (&tp[..2], &tp[3..35], &tp[36..52], &tp[53..55]);
    if ![version, trace, parent, flags]
        .iter()
        .all(|p| is_lower_hex(p))
    {
        return None;
    }
    if version == "ff" || (version == "00" && rest.is_some()) || rest == Some("") {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok().filter(|&t| t != 0)?;
    let parent_id = u64::from_str_radix(parent, 16).ok().filter(|&p| p != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, parent_id, flags & 1 == 1))
}

/// The `dd=` member of `tracestate`: `s:` priority (reconciled with the sampled flag), `o:`
/// origin, `t.<k>:` propagation tags. A malformed `dd=` member is ignored whole.
fn apply_tracestate(ctx: &mut SpanContext, sampled: bool, tracestate: &str) {
    let members = || tracestate.split(',').map(str::trim);
    if members().any(|m| m.bytes().any(|b| !(0x20..=0x7e).contains(&b))) {
        tracing::debug!(
            tracestate,
            "tracestate has non-printable characters; ignored"
        );
        return;
    }
    let Some(dd) = members().rev().find_map(|m| m.strip_prefix("dd=")) else {
        return;
    };
    let mut priority = None;
    let mut origin = None;
    let mut tags = Vec::new();
    for item in dd.split(';') {
        let Some((key, value)) = item.split_once(':') else {
            tracing::debug!(tracestate, "malformed dd tracestate member; ignored");
            return;
        };
        match key {
            "s" => match parse_decimal::<i32>(value) {
                Some(p) => priority = Some(p),
                None => {
                    tracing::debug!(tracestate, "invalid s: in tracestate; ignored");
                    return;
                }
            },
            "o" => origin = Some(value.replace('~', "=")),
            _ => {
                if let Some(tag) = key.strip_prefix("t.") {
                    tags.push((format!("_dd.p.{tag}"), value.replace('~', "=")));
                }
            }
        }
    }
    let origin = origin.filter(|o| !o.is_empty());
    ctx.sampling_priority = reconcile_priority(sampled, priority, origin.as_deref());
    ctx.origin = origin;
    for (key, value) in tags {
        if key != TID_TAG {
            ctx.propagation_tags.insert(key, value);
        }
    }
}

/// ddtrace `_TraceContext._get_sampling_priority`: the tracestate priority wins only when it
/// agrees with the traceparent sampled flag (or the trace comes from RUM without a priority).
/// `None` only for a RUM trace without `s:`, as in ddtrace.
fn reconcile_priority(
    sampled: bool,
    ts_priority: Option<i32>,
    origin: Option<&str>,
) -> Option<i32> {
    // Python truthiness: a priority of 0 counts as absent here.
    let ts = ts_priority.filter(|&p| p != 0);
    let from_rum_without_priority = ts.is_none() && origin == Some("rum");
    if !from_rum_without_priority && !sampled && ts.is_none_or(|p| p >= 0) {
        Some(0)
    } else if !from_rum_without_priority && sampled && ts.is_none_or(|p| p < 0) {
        Some(1)
    } else {
        ts_priority
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extract(v: Value) -> Option<SpanContext> {
        Propagator::default().extract_value(&v)
    }

    #[test]
    fn datadog_headers_any_case() {
        let ctx = extract(json!({
            "X-Datadog-Trace-Id": "123", "x-datadog-parent-id": "321",
            "X-DATADOG-SAMPLING-PRIORITY": "2", "x-datadog-origin": "rum",
            "x-datadog-tags": "_dd.p.tid=66bcb5eb00000000,_dd.p.dm=-4,other=x"
        }))
        .unwrap();
        assert_eq!((ctx.trace_id, ctx.parent_id), (123, 321));
        assert_eq!(ctx.sampling_priority, Some(2));
        assert_eq!(ctx.origin.as_deref(), Some("rum"));
        assert_eq!(ctx.trace_id_high, Some(0x66bc_b5eb_0000_0000));
        assert_eq!(
            ctx.propagation_tags.get("_dd.p.dm").map(String::as_str),
            Some("-4")
        );
        assert_eq!(ctx.propagation_tags.len(), 1);
    }

    #[test]
    fn datadog_invalid_values() {
        assert!(extract(json!({"x-datadog-trace-id": "0", "x-datadog-parent-id": "1"})).is_none());
        assert!(extract(json!({"x-datadog-trace-id": "abc"})).is_none());
        assert!(extract(json!({"x-datadog-trace-id": "1", "x-datadog-parent-id": "x"})).is_none());
        assert!(extract(json!({"x-datadog-trace-id": 1, "x-datadog-parent-id": "2"})).is_none());
        let no_parent = extract(json!({"x-datadog-trace-id": "5"})).unwrap();
        assert_eq!(no_parent.parent_id, 0);
        let bad_tid =
            extract(json!({"x-datadog-trace-id": "5", "x-datadog-tags": "_dd.p.tid=XYZ"}));
        assert_eq!(bad_tid.unwrap().trace_id_high, None);
    }

    #[test]
    fn positions_match_names() {
        for (i, name) in [
            (at::TRACE_ID, TRACE_ID),
            (at::PARENT_ID, PARENT_ID),
            (at::SAMPLING_PRIORITY, SAMPLING_PRIORITY),
            (at::ORIGIN, ORIGIN),
            (at::TAGS, TAGS),
            (at::TRACEPARENT, TRACEPARENT),
            (at::TRACESTATE, TRACESTATE),
        ] {
            assert_eq!(slot(&name.to_ascii_uppercase()), Some(i), "{name}");
        }
    }

    #[test]
    fn parse_id_agrees_with_parse_decimal() {
        for (text, id) in [
            ("0", Some(0)),
            (" +42\n", Some(42)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("99999999999999999999999999999999999999999", None),
            ("-1", None),
            ("+-1", None),
            ("++1", None),
            ("1_000", None),
            ("", None),
            (" ", None),
            ("+", None),
            ("１", None),
        ] {
            assert_eq!(parse_id(text), id, "{text:?}");
            assert_eq!(parse_id(text), parse_decimal::<u64>(text), "{text:?}");
        }
    }

    #[test]
    fn w3c_same_trace_overrides_parent() {
        // ddtrace 4.16.0: Datadog 123/321 + W3C parent 0x1c8 → parent 456.
        let ctx = extract(json!({
            "x-datadog-trace-id": "123", "x-datadog-parent-id": "321",
            "x-datadog-sampling-priority": "1",
            "traceparent": "00-0000000000000000000000000000007b-00000000000001c8-01",
        }))
        .unwrap();
        assert_eq!((ctx.trace_id, ctx.parent_id), (123, 456));
    }

    #[test]
    fn w3c_only_with_tracestate() {
        let ctx = extract(json!({
            "traceparent": "00-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-01",
            "tracestate": "dd=s:2;o:rum;t.dm:-4,rojo=00f067aa0ba902b7",
        }))
        .unwrap();
        assert_eq!(ctx.trace_id, 0x64fe_8b2a_57d3_eff7);
        assert_eq!(ctx.trace_id_high, Some(0x80f1_98ee_5634_3ba8));
        assert_eq!(ctx.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(ctx.sampling_priority, Some(2));
        assert_eq!(ctx.origin.as_deref(), Some("rum"));
        // Sampled flag 0 with s:2 disagree → 0.
        let ctx = extract(json!({
            "traceparent": "00-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-00",
            "tracestate": "dd=s:2",
        }))
        .unwrap();
        assert_eq!(ctx.sampling_priority, Some(0));
    }

    #[test]
    fn w3c_invalid() {
        for tp in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-01",
            "00-80F198EE56343BA864FE8B2A57D3EFF7-00f067aa0ba902b7-01",
            "00-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-01-extra",
            "garbage",
            "01-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-01-",
            "01-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-01é",
            "01-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-0é",
            "00-80f198ee56343ba864fe8b2a57d3eff-700f067aa0ba902b7-01",
        ] {
            assert!(extract(json!({ "traceparent": tp })).is_none(), "{tp}");
        }
        // A later version may carry more fields.
        let later = "01-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-01-what-ever";
        assert!(extract(json!({ "traceparent": later })).is_some());
    }

    #[test]
    fn styles_from_list() {
        assert_eq!(Propagator::parse("").styles, vec![]);
        assert_eq!(
            Propagator::parse("tracecontext, datadog, b3").styles,
            vec![Style::TraceContext, Style::Datadog]
        );
        let none = Propagator::parse("");
        assert!(
            none.extract_value(&json!({"x-datadog-trace-id": "1"}))
                .is_none()
        );
    }
}
