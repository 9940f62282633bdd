//! Span links: the other producers of a batch, so no producer's trace is orphaned.

use ddlambda_wire::{SpanContext, SpanLink};

/// Set in `flags` when the sampling decision is known (W3C's "flags are set" marker, as
/// Datadog's tracers encode span links).
const FLAGS_SET: u32 = 1 << 31;

/// A link to `context` (its parent id is the producer's span).
pub fn link_to(context: &SpanContext) -> SpanLink {
    let flags = match context.sampling_priority {
        Some(p) if p > 0 => FLAGS_SET | 1,
        Some(_) => FLAGS_SET,
        None => 0,
    };
    SpanLink {
        trace_id: context.trace_id,
        trace_id_high: context.trace_id_high.unwrap_or(0),
        span_id: context.parent_id,
        flags,
        ..SpanLink::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_carries_ids_and_sampling() {
        let mut ctx = SpanContext::new(7, 9);
        ctx.trace_id_high = Some(0x66bc_b5eb_0000_0000);
        ctx.sampling_priority = Some(1);
        let link = link_to(&ctx);
        assert_eq!((link.trace_id, link.span_id), (7, 9));
        assert_eq!(link.trace_id_high, 0x66bc_b5eb_0000_0000);
        assert_eq!(link.flags, FLAGS_SET | 1);
        ctx.sampling_priority = Some(-1);
        assert_eq!(link_to(&ctx).flags, FLAGS_SET);
    }
}
