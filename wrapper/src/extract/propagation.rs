//! Trace-header extraction with the semantics of ddtrace's `HTTPPropagator.extract` (ddtrace
//! 4.16.0), which every datadog-lambda carrier delegates to: Datadog (`x-datadog-*`), W3C
//! tracecontext, B3 (multi and single header) and W3C baggage, in the configured order.
//!
//! A carrier's header map is a JSON object; keys match case-insensitively (ddtrace lowercases
//! them, the last duplicate wins). A header a style reads must be a string: any other value
//! aborts the whole extraction, as the `TypeError` does in ddtrace. Headers of styles that are
//! not enabled are never looked at.
//!
//! Every enabled style is extracted; the first that yields a context is the primary one
//! (ddtrace's `_resolve_contexts`), even one without a trace id (`b3: 0`), which then parents
//! nothing. A later context of another trace would be a span link in ddtrace
//! ("terminated_context"); datadog-lambda drops links with the rest of the context's meta, and
//! so does ddlambda. A later tracecontext of the same trace carries the more recent parent (a
//! W3C-only hop in between): its parent id wins and `_dd.parent_id` keeps the last Datadog
//! parent — tracestate's `p:`, else the Datadog headers' parent id. Baggage never parents a
//! span; its items only tag one (`DD_TRACE_BAGGAGE_TAG_KEYS`).
//!
//! The context's meta that is not propagated (`_dd.parent_id`, `_dd.propagation_error`,
//! `baggage.*`) goes to [`SpanContext::span_tags`], for the first span of the trace chunk, where
//! ddtrace puts it. datadog-lambda itself re-creates the context from its ids alone
//! (`set_dd_trace_py_root`), so its spans carry none of it: ddlambda deliberately keeps what a
//! ddtrace service continuing the same headers would record.
//!
//! Deliberate differences from ddtrace, for inputs no tracer sends:
//! 1. Numbers are read with ASCII digits only (Python's `int()` also takes other Unicode
//!    digits).
//! 2. A span id wider than 64 bits counts as absent (ddtrace keeps the Python int; Datadog span
//!    ids are 64-bit); a sampling priority outside `i32` is clamped (its sign is kept).
//! 3. WSGI-style names (`HTTP_X_DATADOG_TRACE_ID`) are not read: Lambda events carry HTTP names.

mod b3;
mod baggage;
mod datadog;
mod headers;
mod python;
mod tracecontext;

use ddlambda_wire::SpanContext;
use serde_json::{Map, Value};

pub(crate) use datadog::parse_tid;
pub(crate) use headers::CowStr;
pub use headers::HeaderSet;

use b3::{extract_b3_multi, extract_b3_single};
use baggage::parse_baggage;
use datadog::extract_datadog;
use headers::{PARENT_ID, at};
use python::py_strip;
use tracecontext::{extract_tracecontext, last_datadog_parent, traceparent_ids};

/// The span tag keeping the last Datadog parent when a W3C parent replaces it.
pub const LAST_PARENT_TAG: &str = "_dd.parent_id";
/// The span tag ddtrace sets when `x-datadog-tags` cannot be used whole.
pub const PROPAGATION_ERROR_TAG: &str = "_dd.propagation_error";
/// Prefix of the span tags made from baggage items.
pub const BAGGAGE_TAG_PREFIX: &str = "baggage.";
/// ddtrace's default `DD_TRACE_BAGGAGE_TAG_KEYS`.
const DEFAULT_BAGGAGE_TAG_KEYS: [&str; 3] = ["user.id", "account.id", "session.id"];

/// A propagation style that can be extracted, named as `DD_TRACE_PROPAGATION_STYLE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `datadog`: `x-datadog-*` headers.
    Datadog,
    /// `tracecontext`: W3C `traceparent` / `tracestate`.
    TraceContext,
    /// `b3multi`: `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`, `x-b3-flags`.
    B3Multi,
    /// `b3`: the single `b3` header.
    B3Single,
    /// `baggage`: the W3C `baggage` header; it never parents a span by itself.
    Baggage,
}

impl Style {
    /// A style by its configuration name (already trimmed and lowercased). `none` is no style.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "datadog" => Self::Datadog,
            "tracecontext" => Self::TraceContext,
            "b3multi" => Self::B3Multi,
            "b3" => Self::B3Single,
            "baggage" => Self::Baggage,
            _ => return None,
        })
    }
}

/// Which baggage items become `baggage.<key>` tags (`DD_TRACE_BAGGAGE_TAG_KEYS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaggageTagKeys {
    /// `*`: every item.
    All,
    /// These keys, when present.
    Keys(Vec<String>),
}

impl Default for BaggageTagKeys {
    fn default() -> Self {
        Self::Keys(DEFAULT_BAGGAGE_TAG_KEYS.map(str::to_owned).to_vec())
    }
}

