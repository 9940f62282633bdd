//! The `datadog` style: `x-datadog-trace-id`, `-parent-id`, `-sampling-priority`, `-origin` and
//! `-tags`.

use ddlambda_wire::SpanContext;

use super::headers::{HeaderSet, at};
use super::python::{py_int, py_priority};
use super::{PROPAGATION_ERROR_TAG, Read};

/// The tag carrying the high 64 bits of a 128-bit trace id.
const TID_TAG: &str = "_dd.p.tid";
/// ddtrace refuses `x-datadog-tags` longer than this (`DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH`).
const MAX_TAGS_LEN: usize = 512;

/// The Datadog context; `None` without a valid trace id, or when a present parent id or
/// priority does not parse (ddtrace's `ValueError`).
pub(super) fn extract_datadog(headers: &HeaderSet<'_>) -> Read<Option<SpanContext>> {
    let Some(trace_id_str) = headers.read(at::TRACE_ID)? else {
        return Ok(None);
    };
    // Zero, negative or larger than 64 bits: ddtrace rejects it.
    let trace_id: u64 = match py_int(trace_id_str).map(u64::try_from) {
        Some(Ok(id)) if id > 0 => id,
        _ => {
            tracing::debug!(trace_id = trace_id_str, "invalid x-datadog-trace-id");
            return Ok(None);
        }
    };
    let parent = headers.read(at::PARENT_ID)?;
    let priority = headers.read(at::SAMPLING_PRIORITY)?;
    let origin = headers.read(at::ORIGIN)?;
    let tags = headers.read(at::TAGS)?;
    // A parent id or priority that does not parse invalidates the whole Datadog context. A
    // negative parent id counts as absent, as in ddtrace's context, and so does one wider than
    // 64 bits (deliberate difference 2).
    let parent_id = match parent {
        None => 0,
        Some(s) => match py_int(s) {
            Some(id) => u64::try_from(id).unwrap_or(0),
            None => {
                tracing::debug!(parent_id = s, "invalid x-datadog-parent-id");
                return Ok(None);
            }
        },
    };
    let sampling_priority = match priority {
        None => None,
        Some(s) => match py_priority(s) {
            Some(p) => Some(p),
            None => {
                tracing::debug!(priority = s, "invalid x-datadog-sampling-priority");
                return Ok(None);
            }
        },
    };
    let mut ctx = SpanContext {
        trace_id,
        parent_id,
        sampling_priority,
        origin: origin.map(str::to_owned),
        ..SpanContext::default()
    };
    if let Some(tags) = tags {
        apply_datadog_tags(&mut ctx, tags);
    }
    Ok(Some(ctx))
}

/// Reads `x-datadog-tags` as ddtrace does: the whole list is decoded first (an oversized or
/// malformed list is dropped whole), then its `_dd.p.*` keys are kept. A malformed `_dd.p.tid`
/// or an unknown `_dd.p.dm` is dropped alone. Each failure leaves `_dd.propagation_error` for the
/// span, as ddtrace's context meta does.
fn apply_datadog_tags(ctx: &mut SpanContext, tags: &str) {
    if tags.is_empty() {
        return;
    }
    // ddtrace counts characters; only a long list needs counting.
    if tags.len() > MAX_TAGS_LEN && tags.chars().count() > MAX_TAGS_LEN {
        tracing::debug!(len = tags.len(), "x-datadog-tags too long; ignored");
        set_propagation_error(ctx, "extract_max_size");
        return;
    }
    if decode_tagset(tags, |_, _| {}).is_none() {
        tracing::debug!(tags, "malformed x-datadog-tags; ignored");
        set_propagation_error(ctx, "decoding_error");
        return;
    }
    let mut tid = None;
    decode_tagset(tags, |key, value| {
        if key == TID_TAG {
            tid = Some(value);
        } else if key.starts_with("_dd.p.") && key != "_dd.p.upstream_services" {
            ctx.propagation_tags
                .insert(key.to_owned(), value.to_owned());
        }
    });
    if let Some(value) = tid {
        match parse_tid(value) {
            Some(high) => ctx.trace_id_high = Some(high),
            None => {
                tracing::debug!(tid = value, "malformed _dd.p.tid; ignored");
                set_propagation_error(ctx, &format!("malformed_tid {value}"));
            }
        }
    }
    // ddtrace's `validate_sampling_decision`: `-0` … `-255` only.
    if let Some(dm) = ctx.propagation_tags.get(DECISION_MAKER_TAG)
        && !is_sampling_decision(dm)
    {
        tracing::debug!(dm, "invalid _dd.p.dm; ignored");
        ctx.propagation_tags.remove(DECISION_MAKER_TAG);
        set_propagation_error(ctx, "decoding_error");
    }
}

/// The propagation tag naming the sampling decision maker.
const DECISION_MAKER_TAG: &str = "_dd.p.dm";

fn set_propagation_error(ctx: &mut SpanContext, error: &str) {
    ctx.span_tags
        .insert(PROPAGATION_ERROR_TAG.to_owned(), error.to_owned());
}

/// `-` and a decimal 0 to 255 without leading zeros, as ddtrace's `VALID_SAMPLING_DECISIONS`.
fn is_sampling_decision(value: &str) -> bool {
    value.strip_prefix('-').is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 3
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'))
            && n.parse::<u16>().is_ok_and(|v| v <= 255)
    })
}

/// ddtrace's tagset grammar (`_tagset.decode_tagset_string`): `key=value` pairs separated by `,`;
/// keys are printable ASCII without space, `,` or `=`; values printable ASCII without `,`,
/// stripped of spaces and not empty. Calls `pair` for each pair in order (a repeated key's last
/// value wins, as in ddtrace's dict); `None` when the list is malformed.
fn decode_tagset<'t>(tagset: &'t str, mut pair: impl FnMut(&'t str, &'t str)) -> Option<()> {
    let b = tagset.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let key_start = i;
        while i < b.len() && b[i] != b'=' {
            if !matches!(b[i], 33..=43 | 45..=60 | 62..=126) {
                return None;
            }
            i += 1;
        }
        if i == key_start {
            return None;
        }
        // EOF right after a key: "Expected value for key".
        if i == b.len() {
            return None;
        }
        let key = &tagset[key_start..i];
        i += 1;
        let value_start = i;
        while i < b.len() && b[i] != b',' {
            if !matches!(b[i], 32..=43 | 45..=126) {
                return None;
            }
            i += 1;
        }
        let value = tagset[value_start..i].trim_matches(' ');
        if value.is_empty() {
            return None;
        }
        pair(key, value);
        // Past the `,` (a trailing one ends the list).
        i += 1;
    }
    Some(())
}

/// `_dd.p.tid`: exactly 16 lowercase hex digits, not all zero.
pub(crate) fn parse_tid(value: &str) -> Option<u64> {
    if value.len() != 16 || !is_lower_hex(value) {
        return None;
    }
    u64::from_str_radix(value, 16).ok().filter(|&v| v != 0)
}

pub(super) fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
