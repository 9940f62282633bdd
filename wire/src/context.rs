//! The propagated trace context: what an extractor finds in an event and what `aws.lambda`
//! continues.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A distributed trace context as Datadog propagates it.
///
/// The 128-bit trace id is split the way Datadog's tracers split it: `trace_id` holds the low
/// 64 bits (the `x-datadog-trace-id` value, the span's `trace_id` field) and `trace_id_high`
/// the high 64 bits (the `_dd.p.tid` propagation tag), absent for 64-bit traces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanContext {
    /// Low 64 bits of the trace id; never 0 in a valid context.
    pub trace_id: u64,
    /// High 64 bits of a 128-bit trace id (`_dd.p.tid`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id_high: Option<u64>,
    /// The span id of the parent; never 0 in a valid context.
    pub parent_id: u64,
    /// `-1` user reject, `0` auto reject, `1` auto keep, `2` user keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_priority: Option<i32>,
    /// `_dd.origin` (e.g. `lambda`, `synthetics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Propagation tags (`_dd.p.*`) other than `_dd.p.tid`, which lives in `trace_id_high`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub propagation_tags: BTreeMap<String, String>,
    /// Tags the extraction leaves for the first span of the local trace that are not
    /// propagated further, as ddtrace's extracted context meta: `_dd.parent_id` (the last
    /// Datadog span before a W3C-only hop), `_dd.propagation_error` (unusable
    /// `x-datadog-tags`) and `baggage.*` (`DD_TRACE_BAGGAGE_TAG_KEYS`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub span_tags: BTreeMap<String, String>,
}

impl SpanContext {
    /// A context with the given ids and nothing else.
    pub fn new(trace_id: u64, parent_id: u64) -> Self {
        Self {
            trace_id,
            parent_id,
            ..Self::default()
        }
    }

    /// Both ids are present: the context can parent a span.
    pub fn is_valid(&self) -> bool {
        self.trace_id != 0 && self.parent_id != 0
    }

    /// The high 64 bits as the 16 lowercase hex digits of `_dd.p.tid`.
    pub fn trace_id_high_hex(&self) -> Option<String> {
        self.trace_id_high.map(|h| format!("{h:016x}"))
    }
}