impl BaggageTagKeys {
    /// A comma-separated key list as ddtrace reads it: blank entries are skipped, `*` anywhere
    /// means every key, an empty list none.
    pub fn parse(list: &str) -> Self {
        let keys: Vec<String> = list
            .split(',')
            .map(py_strip)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        if keys.iter().any(|k| k == "*") {
            Self::All
        } else {
            Self::Keys(keys)
        }
    }
}

/// What to extract and how (ddtrace's `DD_TRACE_PROPAGATION_*` extract settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagator {
    /// The enabled styles in priority order, without duplicates.
    styles: Vec<Style>,
    /// `DD_TRACE_PROPAGATION_EXTRACT_FIRST`: only the first style is read.
    extract_first: bool,
    baggage_tag_keys: BaggageTagKeys,
}

impl Default for Propagator {
    /// ddtrace's default: `datadog,tracecontext,baggage`.
    fn default() -> Self {
        Self::new(vec![Style::Datadog, Style::TraceContext, Style::Baggage])
    }
}

impl Propagator {
    /// A propagator reading the given styles in order.
    pub fn new(mut styles: Vec<Style>) -> Self {
        let mut seen = Vec::with_capacity(styles.len());
        styles.retain(|s| {
            let first = !seen.contains(s);
            seen.push(*s);
            first
        });
        Self {
            styles,
            extract_first: false,
            baggage_tag_keys: BaggageTagKeys::default(),
        }
    }

    /// Parses a comma-separated style list as ddtrace does: names are trimmed and lowercased,
    /// `none` and blank entries are skipped, unknown names are skipped with a warning (the
    /// legacy `b3 single header` is unknown to ddtrace 4.x). Nothing left disables extraction.
    pub fn parse(list: &str) -> Self {
        let mut styles = Vec::new();
        for raw in list.split(',') {
            let name = py_strip(raw).to_lowercase();
            if name.is_empty() || name == "none" {
                continue;
            }
            match Style::from_name(&name) {
                Some(style) => styles.push(style),
                None => tracing::warn!(
                    style = name,
                    "unknown propagation style; allowed: datadog, tracecontext, b3multi, b3, baggage, none"
                ),
            }
        }
        Self::new(styles)
    }

