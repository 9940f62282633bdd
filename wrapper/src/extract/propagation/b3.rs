//! The `b3multi` (`x-b3-*`) and `b3` (single header) styles.

use ddlambda_wire::SpanContext;

use super::headers::{HeaderSet, at};
use super::python::{HexId, py_int_hex};
use super::{Read, context_for};

/// The B3 ids as ddtrace keeps them; `None` when `int(…, 16)` raised (no B3 context at all).
fn b3_ids(trace: Option<&str>, span: Option<&str>) -> Option<(u128, u64)> {
    let trace_id = match trace.map(py_int_hex) {
        Some(HexId::Invalid) => return None,
        Some(HexId::Id(id)) => id,
        _ => 0,
    };
    let parent_id = match span.map(py_int_hex) {
        Some(HexId::Invalid) => return None,
        // Deliberate difference 2: a span id wider than 64 bits counts as absent.
        Some(HexId::Id(id)) => u64::try_from(id).unwrap_or(0),
        _ => 0,
    };
    Some((trace_id, parent_id))
}

/// `x-b3-traceid` (16 or 32 hex), `x-b3-spanid`; `x-b3-sampled` `0` / `1` → priority 0 / 1,
/// `x-b3-flags: 1` (debug) → 2. Only the trace id header is required for a context.
pub(super) fn extract_b3_multi(headers: &HeaderSet<'_>) -> Read<Option<SpanContext>> {
    let Some(trace) = headers.read(at::B3_TRACE_ID)? else {
        return Ok(None);
    };
    let span = headers.read(at::B3_SPAN_ID)?;
    let sampled = headers.read(at::B3_SAMPLED)?;
    let flags = headers.read(at::B3_FLAGS)?;
    let Some((trace_id, parent_id)) = b3_ids(Some(trace), span) else {
        tracing::debug!(trace, span, "invalid x-b3-* ids");
        return Ok(None);
    };
    let mut priority = match sampled {
        Some("0") => Some(0),
        Some("1") => Some(1),
        _ => None,
    };
    if flags == Some("1") {
        priority = Some(2);
    }
    Ok(Some(context_for(trace_id, parent_id, priority)))
}

/// `b3: {traceid}-{spanid}[-{sampled}[-{parentspanid}]]`, or `b3: {sampled}` alone; sampled `0`
/// / `1` / `d` → priority 0 / 1 / 2. The parent span id is ignored.
pub(super) fn extract_b3_single(headers: &HeaderSet<'_>) -> Read<Option<SpanContext>> {
    let header = match headers.read(at::B3)? {
        Some(h) if !h.is_empty() => h,
        _ => return Ok(None),
    };
    let mut parts = header.split('-');
    let (trace, span, sampled) = match (parts.next(), parts.next(), parts.next()) {
        (sampled, None, _) => (None, None, sampled),
        (trace, span, sampled) => (trace, span, sampled),
    };
    let Some((trace_id, parent_id)) = b3_ids(trace, span) else {
        tracing::debug!(b3 = header, "invalid b3 header");
        return Ok(None);
    };
    let priority = match sampled {
        Some("0") => Some(0),
        Some("1") => Some(1),
        Some("d") => Some(2),
        _ => None,
    };
    Ok(Some(context_for(trace_id, parent_id, priority)))
}
