//! The `tracecontext` style: W3C `traceparent`, and `tracestate`'s `dd=` member.

use ddlambda_wire::SpanContext;

use super::datadog::is_lower_hex;
use super::headers::{HeaderSet, at};
use super::python::{py_priority, py_strip};
use super::{LAST_PARENT_TAG, Read, context_for};

/// The trace and parent ids of a valid `traceparent`, `None` when absent or invalid.
pub(super) fn traceparent_ids(headers: &HeaderSet<'_>) -> Read<Option<(u128, u64)>> {
    let Some(traceparent) = headers.read(at::TRACEPARENT)? else {
        return Ok(None);
    };
    Ok(parse_traceparent(traceparent.trim()).map(|(trace_id, parent_id, _)| (trace_id, parent_id)))
}

pub(super) fn extract_tracecontext(headers: &HeaderSet<'_>) -> Read<Option<SpanContext>> {
    let Some(traceparent) = headers.read(at::TRACEPARENT)? else {
        return Ok(None);
    };
    let traceparent = traceparent.trim();
    let Some((trace_id, parent_id, sampled)) = parse_traceparent(traceparent) else {
        tracing::debug!(traceparent, "invalid traceparent");
        return Ok(None);
    };
    let mut ctx = context_for(trace_id, parent_id, Some(i32::from(sampled)));
    if let Some(tracestate) = headers.read(at::TRACESTATE)? {
        apply_tracestate(&mut ctx, sampled, tracestate);
    }
    Ok(Some(ctx))
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

/// The valid `dd=` member of a `tracestate`, its keys resolved as ddtrace's dict resolves
/// them (the last of a repeated key wins).
struct DdMember<'a> {
    /// The member without `dd=`: `;`-separated `key:value` items.
    items: &'a str,
    priority: Option<i32>,
    origin: Option<&'a str>,
    last_parent: Option<&'a str>,
}

/// The last `dd=` member of a printable `tracestate`, if every item is `key:value` and `s:`
/// (when present) is an integer; ddtrace ignores the member otherwise.
fn dd_member(tracestate: &str) -> Option<DdMember<'_>> {
    let members = || tracestate.split(',').map(py_strip);
    if members().any(|m| m.bytes().any(|b| !(0x20..=0x7e).contains(&b))) {
        tracing::debug!(
            tracestate,
            "tracestate has non-printable characters; ignored"
        );
        return None;
    }
    let items = members().rev().find_map(|m| m.strip_prefix("dd="))?;
    let (mut priority, mut origin, mut last_parent) = (None, None, None);
    for item in items.split(';') {
        let Some((key, value)) = item.split_once(':') else {
            tracing::debug!(tracestate, "malformed dd tracestate member; ignored");
            return None;
        };
        match key {
            "s" => priority = Some(value),
            "o" => origin = Some(value),
            "p" => last_parent = Some(value),
            _ => {}
        }
    }
    let priority = match priority {
        None => None,
        Some(s) => match py_priority(s) {
            Some(p) => Some(p),
            None => {
                tracing::debug!(tracestate, "invalid s: in tracestate; ignored");
                return None;
            }
        },
    };
    Some(DdMember {
        items,
        priority,
        origin,
        last_parent,
    })
}

/// tracestate's `p:`, the last Datadog span before the W3C-only hops (empty counts as absent).
pub(super) fn last_datadog_parent(tracestate: &str) -> Option<&str> {
    dd_member(tracestate)?.last_parent.filter(|p| !p.is_empty())
}

/// The `dd=` member of `tracestate`: `s:` priority (reconciled with the sampled flag), `o:`
/// origin, `p:` last Datadog parent, `t.<k>:` propagation tags.
fn apply_tracestate(ctx: &mut SpanContext, sampled: bool, tracestate: &str) {
    let Some(dd) = dd_member(tracestate) else {
        return;
    };
    let origin = dd
        .origin
        .filter(|o| !o.is_empty())
        .map(|o| o.replace('~', "="));
    ctx.sampling_priority = reconcile_priority(sampled, dd.priority, origin.as_deref());
    ctx.origin = origin;
    if let Some(p) = dd.last_parent.filter(|p| !p.is_empty()) {
        ctx.span_tags
            .insert(LAST_PARENT_TAG.to_owned(), p.to_owned());
    }
    for (key, value) in dd.items.split(';').filter_map(|i| i.split_once(':')) {
        if let Some(tag) = key.strip_prefix("t.")
            && tag != "tid"
        {
            ctx.propagation_tags
                .insert(format!("_dd.p.{tag}"), value.replace('~', "="));
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
