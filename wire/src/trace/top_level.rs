//! Which spans are "top level": those that start a service's part of a trace. The backend
//! counts APM hits and errors on them, so a tracer marks them (`_dd.top_level: 1`) — or, when
//! it does not say it did (no `Datadog-Client-Computed-Top-Level` header: dd-trace for Node,
//! our wrapper), the agent computes them on arrival, as here.

use std::collections::HashMap;

use crate::Span;

/// The metric tracers set on top-level spans.
pub const TOP_LEVEL_KEY: &str = "_dd.top_level";

/// The meta tag telling the backend whether to compute APM stats from a trace's spans: `"1"`
/// unless someone else (the tracer, `Datadog-Client-Computed-Stats`) already counts them.
pub const COMPUTE_STATS_KEY: &str = "_dd.compute_stats";

/// Marks every span of `trace` whose parent is not in the trace or belongs to another service
/// with `_dd.top_level: 1` (the agent's `traceutil.ComputeTopLevel`). Marks already there are
/// kept: a tracer that set one knew its parent.
pub fn mark_top_level(trace: &mut [Span]) {
    let services: HashMap<u64, &str> = trace
        .iter()
        .map(|s| (s.span_id, s.service.as_str()))
        .collect();
    let top: Vec<bool> = trace
        .iter()
        .map(|s| {
            s.parent_id == 0
                || services
                    .get(&s.parent_id)
                    .is_none_or(|parent| *parent != s.service)
        })
        .collect();
    for (span, top) in trace.iter_mut().zip(top) {
        if top {
            span.metrics.insert(TOP_LEVEL_KEY.to_owned(), 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u64, parent: u64, service: &str) -> Span {
        Span {
            span_id: id,
            parent_id: parent,
            service: service.into(),
            ..Span::default()
        }
    }

    #[test]
    fn roots_service_changes_and_orphans_are_top_level() {
        let mut trace = vec![
            span(1, 0, "web"),
            span(2, 1, "web"),
            span(3, 1, "db"),
            span(4, 99, "web"), // parent flushed in an earlier payload
        ];
        trace[1].metrics.insert("x".into(), 2.0);
        mark_top_level(&mut trace);
        let top: Vec<bool> = trace
            .iter()
            .map(|s| s.metrics.get(TOP_LEVEL_KEY) == Some(&1.0))
            .collect();
        assert_eq!(top, [true, false, true, true]);
        assert_eq!(trace[1].metrics["x"], 2.0);
    }
}
