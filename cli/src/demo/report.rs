//! What the demo found, as one serializable value: the `--json` file, and what the terminal
//! rendering reads. Spans are grouped into traces and ordered as a tree; pathway points are
//! merged per edge and ordered from the origin.

use std::collections::{BTreeMap, HashMap, HashSet};

use ddlambda_wire::Span;
use serde::Serialize;

use super::collect::{Collected, ServicePoint, Summary};

#[derive(Debug, Serialize)]
pub struct Report {
    /// `embedded` or the `--aws-endpoint` URL.
    pub aws: String,
    pub queue_arn: String,
    pub stream_arn: String,
    pub messages: usize,
    pub invocations: Vec<Invocation>,
    pub traces: Vec<Trace>,
    pub pathway: Vec<Edge>,
    /// Sink lines that did not decode.
    pub bad_lines: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Invocation {
    pub function: String,
    pub request_id: String,
    pub status: String,
    pub cold_start: bool,
    pub duration_ms: f64,
    /// Records (or, for the producer, messages asked for) in its event.
    pub records: usize,
}

#[derive(Debug, Serialize)]
pub struct Trace {
    pub trace_id: u64,
    /// `_dd.p.tid`: the upper 64 bits of a 128-bit trace id, as hex.
    pub trace_id_high: Option<String>,
    /// Earliest start, unix ns.
    pub start_ns: i64,
    pub duration_ns: i64,
    /// Depth-first, children by start time.
    pub spans: Vec<SpanRow>,
}

#[derive(Debug, Serialize)]
pub struct SpanRow {
    pub depth: usize,
    pub span_id: u64,
    pub parent_id: u64,
    pub service: String,
    pub name: String,
    pub resource: String,
    pub start_ns: i64,
    pub duration_ns: i64,
    pub error: bool,
    /// The invocation's request id, on `aws.lambda` spans.
    pub request_id: Option<String>,
    /// Inside an AWS SDK operation span (`rpc.system:aws-api`): the SDK's own steps, which the
    /// waterfall folds away unless asked.
    pub sdk_internal: bool,
}

/// One pathway edge: the checkpoints of one (service, edge tags, hash, parent hash).
#[derive(Debug, Serialize)]
pub struct Edge {
    /// Distance from the origin (0 for a pathway's first checkpoint).
    pub depth: usize,
    pub service: String,
    pub env: String,
    pub edge_tags: Vec<String>,
    pub hash: u64,
    pub parent_hash: u64,
    /// Checkpoints set on this edge.
    pub count: f64,
    /// Milliseconds since the previous checkpoint of the pathway.
    pub edge_latency_ms: Quantiles,
    /// Milliseconds since the pathway's origin.
    pub pathway_latency_ms: Quantiles,
    pub payload_bytes: Quantiles,
    /// Buckets (or flushes) the edge's points came from; above 1 the quantiles are a
    /// count-weighted mean of each bucket's (the local sink prints quantiles, not bins).
    pub buckets: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Trace {
    /// Groups spans by trace id, biggest trace first.
    pub fn group(spans: &[Span]) -> Vec<Trace> {
        let mut by_id: BTreeMap<u64, Vec<&Span>> = BTreeMap::new();
        for s in spans {
            by_id.entry(s.trace_id).or_default().push(s);
        }
        let mut traces: Vec<Trace> = by_id
            .into_iter()
            .map(|(id, s)| Trace::new(id, &s))
            .collect();
        traces.sort_by_key(|t| (std::cmp::Reverse(t.spans.len()), t.start_ns));
        traces
    }

    fn new(trace_id: u64, spans: &[&Span]) -> Self {
        let ids: HashSet<u64> = spans.iter().map(|s| s.span_id).collect();
        let mut children: HashMap<u64, Vec<&Span>> = HashMap::new();
        let mut roots = Vec::new();
        for s in spans {
            if s.parent_id != 0 && ids.contains(&s.parent_id) && s.parent_id != s.span_id {
                children.entry(s.parent_id).or_default().push(s);
            } else {
                roots.push(*s);
            }
        }
        let by_start = |v: &mut Vec<&Span>| v.sort_by_key(|s| (s.start, s.span_id));
        by_start(&mut roots);
        children.values_mut().for_each(by_start);
        let mut rows = Vec::with_capacity(spans.len());
        let mut stack: Vec<(&Span, usize, bool)> =
            roots.iter().rev().map(|s| (*s, 0, false)).collect();
        while let Some((s, depth, internal)) = stack.pop() {
            let mut row = SpanRow::new(s, depth);
            row.sdk_internal = internal;
            rows.push(row);
            let kids_internal =
                internal || s.meta.get("rpc.system").is_some_and(|v| v == "aws-api");
            if let Some(kids) = children.get(&s.span_id) {
                stack.extend(kids.iter().rev().map(|k| (*k, depth + 1, kids_internal)));
            }
        }
        let start_ns = spans.iter().map(|s| s.start).min().unwrap_or(0);
        let end_ns = spans
            .iter()
            .map(|s| s.start.saturating_add(s.duration))
            .max()
            .unwrap_or(0);
        Trace {
            trace_id,
            trace_id_high: spans.iter().find_map(|s| s.meta.get("_dd.p.tid").cloned()),
            start_ns,
            duration_ns: end_ns - start_ns,
            spans: rows,
        }
    }
}

impl SpanRow {
    fn new(s: &Span, depth: usize) -> Self {
        SpanRow {
            depth,
            span_id: s.span_id,
            parent_id: s.parent_id,
            service: s.service.clone(),
            name: s.name.clone(),
            resource: s.resource.clone(),
            start_ns: s.start,
            duration_ns: s.duration,
            error: s.error != 0,
            request_id: s.meta.get("request_id").cloned(),
            sdk_internal: false,
        }
    }
}

impl Edge {
    /// Merges points per edge and orders them from the origin, depth-first.
    pub fn merge(points: &[ServicePoint]) -> Vec<Edge> {
        type Key = (String, String, Vec<String>, u64, u64);
        let mut merged: BTreeMap<Key, Vec<&ServicePoint>> = BTreeMap::new();
        for p in points {
            let key = (
                p.service.clone(),
                p.env.clone(),
                p.point.edge_tags.clone(),
                p.point.hash,
                p.point.parent_hash,
            );
            merged.entry(key).or_default().push(p);
        }
        let mut edges: Vec<Edge> = merged
            .into_iter()
            .map(|((service, env, edge_tags, hash, parent_hash), ps)| {
                let count = ps.iter().map(|p| p.point.edge_latency.count).sum();
                let q = |f: fn(&ServicePoint) -> Summary, scale: f64| {
                    weighted(ps.iter().map(|p| f(p)), scale)
                };
                Edge {
                    depth: 0,
                    service,
                    env,
                    edge_tags,
                    hash,
                    parent_hash,
                    count,
                    edge_latency_ms: q(|p| p.point.edge_latency, 1e3),
                    pathway_latency_ms: q(|p| p.point.pathway_latency, 1e3),
                    payload_bytes: q(|p| p.point.payload_size, 1.0),
                    buckets: ps.len(),
                }
            })
            .collect();
        order_from_origin(&mut edges);
        edges
    }

