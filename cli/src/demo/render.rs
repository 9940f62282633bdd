//! The terminal rendering of a [`Report`]: the waterfall of the pipeline's trace and the
//! pathway map.

use std::fmt::Write as _;

use super::report::{Edge, Report, SpanRow, Trace};

/// Width of the waterfall's bar column.
const BAR: usize = 40;

/// Everything the demo prints after the run.
pub fn render(r: &Report, all_spans: bool) -> String {
    let mut out = String::new();
    match r.traces.first() {
        Some(t) => waterfall(&mut out, t, all_spans),
        None => out.push_str("No spans were flushed.\n"),
    }
    if r.traces.len() > 1 {
        let _ = writeln!(
            out,
            "  (and {} other trace(s), in the JSON file)",
            r.traces.len() - 1
        );
    }
    out.push('\n');
    pathway(&mut out, &r.pathway);
    if !r.bad_lines.is_empty() {
        let _ = writeln!(
            out,
            "\n{} extension output line(s) did not decode:",
            r.bad_lines.len()
        );
        for l in &r.bad_lines {
            let _ = writeln!(out, "  {l}");
        }
    }
    out
}

fn waterfall(out: &mut String, t: &Trace, all_spans: bool) {
    let _ = writeln!(
        out,
        "Trace {} ({} spans, {:.1} ms)",
        trace_id(t),
        t.spans.len(),
        ms(t.duration_ns)
    );
    let shown: Vec<&SpanRow> = t
        .spans
        .iter()
        .filter(|s| all_spans || !s.sdk_internal)
        .collect();
    let labels: Vec<String> = shown
        .iter()
        .map(|s| {
            format!(
                "{}{} {} {}",
                "  ".repeat(s.depth),
                s.service,
                s.name,
                if s.resource == s.name || s.resource.is_empty() {
                    String::new()
                } else {
                    s.resource.clone()
                }
            )
            .trim_end()
            .to_owned()
        })
        .collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let span = t.duration_ns.max(1) as f64;
    for (s, label) in shown.iter().zip(&labels) {
        let from = ((s.start_ns - t.start_ns) as f64 / span * BAR as f64).floor() as usize;
        let len = ((s.duration_ns as f64 / span) * BAR as f64)
            .round()
            .max(1.0) as usize;
        let from = from.min(BAR - 1);
        let len = len.min(BAR - from);
        let bar = format!(
            "{}{}{}",
            " ".repeat(from),
            if s.error { "!" } else { "█" }.repeat(len),
            " ".repeat(BAR - from - len)
        );
        let _ = writeln!(
            out,
            "  {label:<width$}  │{bar}│ {:>9.2} ms",
            ms(s.duration_ns)
        );
    }
    let hidden = t.spans.len() - shown.len();
    if hidden > 0 {
        let _ = writeln!(
            out,
            "  ({hidden} spans of the AWS SDK's own steps folded away; --all-spans shows them)"
        );
    }
}

fn trace_id(t: &Trace) -> String {
    match &t.trace_id_high {
        Some(high) => format!("{high}{:016x}", t.trace_id),
        None => t.trace_id.to_string(),
    }
}

fn pathway(out: &mut String, edges: &[Edge]) {
    if edges.is_empty() {
        out.push_str("No data-streams checkpoints were flushed.\n");
        return;
    }
    let _ = writeln!(out, "Pathway map ({} edges)", edges.len());
    let labels: Vec<String> = edges
        .iter()
        .map(|e| {
            let arrow = if e.depth == 0 { "" } else { "└▶ " };
            format!(
                "{}{arrow}{}({}:{} {})",
                "   ".repeat(e.depth.saturating_sub(1)),
                e.service,
                e.tag("type").unwrap_or("?"),
                e.tag("topic").map_or("?", short_topic),
                e.tag("direction").unwrap_or("?"),
            )
        })
        .collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>5}  {:>21}  {:>21}",
        "", "n", "edge p50 / p99 ms", "origin p50 / p99 ms"
    );
    for (e, label) in edges.iter().zip(&labels) {
        let _ = writeln!(
            out,
            "  {label:<width$}  {:>5}  {:>9.2} / {:>9.2}  {:>9.2} / {:>9.2}",
            e.count,
            e.edge_latency_ms.p50,
            e.edge_latency_ms.p99,
            e.pathway_latency_ms.p50,
            e.pathway_latency_ms.p99,
        );
    }
}

/// The resource name of an ARN topic (`…:queue`, `…:stream/name`); the JSON keeps it whole.
fn short_topic(topic: &str) -> &str {
    if topic.starts_with("arn:") {
        topic.rsplit([':', '/']).next().unwrap_or(topic)
    } else {
        topic
    }
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}