    /// The configuration from the environment; see [`Propagator::from_lookup`].
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration from environment variables read through `var`, as ddtrace reads them:
    /// - styles from `DD_TRACE_PROPAGATION_STYLE_EXTRACT`, else `DD_TRACE_PROPAGATION_STYLE`
    ///   (an empty value disables extraction), else `OTEL_PROPAGATORS` (its `b3`, `b3multi`,
    ///   `datadog`, `tracecontext` and `none` entries), else the default;
    /// - `DD_TRACE_PROPAGATION_BEHAVIOR_EXTRACT=ignore` or `restart`: nothing parents the
    ///   trace (ddtrace's `restart` keeps only a span link, which datadog-lambda drops);
    /// - `DD_TRACE_PROPAGATION_EXTRACT_FIRST` (`true` / `1`): only the first style is read;
    /// - `DD_TRACE_BAGGAGE_TAG_KEYS` (default `user.id,account.id,session.id`).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let behavior = var("DD_TRACE_PROPAGATION_BEHAVIOR_EXTRACT").map(|b| b.to_lowercase());
        let mut propagator = if matches!(behavior.as_deref(), Some("ignore" | "restart")) {
            Self::new(Vec::new())
        } else if let Some(list) =
            var("DD_TRACE_PROPAGATION_STYLE_EXTRACT").or_else(|| var("DD_TRACE_PROPAGATION_STYLE"))
        {
            Self::parse(&list)
        } else {
            match var("OTEL_PROPAGATORS").and_then(|otel| otel_styles(&otel)) {
                Some(list) => Self::parse(&list),
                None => Self::default(),
            }
        };
        propagator.extract_first = var("DD_TRACE_PROPAGATION_EXTRACT_FIRST")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        if let Some(keys) = var("DD_TRACE_BAGGAGE_TAG_KEYS") {
            propagator.baggage_tag_keys = BaggageTagKeys::parse(&keys);
        }
        propagator
    }

    /// Sets `DD_TRACE_PROPAGATION_EXTRACT_FIRST`.
    pub fn with_extract_first(mut self, extract_first: bool) -> Self {
        self.extract_first = extract_first;
        self
    }

    /// Sets `DD_TRACE_BAGGAGE_TAG_KEYS`.
    pub fn with_baggage_tag_keys(mut self, keys: BaggageTagKeys) -> Self {
        self.baggage_tag_keys = keys;
        self
    }

    /// The enabled styles, in priority order.
    pub fn styles(&self) -> &[Style] {
        &self.styles
    }

    /// Extracts a context from a header map. The result may lack a parent id or a sampling
    /// priority; the caller decides whether it is usable.
    pub fn extract(&self, headers: &Map<String, Value>) -> Option<SpanContext> {
        self.extract_set(&HeaderSet::from_map(headers))
    }

    /// Extracts a context from the headers of a [`HeaderSet`]. `None` when no enabled style
    /// yields a trace id (a baggage-only carrier included: it parents nothing).
    pub fn extract_set(&self, headers: &HeaderSet<'_>) -> Option<SpanContext> {
        if self.styles.is_empty() {
            return None;
        }
        // Filled in place: the context is moved as little as possible on this per-invocation path.
        let mut primary = None;
        let read = if self.extract_first {
            self.extract_first_style(headers, &mut primary)
        } else {
            self.extract_resolved(headers, &mut primary)
        }
        .and_then(|()| self.apply_baggage(headers, primary.as_mut()));
        if let Err(Abort(header)) = read {
            tracing::debug!(header, "trace header is not a string; carrier skipped");
            return None;
        }
        if primary
            .as_ref()
            .is_some_and(|c| c.trace_id == 0 && c.trace_id_high.is_none())
        {
            return None;
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

    /// `DD_TRACE_PROPAGATION_EXTRACT_FIRST`: the first style alone, whatever it finds.
    fn extract_first_style(
        &self,
        headers: &HeaderSet<'_>,
        primary: &mut Option<SpanContext>,
    ) -> Read<()> {
        if self.styles[0] != Style::Baggage {
            *primary = extract_style(self.styles[0], headers)?;
        }
        Ok(())
    }

    /// Every trace style, then ddtrace's `_resolve_contexts`. Contexts after the primary one are
    /// only read as far as resolution needs (ids, `tracestate`'s `p:`), with every header ddtrace
    /// would read still checked for the abort rule.
    fn extract_resolved(
        &self,
        headers: &HeaderSet<'_>,
        primary: &mut Option<SpanContext>,
    ) -> Read<()> {
        // The Datadog context's parent id (0 for none), wherever it is in the order: the
        // `_dd.parent_id` fallback.
        let mut datadog_parent: Option<u64> = None;
        // A later tracecontext of the same trace with another parent: its parent id.
        let mut w3c_parent: Option<u64> = None;
        for &style in &self.styles {
            match (&*primary, style) {
                (_, Style::Baggage) => {}
                (None, _) => {
                    *primary = extract_style(style, headers)?;
                    if style == Style::Datadog
                        && let Some(ctx) = primary
                    {
                        datadog_parent = Some(ctx.parent_id);
                    }
                }
                (Some(first), Style::TraceContext) => {
                    let Some((trace_id, parent_id)) = traceparent_ids(headers)? else {
                        continue;
                    };
                    // Checked for the abort rule; parsed below only if its `p:` is needed.
                    headers.read(at::TRACESTATE)?;
                    if trace_id == full_trace_id(first) && parent_id != first.parent_id {
                        w3c_parent = Some(parent_id);
                    } else if trace_id != full_trace_id(first) {
                        tracing::debug!(trace_id, "tracecontext of another trace ignored");
                    }
                }
                (Some(_), Style::Datadog) => {
                    if let Some(ctx) = extract_datadog(headers)? {
                        datadog_parent = Some(ctx.parent_id);
                    }
                }
                (Some(_), _) => {
                    // A B3 context never updates the primary one; read for the abort rule.
                    extract_style(style, headers)?;
                }
            }
        }
        if let (Some(ctx), Some(parent_id)) = (primary, w3c_parent) {
            let last_parent = match headers.get(at::TRACESTATE).and_then(last_datadog_parent) {
                Some(p) => Some(p.to_owned()),
                // ddtrace formats the Datadog context's span id; a missing one raises.
                None => match datadog_parent {
                    Some(0) => return Err(Abort(PARENT_ID)),
                    Some(dd) => Some(format!("{dd:016x}")),
                    None => None,
                },
            };
            if let Some(p) = last_parent {
                ctx.span_tags.insert(LAST_PARENT_TAG.to_owned(), p);
            }
            ctx.parent_id = parent_id;
        }
        Ok(())
    }

    /// The baggage style: `baggage.<key>` span tags on the context, if there is one (without a
    /// trace context the items tag nothing, but the header is still read for the abort rule).
    fn apply_baggage(&self, headers: &HeaderSet<'_>, ctx: Option<&mut SpanContext>) -> Read<()> {
        if !self.styles.contains(&Style::Baggage) {
            return Ok(());
        }
        match ctx {
            Some(ctx) => self.tag_baggage(ctx, headers),
            None => headers.read(at::BAGGAGE).map(drop),
        }
    }

    /// `baggage.<key>` span tags for the configured keys present in the `baggage` header.
    fn tag_baggage(&self, ctx: &mut SpanContext, headers: &HeaderSet<'_>) -> Read<()> {
        let Some(header) = headers.read(at::BAGGAGE)? else {
            return Ok(());
        };
        let wanted = |key: &str| match &self.baggage_tag_keys {
            BaggageTagKeys::All => true,
            BaggageTagKeys::Keys(keys) => keys.iter().any(|k| k == key),
        };
        for (key, value) in parse_baggage(header, wanted) {
            ctx.span_tags
                .entry(format!("{BAGGAGE_TAG_PREFIX}{key}"))
                .or_insert_with(|| value.into_owned());
        }
        Ok(())
    }
}

/// ddtrace's `_remap_otel_propagators`: the OpenTelemetry names it knows, deduplicated; `None`
/// when none is left (ddtrace then uses its default).
fn otel_styles(otel: &str) -> Option<String> {
    let mut accepted: Vec<String> = Vec::new();
    for raw in otel.split(',') {
        let name = py_strip(raw).to_lowercase();
        if matches!(
            name.as_str(),
            "b3" | "b3multi" | "datadog" | "tracecontext" | "none"
        ) {
            if !accepted.contains(&name) {
                accepted.push(name);
            }
        } else {
            tracing::warn!(style = name, "OTEL_PROPAGATORS style not supported");
        }
    }
    (!accepted.is_empty()).then(|| accepted.join(","))
}

/// ddtrace's extraction raised: a header it read held a non-string value. Names the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Abort(&'static str);

type Read<T> = Result<T, Abort>;

#[inline]
fn extract_style(style: Style, headers: &HeaderSet<'_>) -> Read<Option<SpanContext>> {
    match style {
        Style::Datadog => extract_datadog(headers),
        Style::TraceContext => extract_tracecontext(headers),
        Style::B3Multi => extract_b3_multi(headers),
        Style::B3Single => extract_b3_single(headers),
        Style::Baggage => Ok(None),
    }
}

/// The 128-bit trace id of a context (0 for none).
fn full_trace_id(ctx: &SpanContext) -> u128 {
    u128::from(ctx.trace_id_high.unwrap_or(0)) << 64 | u128::from(ctx.trace_id)
}

/// A context for a 128-bit trace id, split as Datadog splits it.
fn context_for(trace_id: u128, parent_id: u64, sampling_priority: Option<i32>) -> SpanContext {
    SpanContext {
        trace_id: trace_id as u64,
        trace_id_high: high_bits(trace_id),
        parent_id,
        sampling_priority,
        ..SpanContext::default()
    }
}

/// The high 64 bits of a 128-bit trace id, `None` when zero (a 64-bit id).
fn high_bits(trace_id: u128) -> Option<u64> {
    Some((trace_id >> 64) as u64).filter(|&h| h != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extract(v: Value) -> Option<SpanContext> {
        Propagator::default().extract_value(&v)
    }

    fn extract_with(styles: &str, v: Value) -> Option<SpanContext> {
        Propagator::parse(styles).extract_value(&v)
    }

    fn ids(ctx: &SpanContext) -> (u128, u64, Option<i32>) {
        (full_trace_id(ctx), ctx.parent_id, ctx.sampling_priority)
    }

    const TP_7B: &str = "00-0000000000000000000000000000007b-00000000000001c8-01";

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
        assert!(ctx.span_tags.is_empty());
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

    /// Vectors checked against ddtrace 4.16.0's `HTTPPropagator.extract`.
    #[test]
    fn datadog_tags_as_ddtrace_decodes_them() {
        let with_tags = |tags: &str| {
            extract(json!({"x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "x-datadog-tags": tags}))
                .unwrap()
        };
        let tags = |ctx: &SpanContext| {
            let mut all: Vec<String> = ctx
                .propagation_tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            all.extend(ctx.span_tags.iter().map(|(k, v)| format!("{k}={v}")));
            all
        };
        for (input, want) in [
            (
                "_dd.p.dm=-4,_dd.p.tid=XYZ",
                vec!["_dd.p.dm=-4", "_dd.propagation_error=malformed_tid XYZ"],
            ),
            ("_dd.p.dm=-14", vec!["_dd.p.dm=-14"]),
            ("_dd.p.dm=-255", vec!["_dd.p.dm=-255"]),
            (
                "_dd.p.dm=-256",
                vec!["_dd.propagation_error=decoding_error"],
            ),
            ("_dd.p.dm=4", vec!["_dd.propagation_error=decoding_error"]),
            ("_dd.p.dm=-04", vec!["_dd.propagation_error=decoding_error"]),
            ("_dd.p.dm=", vec!["_dd.propagation_error=decoding_error"]),
            (
                "_dd.p.dm=-4,bad",
                vec!["_dd.propagation_error=decoding_error"],
            ),
            (
                "_dd.p.dm=-4, _dd.p.x=y",
                vec!["_dd.propagation_error=decoding_error"],
            ),
            (
                "_dd.p.dm=-4,,_dd.p.x=y",
                vec!["_dd.propagation_error=decoding_error"],
            ),
            ("_dd.p.a=é", vec!["_dd.propagation_error=decoding_error"]),
            ("=v", vec!["_dd.propagation_error=decoding_error"]),
            (
                "_dd.p.a=b=c, _dd.p.b= x y ",
                vec!["_dd.propagation_error=decoding_error"],
            ),
            (
                "_dd.p.a=b=c,_dd.p.b= x y ,",
                vec!["_dd.p.a=b=c", "_dd.p.b=x y"],
            ),
            ("_dd.p.a=1,_dd.p.a=2,other=3", vec!["_dd.p.a=2"]),
            ("_dd.p.upstream_services=x,_dd.p.x=1", vec!["_dd.p.x=1"]),
        ] {
            let want: Vec<String> = want.into_iter().map(str::to_owned).collect();
            assert_eq!(tags(&with_tags(input)), want, "{input}");
        }
        let long = format!("_dd.p.x={}", "a".repeat(600));
        assert_eq!(
            tags(&with_tags(&long)),
            ["_dd.propagation_error=extract_max_size"]
        );
        // 512 characters but more bytes: decoded (and rejected for the non-ASCII value).
        let wide = format!("_dd.p.x={}", "é".repeat(300));
        assert_eq!(
            tags(&with_tags(&wide)),
            ["_dd.propagation_error=decoding_error"]
        );
    }

    #[test]
    fn datadog_ids_as_ddtrace_keeps_them() {
        let ids = |trace: &str, parent: &str, priority: &str| {
            extract(
                json!({"x-datadog-trace-id": trace, "x-datadog-parent-id": parent,
                           "x-datadog-sampling-priority": priority}),
            )
            .map(|c| (c.trace_id, c.parent_id, c.sampling_priority))
        };
        assert_eq!(ids("1_000", "2", "1"), Some((1000, 2, Some(1))));
        assert_eq!(ids("10", "1_0", "1_0"), Some((10, 10, Some(10))));
        // A negative or too wide parent: no parent, the context stays.
        assert_eq!(ids("10", "-5", "1"), Some((10, 0, Some(1))));
        assert_eq!(
            ids("10", "99999999999999999999999", "1"),
            Some((10, 0, Some(1)))
        );
        assert_eq!(ids("-10", "5", "1"), None);
        assert_eq!(ids("18446744073709551616", "5", "1"), None);
        assert_eq!(ids("10", "5", "x"), None);
    }

    #[test]
    fn w3c_same_trace_overrides_parent_and_keeps_the_datadog_one() {
        // ddtrace 4.16.0: Datadog 123/321 + W3C parent 0x1c8 → parent 456, _dd.parent_id 0x141.
        let ctx = extract(json!({
            "x-datadog-trace-id": "123", "x-datadog-parent-id": "321",
            "x-datadog-sampling-priority": "1", "traceparent": TP_7B,
        }))
        .unwrap();
        assert_eq!((ctx.trace_id, ctx.parent_id), (123, 456));
        assert_eq!(ctx.span_tags[LAST_PARENT_TAG], "0000000000000141");
        // tracestate's p: wins, verbatim.
        for (p, want) in [("00000000000000ff", "00000000000000ff"), ("zz", "zz")] {
            let ctx = extract(json!({
                "x-datadog-trace-id": "123", "x-datadog-parent-id": "321",
                "traceparent": TP_7B, "tracestate": format!("dd=s:1;p:{p},other=x"),
            }))
            .unwrap();
            assert_eq!(ctx.span_tags[LAST_PARENT_TAG], want);
        }
        // An empty p:, a malformed dd member or a non-printable tracestate: the Datadog parent.
        for ts in ["dd=p:", "dd=s:x;p:abc", "dd=p:abc,é=1", "dd=p:abc;bad"] {
            let ctx = extract(json!({
                "x-datadog-trace-id": "123", "x-datadog-parent-id": "5",
                "traceparent": TP_7B, "tracestate": ts,
            }))
            .unwrap();
            assert_eq!(ctx.parent_id, 456, "{ts}");
            assert_eq!(ctx.span_tags[LAST_PARENT_TAG], "0000000000000005", "{ts}");
        }
        // The same parent: nothing to record.
        let same = extract(json!({
            "x-datadog-trace-id": "123", "x-datadog-parent-id": "456", "traceparent": TP_7B,
        }))
        .unwrap();
        assert!(same.span_tags.is_empty());
        // Another trace: the Datadog context stands alone.
        let other = extract(json!({
            "x-datadog-trace-id": "124", "x-datadog-parent-id": "5", "traceparent": TP_7B,
        }))
        .unwrap();
        assert_eq!((other.parent_id, other.span_tags.len()), (5, 0));
    }

    #[test]
    fn w3c_same_trace_without_datadog_parent_aborts() {
        // ddtrace formats the Datadog span id, None without a parent header: TypeError.
        assert!(extract(json!({"x-datadog-trace-id": "123", "traceparent": TP_7B})).is_none());
        // With a p: there is nothing to format.
        let ctx = extract(json!({
            "x-datadog-trace-id": "123", "traceparent": TP_7B, "tracestate": "dd=p:zz",
        }))
        .unwrap();
        assert_eq!(
            (ctx.parent_id, ctx.span_tags[LAST_PARENT_TAG].as_str()),
            (456, "zz")
        );
    }

    #[test]
    fn w3c_128_bit_match_needs_the_datadog_tid() {
        let tp = "00-66bcb5eb00000000000000000000007b-00000000000001c8-01";
        let without = extract(json!({
            "x-datadog-trace-id": "123", "x-datadog-parent-id": "5", "traceparent": tp,
        }))
        .unwrap();
        assert_eq!(without.parent_id, 5);
        let with = extract(json!({
            "x-datadog-trace-id": "123", "x-datadog-parent-id": "5", "traceparent": tp,
            "x-datadog-tags": "_dd.p.tid=66bcb5eb00000000",
        }))
        .unwrap();
        assert_eq!(with.parent_id, 456);
        assert_eq!(with.span_tags[LAST_PARENT_TAG], "0000000000000005");
    }

    #[test]
    fn w3c_primary_keeps_its_own_p() {
        let ctx = extract_with(
            "tracecontext,datadog",
            json!({
                "traceparent": TP_7B, "tracestate": "dd=s:2;p:0000000000000abc;t.dm:-4",
                "x-datadog-trace-id": "123", "x-datadog-parent-id": "321",
            }),
        )
        .unwrap();
        assert_eq!(ids(&ctx), (123, 456, Some(2)));
        assert_eq!(ctx.span_tags[LAST_PARENT_TAG], "0000000000000abc");
        assert_eq!(ctx.propagation_tags["_dd.p.dm"], "-4");
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
        // A repeated key: the last one counts, as in ddtrace's dict.
        let ctx = extract(json!({
            "traceparent": "00-80f198ee56343ba864fe8b2a57d3eff7-00f067aa0ba902b7-01",
            "tracestate": "dd=s:x;s:2",
        }))
        .unwrap();
        assert_eq!(ctx.sampling_priority, Some(2));
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
    fn b3_multi() {
        let ctx = extract_with(
            "b3multi",
            json!({"X-B3-TraceId": "80f198ee56343ba864fe8b2a57d3eff7",
                   "x-b3-spanid": "e457b5a2e4d86bd1", "x-b3-sampled": "1"}),
        )
        .unwrap();
        assert_eq!(ctx.trace_id, 0x64fe_8b2a_57d3_eff7);
        assert_eq!(ctx.trace_id_high, Some(0x80f1_98ee_5634_3ba8));
        assert_eq!(
            (ctx.parent_id, ctx.sampling_priority),
            (0xe457_b5a2_e4d8_6bd1, Some(1))
        );
        for (sampled, flags, want) in [
            (Some("0"), None, Some(0)),
            (Some("1"), Some("1"), Some(2)),
            (Some("0"), Some("0"), Some(0)),
            (Some("true"), None, None),
            (Some(" 1"), None, None),
            (None, Some("d"), None),
            (None, None, None),
        ] {
            let mut h = json!({"x-b3-traceid": "a3ce929d0e0e4736", "x-b3-spanid": "2"});
            if let Some(s) = sampled {
                h["x-b3-sampled"] = json!(s);
            }
            if let Some(f) = flags {
                h["x-b3-flags"] = json!(f);
            }
            let ctx = extract_with("b3multi", h).unwrap();
            assert_eq!(
                ids(&ctx),
                (0xa3ce_929d_0e0e_4736, 2, want),
                "{sampled:?} {flags:?}"
            );
        }
        // Only the trace id is required; ids that do not parse give no B3 context.
        let alone = extract_with("b3multi", json!({"x-b3-traceid": "1"})).unwrap();
        assert_eq!(ids(&alone), (1, 0, None));
        for bad in [
            json!({"x-b3-traceid": "1", "x-b3-spanid": "zz"}),
            json!({"x-b3-traceid": ""}),
        ] {
            assert!(extract_with("b3multi", bad).is_none());
        }
        // Not enabled: not read.
        assert!(extract(json!({"x-b3-traceid": "1", "x-b3-spanid": "2"})).is_none());
    }

    #[test]
    fn b3_single() {
        let b3 = |h: &str| extract_with("b3", json!({ "b3": h }));
        let full =
            b3("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90").unwrap();
        assert_eq!(full.trace_id_high, Some(0x80f1_98ee_5634_3ba8));
        assert_eq!(
            (full.parent_id, full.sampling_priority),
            (0xe457_b5a2_e4d8_6bd1, Some(1))
        );
        for (header, want) in [
            (
                "a3ce929d0e0e4736-00f067aa0ba902b7-d",
                Some((0xa3ce_929d_0e0e_4736, 0x00f0_67aa_0ba9_02b7, Some(2))),
            ),
            (
                "a3ce929d0e0e4736-00f067aa0ba902b7-0",
                Some((0xa3ce_929d_0e0e_4736, 0x00f0_67aa_0ba9_02b7, Some(0))),
            ),
            (
                "a3ce929d0e0e4736-00f067aa0ba902b7",
                Some((0xa3ce_929d_0e0e_4736, 0x00f0_67aa_0ba9_02b7, None)),
            ),
            ("1-2-D", Some((1, 2, None))),
            ("1-2-1-", Some((1, 2, Some(1)))),
            ("1-2-3-4-5", Some((1, 2, None))),
            ("0x1f-0X2_0-1", Some((31, 32, Some(1)))),
            ("1-0-1", Some((1, 0, Some(1)))),
            ("1-ffffffffffffffffff-1", Some((1, 0, Some(1)))),
            // A sampling state alone, or no trace id: no usable trace.
            ("0", None),
            ("d", None),
            ("0-0-1", None),
            // int() raises: no B3 context.
            ("zz-20-1", None),
            ("-20-1", None),
            ("1-", None),
            ("", None),
        ] {
            assert_eq!(b3(header).map(|c| ids(&c)), want, "{header}");
        }
    }

    #[test]
    fn a_first_context_without_trace_id_still_wins() {
        // b3 "0" yields an id-less context; the Datadog one would only be a span link.
        let dd = json!({"x-datadog-trace-id": "7", "x-datadog-parent-id": "9"});
        let mut h = dd.clone();
        h["b3"] = json!("0");
        assert!(extract_with("b3,datadog", h.clone()).is_none());
        assert_eq!(
            extract_with("datadog,b3", h).map(|c| ids(&c)),
            Some((7, 9, None))
        );
        // Invalid B3 ids yield no context at all: the next style is the primary one.
        let mut h = dd;
        h["x-b3-traceid"] = json!("zz");
        assert_eq!(
            extract_with("b3multi,datadog", h).map(|c| ids(&c)),
            Some((7, 9, None))
        );
    }

    #[test]
    fn b3_and_datadog_in_either_order() {
        let h = json!({
            "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "2",
            "x-b3-sampled": "1", "x-datadog-trace-id": "7", "x-datadog-parent-id": "9",
            "x-datadog-sampling-priority": "2",
        });
        let b3_first = extract_with("b3multi,datadog", h.clone()).unwrap();
        assert_eq!(b3_first.parent_id, 2);
        assert_eq!(b3_first.trace_id_high, Some(0x80f1_98ee_5634_3ba8));
        let dd_first = extract_with("datadog,b3multi", h).unwrap();
        assert_eq!(ids(&dd_first), (7, 9, Some(2)));
        // A B3 primary, then W3C of the same trace: the W3C parent, _dd.parent_id from the
        // Datadog context wherever it is in the order.
        let h = json!({
            "traceparent": TP_7B, "x-b3-traceid": "7b", "x-b3-spanid": "2", "x-b3-sampled": "1",
            "x-datadog-trace-id": "123", "x-datadog-parent-id": "321",
        });
        let ctx = extract_with("b3multi,tracecontext,datadog", h.clone()).unwrap();
        assert_eq!(ids(&ctx), (123, 456, Some(1)));
        assert_eq!(ctx.span_tags[LAST_PARENT_TAG], "0000000000000141");
        let ctx = extract_with("b3multi,tracecontext", h).unwrap();
        assert_eq!(ids(&ctx), (123, 456, Some(1)));
        assert!(ctx.span_tags.is_empty());
    }

    #[test]
    fn non_string_headers_abort_only_when_read() {
        let ok = json!({"x-datadog-trace-id": "123", "x-datadog-parent-id": "5"});
        // Read by an enabled style: the whole extraction yields nothing.
        for (styles, key) in [
            ("datadog", "x-datadog-origin"),
            ("datadog,tracecontext", "traceparent"),
            ("datadog,b3", "b3"),
            ("datadog,b3multi", "x-b3-traceid"),
            ("datadog,baggage", "baggage"),
        ] {
            let mut h = ok.clone();
            h[key] = json!(5);
            assert!(extract_with(styles, h).is_none(), "{styles} {key}");
        }
        // Not read: no effect.
        for (styles, key) in [
            ("datadog", "traceparent"),
            ("datadog", "baggage"),
            ("datadog,b3multi", "x-b3-spanid"),
            ("datadog,tracecontext", "tracestate"),
        ] {
            let mut h = ok.clone();
            h[key] = Value::Null;
            assert!(extract_with(styles, h).is_some(), "{styles} {key}");
        }
        // tracestate is read once traceparent is valid.
        let mut h = ok.clone();
        h["traceparent"] = json!(TP_7B);
        h["tracestate"] = json!(["dd=s:1"]);
        assert!(extract_with("datadog,tracecontext", h).is_none());
        // The last of two spellings wins, string or not.
        let map: Map<String, Value> = serde_json::from_str(
            r#"{"x-datadog-trace-id": "1", "X-Datadog-Parent-Id": 2, "x-datadog-parent-id": "3"}"#,
        )
        .unwrap();
        assert_eq!(
            Propagator::default().extract(&map).map(|c| c.parent_id),
            Some(3)
        );
        // The same rules straight from JSON text.
        let set: HeaderSet<'_> = serde_json::from_str(
            r#"{"x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "traceparent": {"a": [1]}, "other": 1}"#,
        )
        .unwrap();
        assert_eq!(
            Propagator::parse("datadog")
                .extract_set(&set)
                .map(|c| c.parent_id),
            Some(2)
        );
        assert!(Propagator::default().extract_set(&set).is_none());
    }

    #[test]
    fn baggage_tags_the_span_only_with_a_trace() {
        let h = json!({
            "x-datadog-trace-id": "123", "x-datadog-parent-id": "5",
            "baggage": "user.id=al%20ice,session.id=s1,account.id=a,other=x",
        });
        let ctx = extract(h.clone()).unwrap();
        let tags: Vec<_> = ctx
            .span_tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("baggage.account.id", "a"),
                ("baggage.session.id", "s1"),
                ("baggage.user.id", "al ice")
            ]
        );
        let all = Propagator::default()
            .with_baggage_tag_keys(BaggageTagKeys::parse(" other, ,*"))
            .extract_value(&h)
            .unwrap();
        assert_eq!(all.span_tags.len(), 4);
        let none = Propagator::default()
            .with_baggage_tag_keys(BaggageTagKeys::parse(""))
            .extract_value(&h)
            .unwrap();
        assert!(none.span_tags.is_empty());
        // Baggage style off: ignored.
        assert!(extract_with("datadog", h).unwrap().span_tags.is_empty());
        // Baggage alone parents nothing.
        assert!(extract(json!({"baggage": "user.id=1"})).is_none());
    }

    #[test]
    fn extract_first_reads_only_the_first_style() {
        let h = json!({
            "x-datadog-trace-id": "123", "x-datadog-parent-id": "321", "traceparent": TP_7B,
            "baggage": "user.id=u",
        });
        let first = Propagator::default().with_extract_first(true);
        let ctx = first.extract_value(&h).unwrap();
        assert_eq!((ctx.parent_id, ctx.span_tags.len()), (321, 1));
        assert!(!ctx.span_tags.contains_key(LAST_PARENT_TAG));
        // The first style finds nothing: nothing, even if a later one would.
        let b3_first = Propagator::parse("b3,datadog").with_extract_first(true);
        assert!(b3_first.extract_value(&h).is_none());
        let baggage_first = Propagator::parse("baggage,datadog").with_extract_first(true);
        assert!(baggage_first.extract_value(&h).is_none());
    }

    #[test]
    fn styles_from_configuration() {
        use Style::*;
        assert_eq!(Propagator::parse("").styles(), []);
        assert_eq!(Propagator::parse("none").styles(), []);
        assert_eq!(Propagator::parse("none,datadog").styles(), [Datadog]);
        assert_eq!(
            Propagator::parse(" TraceContext, datadog,B3 ,b3multi,datadog,baggage").styles(),
            [TraceContext, Datadog, B3Single, B3Multi, Baggage]
        );
        // ddtrace 4.x: the legacy name and other separators are unknown.
        assert_eq!(Propagator::parse("b3 single header").styles(), []);
        assert_eq!(Propagator::parse("datadog;tracecontext").styles(), []);
        assert!(
            Propagator::parse("")
                .extract_value(&json!({"x-datadog-trace-id": "1", "x-datadog-parent-id": "2"}))
                .is_none()
        );

        let env = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Propagator::from_lookup(move |name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
        };
        assert_eq!(env(&[]), Propagator::default());
        assert_eq!(
            env(&[("DD_TRACE_PROPAGATION_STYLE", "b3")]).styles(),
            [B3Single]
        );
        assert_eq!(
            env(&[
                ("DD_TRACE_PROPAGATION_STYLE", "b3"),
                ("DD_TRACE_PROPAGATION_STYLE_EXTRACT", "")
            ])
            .styles(),
            []
        );
        assert_eq!(
            env(&[("OTEL_PROPAGATORS", "b3multi,baggage,xray")]).styles(),
            [B3Multi]
        );
        assert_eq!(env(&[("OTEL_PROPAGATORS", "xray")]), Propagator::default());
        assert_eq!(
            env(&[
                ("OTEL_PROPAGATORS", "b3"),
                ("DD_TRACE_PROPAGATION_STYLE", "datadog")
            ])
            .styles(),
            [Datadog]
        );
        for behavior in ["ignore", "Restart"] {
            assert_eq!(
                env(&[("DD_TRACE_PROPAGATION_BEHAVIOR_EXTRACT", behavior)]).styles(),
                []
            );
        }
        assert_eq!(
            env(&[("DD_TRACE_PROPAGATION_BEHAVIOR_EXTRACT", "continue")]),
            Propagator::default()
        );
        assert!(env(&[("DD_TRACE_PROPAGATION_EXTRACT_FIRST", "TRUE")]).extract_first);
        assert!(!env(&[("DD_TRACE_PROPAGATION_EXTRACT_FIRST", "yes")]).extract_first);
        assert_eq!(
            env(&[("DD_TRACE_BAGGAGE_TAG_KEYS", " a, b ")]).baggage_tag_keys,
            BaggageTagKeys::Keys(vec!["a".into(), "b".into()])
        );
    }
}