    /// `key:value` of the edge tag named `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.edge_tags
            .iter()
            .find_map(|t| t.strip_prefix(key)?.strip_prefix(':'))
    }
}

/// Count-weighted quantiles of several summaries, times `scale`.
fn weighted(summaries: impl Iterator<Item = Summary>, scale: f64) -> Quantiles {
    let (mut n, mut p50, mut p99, mut max) = (0.0, 0.0, 0.0, 0.0f64);
    for s in summaries {
        n += s.count;
        p50 += s.p50 * s.count;
        p99 += s.p99 * s.count;
        max = max.max(s.max);
    }
    if n == 0.0 {
        return Quantiles::default();
    }
    Quantiles {
        p50: p50 / n * scale,
        p99: p99 / n * scale,
        max: max * scale,
    }
}

/// Depth-first from the edges whose parent is no edge's hash (the origins).
fn order_from_origin(edges: &mut Vec<Edge>) {
    let hashes: HashSet<u64> = edges.iter().map(|e| e.hash).collect();
    let mut pending: Vec<Edge> = std::mem::take(edges);
    let (mut stack, rest): (Vec<Edge>, Vec<Edge>) = pending
        .drain(..)
        .partition(|e| !hashes.contains(&e.parent_hash) || e.parent_hash == e.hash);
    let mut rest = rest;
    stack.reverse();
    while let Some(mut e) = stack.pop() {
        let depth = e.depth;
        let hash = e.hash;
        let (kids, others): (Vec<Edge>, Vec<Edge>) =
            rest.into_iter().partition(|k| k.parent_hash == hash);
        rest = others;
        e.depth = depth;
        edges.push(e);
        for mut k in kids.into_iter().rev() {
            k.depth = depth + 1;
            stack.push(k);
        }
    }
    // Cycles (impossible with real hashes) still appear, at the end.
    edges.extend(rest);
}

impl Report {
    /// Builds the report from what the extensions flushed.
    pub fn build(
        aws: String,
        resources: (&str, &str),
        messages: usize,
        invocations: Vec<Invocation>,
        collected: Collected,
    ) -> Self {
        Report {
            aws,
            queue_arn: resources.0.to_owned(),
            stream_arn: resources.1.to_owned(),
            messages,
            invocations,
            traces: Trace::group(&collected.spans),
            pathway: Edge::merge(&collected.points),
            bad_lines: collected.bad_lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::collect::Point;

    fn point(service: &str, hash: u64, parent: u64, n: f64, edge_ms: f64) -> ServicePoint {
        let s = |v: f64| Summary {
            count: n,
            p50: v,
            p99: v,
            max: v,
        };
        ServicePoint {
            service: service.to_owned(),
            env: "demo".to_owned(),
            point: Point {
                edge_tags: vec!["direction:in".to_owned(), "type:sqs".to_owned()],
                hash,
                parent_hash: parent,
                pathway_latency: s(edge_ms / 1e3),
                edge_latency: s(edge_ms / 1e3),
                payload_size: s(10.0),
            },
        }
    }

    #[test]
    fn edges_merge_across_buckets_and_order_from_the_origin() {
        // Given out of order, the second hop split over two buckets.
        let points = [
            point("c", 3, 2, 1.0, 9.0),
            point("b", 2, 1, 3.0, 2.0),
            point("a", 1, 0, 4.0, 0.0),
            point("b", 2, 1, 1.0, 6.0),
        ];
        let edges = Edge::merge(&points);
        let order: Vec<(&str, usize)> = edges.iter().map(|e| (&*e.service, e.depth)).collect();
        assert_eq!(order, [("a", 0), ("b", 1), ("c", 2)]);
        let b = &edges[1];
        assert_eq!(b.count, 4.0);
        assert_eq!(b.buckets, 2);
        assert!(
            (b.edge_latency_ms.p50 - 3.0).abs() < 1e-9,
            "(3·2 + 1·6) / 4"
        );
        assert!((b.edge_latency_ms.max - 6.0).abs() < 1e-9);
        assert_eq!(b.tag("type"), Some("sqs"));
    }

    #[test]
    fn traces_are_trees_with_sdk_steps_marked() {
        let span = |id: u64, parent: u64, start: i64, name: &str| Span {
            trace_id: 7,
            span_id: id,
            parent_id: parent,
            start,
            duration: 10,
            name: name.to_owned(),
            ..Span::default()
        };
        let mut sdk = span(3, 1, 20, "SQS.SendMessage");
        sdk.meta.insert("rpc.system".into(), "aws-api".into());
        let spans = [
            span(4, 3, 21, "try_op"),
            sdk,
            span(2, 1, 10, "child"),
            span(1, 0, 0, "root"),
            span(9, 0, 100, "other-root"),
            Span {
                trace_id: 8,
                ..span(5, 0, 0, "alone")
            },
        ];
        let traces = Trace::group(&spans);
        assert_eq!(traces.len(), 2);
        let t = &traces[0];
        assert_eq!(t.trace_id, 7);
        assert_eq!((t.start_ns, t.duration_ns), (0, 110));
        let rows: Vec<(&str, usize, bool)> = t
            .spans
            .iter()
            .map(|s| (&*s.name, s.depth, s.sdk_internal))
            .collect();
        assert_eq!(
            rows,
            [
                ("root", 0, false),
                ("child", 1, false),
                ("SQS.SendMessage", 1, false),
                ("try_op", 2, true),
                ("other-root", 0, false),
            ]
        );
    }
}
