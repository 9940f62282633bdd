//! Spans → the trace intake's `AgentPayload` protobuf (`/api/v0.2/traces`), using the published
//! `libdd-trace-protobuf` types. Pure functions: the sink does HTTP, compression and headers.
//!
//! What the Datadog agent does between a tracer and the intake, and we therefore do here:
//! - one `TraceChunk` per trace as received, its `priority` from the root span's
//!   `_sampling_priority_v1` and its `origin` from the root's `_dd.origin` (`lambda` when absent);
//! - `_top_level` (what the intake reads) on the spans marked `_dd.top_level` (what tracers
//!   write; the trace agent marks them on arrival for tracers that do not);
//! - `_dd.compute_stats: 1` on the first span of each chunk, asking the backend to compute APM
//!   stats, as bottlecap does when the extension does not compute them itself — unless the
//!   chunk already says `0` (the trace agent marks traces whose tracer computed stats);
//! - the tracer payload's `env`, `app_version`, `runtime_id` from the root spans (libdatadog's
//!   agentless rule).
//!
//! Function tags and `_dd.origin` on every span are the flusher's (`flush::enrich`): by the time
//! a batch gets here they are in each span's meta.
//!
//! [`encode`] writes the protobuf bytes straight from the buffered spans: building the prost
//! model first ([`agent_payload`]) copies every string and hashes every tag into a `HashMap`,
//! which was most of a post-runtime flush. The model stays as the reference [`encode`] is
//! tested and benchmarked against (`benches/encode.rs`): both decode to the same message.

use std::collections::{HashMap, HashSet};

use ddlambda_wire::{Span, SpanLink};
use libdd_trace_protobuf::pb;

use crate::event::TraceBatch;

/// The agent's "no sampling decision" priority (`sampler.PriorityNone`).
pub const PRIORITY_NONE: i32 = i8::MIN as i32;
/// The chunk origin when the root span names none.
pub const LAMBDA_ORIGIN: &str = "lambda";

const SAMPLING_PRIORITY_KEY: &str = "_sampling_priority_v1";
const ORIGIN_KEY: &str = "_dd.origin";
const TRACER_TOP_LEVEL_KEY: &str = ddlambda_wire::trace::TOP_LEVEL_KEY;
const TOP_LEVEL_KEY: &str = "_top_level";
const COMPUTE_STATS_KEY: &str = ddlambda_wire::trace::COMPUTE_STATS_KEY;
/// `AgentPayload.agent_version`.
const AGENT_VERSION: &str = concat!("ddlambda-extension/", env!("CARGO_PKG_VERSION"));
/// libdatadog's `target_tps` and `error_tps` for an agent that does no sampling of its own.
const TARGET_TPS: f64 = 60.0;

/// Encodes a batch as the protobuf body of `POST /api/v0.2/traces` (before compression):
/// the bytes of [`agent_payload`]'s message, written without building it.
pub fn encode(batch: &TraceBatch) -> Vec<u8> {
    direct::encode(batch)
}

/// Builds the `AgentPayload` for a batch as a prost message: one tracer payload (a batch is one tracer's), one
/// chunk per trace. Empty traces are left out.
pub fn agent_payload(batch: &TraceBatch) -> pb::AgentPayload {
    let chunks: Vec<pb::TraceChunk> = batch
        .traces
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| chunk(t))
        .collect();
    let root_meta = |key: &str| {
        batch
            .traces
            .iter()
            .filter_map(|t| t.get(root_index(t)?))
            .find_map(|root| root.meta.get(key).filter(|v| !v.is_empty()))
            .cloned()
            .unwrap_or_default()
    };
    let tracer_payload = pb::TracerPayload {
        container_id: String::new(),
        language_name: batch.lang.clone(),
        language_version: batch.lang_version.clone(),
        tracer_version: batch.tracer_version.clone(),
        runtime_id: root_meta("runtime-id"),
        env: root_meta("env"),
        hostname: root_meta("_dd.hostname"),
        app_version: root_meta("version"),
        tags: HashMap::new(),
        chunks,
        // Field 11 means different things in the agent's and libdatadog's copies: never set.
        container_debug: None,
    };
    pb::AgentPayload {
        // Lambda has no host: the function tags identify the source.
        host_name: String::new(),
        env: tracer_payload.env.clone(),
        tracer_payloads: vec![tracer_payload],
        tags: HashMap::new(),
        agent_version: AGENT_VERSION.to_owned(),
        target_tps: TARGET_TPS,
        error_tps: TARGET_TPS,
        rare_sampler_enabled: false,
        idx_tracer_payloads: Vec::new(),
    }
}

/// What the agent decides per chunk, shared by both encoders.
struct ChunkHead<'a> {
    priority: i32,
    origin: &'a str,
    /// Add `_dd.compute_stats: 1` to the first span.
    compute_stats: bool,
}

fn chunk_head(trace: &[Span]) -> ChunkHead<'_> {
    let root = root_index(trace).map(|i| &trace[i]);
    let priority = root
        .and_then(|r| r.metrics.get(SAMPLING_PRIORITY_KEY))
        .or_else(|| {
            trace
                .iter()
                .find_map(|s| s.metrics.get(SAMPLING_PRIORITY_KEY))
        })
        .map_or(PRIORITY_NONE, |p| *p as i32);
    let origin = root
        .and_then(|r| r.meta.get(ORIGIN_KEY))
        .filter(|o| !o.is_empty())
        .map_or(LAMBDA_ORIGIN, String::as_str);
    // Unless the trace agent recorded that the tracer computed stats itself.
    let compute_stats = !trace.iter().any(|s| s.meta.contains_key(COMPUTE_STATS_KEY));
    ChunkHead {
        priority,
        origin,
        compute_stats,
    }
}

/// Whether the tracer (or the trace agent on arrival) marked the span top-level.
fn is_top_level(span: &Span) -> bool {
    span.metrics.get(TRACER_TOP_LEVEL_KEY) == Some(&1.0)
}

/// One trace as a chunk, with the agent's per-chunk processing applied.
fn chunk(trace: &[Span]) -> pb::TraceChunk {
    let head = chunk_head(trace);
    let mut spans: Vec<pb::Span> = trace.iter().map(span).collect();
    mark_top_level(trace, &mut spans);
    if let (true, Some(first)) = (head.compute_stats, spans.first_mut()) {
        first
            .meta
            .insert(COMPUTE_STATS_KEY.to_owned(), "1".to_owned());
    }
    pb::TraceChunk {
        priority: head.priority,
        origin: head.origin.to_owned(),
        spans,
        tags: HashMap::new(),
        dropped_trace: false,
    }
}

/// The root of a trace: the span without a parent, else the one whose parent is not in the
/// trace (a partial flush), else the last span (the agent's `GetRoot` fallback).
fn root_index(trace: &[Span]) -> Option<usize> {
    if trace.is_empty() {
        return None;
    }
    if let Some(i) = trace.iter().position(|s| s.parent_id == 0) {
        return Some(i);
    }
    let ids: HashSet<u64> = trace.iter().map(|s| s.span_id).collect();
    Some(
        trace
            .iter()
            .position(|s| !ids.contains(&s.parent_id))
            .unwrap_or(trace.len() - 1),
    )
}

/// The intake reads `_top_level`; tracers (and the trace agent on arrival, for tracers that do
/// not compute it: `wire::trace::mark_top_level`) write `_dd.top_level`. The agent's
/// `UpdateTracerTopLevel`.
fn mark_top_level(trace: &[Span], spans: &mut [pb::Span]) {
    for (source, out) in trace.iter().zip(spans) {
        if is_top_level(source) {
            out.metrics.insert(TOP_LEVEL_KEY.to_owned(), 1.0);
        }
    }
}

fn span(s: &Span) -> pb::Span {
    pb::Span {
        service: s.service.clone(),
        name: s.name.clone(),
        resource: s.resource.clone(),
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_id: s.parent_id,
        start: s.start,
        duration: s.duration,
        error: s.error,
        meta: s.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        metrics: s.metrics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        r#type: s.r#type.clone(),
        // ddtrace's LLMObs events ride here (`_llmobs`) unless APM tracing is off.
        meta_struct: s
            .meta_struct
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        span_links: s.span_links.iter().map(link).collect(),
        span_events: Vec::new(),
    }
}

fn link(l: &SpanLink) -> pb::SpanLink {
    pb::SpanLink {
        trace_id: l.trace_id,
        trace_id_high: l.trace_id_high,
        span_id: l.span_id,
        attributes: l
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tracestate: l.tracestate.clone(),
        flags: l.flags,
    }
}

/// The protobuf writer behind [`encode`]. Field numbers and order are those of
/// `libdd-trace-protobuf`'s `pb` messages (proto3: default values are left out, as prost does).
mod direct {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

    use super::*;

    pub fn encode(batch: &TraceBatch) -> Vec<u8> {
        let chunks: Vec<Chunk<'_>> = batch
            .traces
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| Chunk::new(t))
            .collect();
        let root_meta = |key: &str| -> &str {
            batch
                .traces
                .iter()
                .filter_map(|t| t.get(root_index(t)?))
                .find_map(|root| root.meta.get(key).filter(|v| !v.is_empty()))
                .map_or("", String::as_str)
        };
        let env = root_meta("env");
        let tracer = Tracer {
            lang: &batch.lang,
            lang_version: &batch.lang_version,
            tracer_version: &batch.tracer_version,
            runtime_id: root_meta("runtime-id"),
            env,
            hostname: root_meta("_dd.hostname"),
            app_version: root_meta("version"),
            chunks,
        };
        let tracer_len = tracer.len();
        let total = str_len(2, env)
            + nested_len(5, tracer_len)
            + str_len(7, AGENT_VERSION)
            + 2 * (key_len(8) + 8);
        let mut buf = Vec::with_capacity(total);
        put_str(2, env, &mut buf);
        put_nested(5, tracer_len, &mut buf);
        tracer.put(&mut buf);
        put_str(7, AGENT_VERSION, &mut buf);
        put_double(8, TARGET_TPS, &mut buf);
        put_double(9, TARGET_TPS, &mut buf);
        debug_assert_eq!(buf.len(), total);
        buf
    }

    /// `TracerPayload`.
    struct Tracer<'a> {
        lang: &'a str,
        lang_version: &'a str,
        tracer_version: &'a str,
        runtime_id: &'a str,
        env: &'a str,
        hostname: &'a str,
        app_version: &'a str,
        chunks: Vec<Chunk<'a>>,
    }

    impl Tracer<'_> {
        fn len(&self) -> usize {
            str_len(2, self.lang)
                + str_len(3, self.lang_version)
                + str_len(4, self.tracer_version)
                + str_len(5, self.runtime_id)
                + self
                    .chunks
                    .iter()
                    .map(|c| nested_len(6, c.len))
                    .sum::<usize>()
                + str_len(8, self.env)
                + str_len(9, self.hostname)
                + str_len(10, self.app_version)
        }

        fn put(&self, buf: &mut Vec<u8>) {
            put_str(2, self.lang, buf);
            put_str(3, self.lang_version, buf);
            put_str(4, self.tracer_version, buf);
            put_str(5, self.runtime_id, buf);
            for c in &self.chunks {
                put_nested(6, c.len, buf);
                c.put(buf);
            }
            put_str(8, self.env, buf);
            put_str(9, self.hostname, buf);
            put_str(10, self.app_version, buf);
        }
    }

    /// `TraceChunk`, its spans' encoded lengths computed once.
    struct Chunk<'a> {
        trace: &'a [Span],
        head: ChunkHead<'a>,
        span_lens: Vec<usize>,
        len: usize,
    }

    impl<'a> Chunk<'a> {
        fn new(trace: &'a [Span]) -> Self {
            let head = chunk_head(trace);
            let span_lens: Vec<usize> = trace
                .iter()
                .enumerate()
                .map(|(i, s)| span_len(s, i == 0 && head.compute_stats))
                .collect();
            let len = int_len(1, i64::from(head.priority))
                + str_len(2, head.origin)
                + span_lens.iter().map(|l| nested_len(3, *l)).sum::<usize>();
            Self {
                trace,
                head,
                span_lens,
                len,
            }
        }

        fn put(&self, buf: &mut Vec<u8>) {
            put_int(1, i64::from(self.head.priority), buf);
            put_str(2, self.head.origin, buf);
            for (i, (s, len)) in self.trace.iter().zip(&self.span_lens).enumerate() {
                put_nested(3, *len, buf);
                put_span(s, i == 0 && self.head.compute_stats, buf);
            }
        }
    }

    fn span_len(s: &Span, compute_stats: bool) -> usize {
        let top_level = is_top_level(s);
        let mut len = str_len(1, &s.service)
            + str_len(2, &s.name)
            + str_len(3, &s.resource)
            + uint_len(4, s.trace_id)
            + uint_len(5, s.span_id)
            + uint_len(6, s.parent_id)
            + int_len(7, s.start)
            + int_len(8, s.duration)
            + int_len(9, i64::from(s.error))
            + str_len(12, &s.r#type);
        len += s
            .meta
            .iter()
            .map(|(k, v)| nested_len(10, str_entry_len(k, v)))
            .sum::<usize>();
        if compute_stats {
            len += nested_len(10, str_entry_len(COMPUTE_STATS_KEY, "1"));
        }
        len += s
            .metrics
            .keys()
            .map(|k| nested_len(11, double_entry_len(k)))
            .sum::<usize>();
        if top_level && !s.metrics.contains_key(TOP_LEVEL_KEY) {
            len += nested_len(11, double_entry_len(TOP_LEVEL_KEY));
        }
        len += s
            .meta_struct
            .iter()
            .map(|(k, v)| nested_len(13, bytes_entry_len(k, v)))
            .sum::<usize>();
        len += s
            .span_links
            .iter()
            .map(|l| prost::encoding::message::encoded_len(14, &link(l)))
            .sum::<usize>();
        len
    }

    fn put_span(s: &Span, compute_stats: bool, buf: &mut Vec<u8>) {
        let top_level = is_top_level(s);
        put_str(1, &s.service, buf);
        put_str(2, &s.name, buf);
        put_str(3, &s.resource, buf);
        put_uint(4, s.trace_id, buf);
        put_uint(5, s.span_id, buf);
        put_uint(6, s.parent_id, buf);
        put_int(7, s.start, buf);
        put_int(8, s.duration, buf);
        put_int(9, i64::from(s.error), buf);
        for (k, v) in &s.meta {
            put_str_entry(10, k, v, buf);
        }
        if compute_stats {
            put_str_entry(10, COMPUTE_STATS_KEY, "1", buf);
        }
        for (k, v) in &s.metrics {
            // The agent overwrites `_top_level` on marked spans.
            let v = if top_level && k == TOP_LEVEL_KEY {
                1.0
            } else {
                *v
            };
            put_double_entry(11, k, v, buf);
        }
        if top_level && !s.metrics.contains_key(TOP_LEVEL_KEY) {
            put_double_entry(11, TOP_LEVEL_KEY, 1.0, buf);
        }
        put_str(12, &s.r#type, buf);
        for (k, v) in &s.meta_struct {
            put_bytes_entry(13, k, v, buf);
        }
        for l in &s.span_links {
            prost::encoding::message::encode(14, &link(l), buf);
        }
    }

    fn str_len(tag: u32, s: &str) -> usize {
        if s.is_empty() {
            0
        } else {
            key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
        }
    }

    fn put_str(tag: u32, s: &str, buf: &mut Vec<u8>) {
        if !s.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(s.len() as u64, buf);
            buf.extend_from_slice(s.as_bytes());
        }
    }

    fn uint_len(tag: u32, v: u64) -> usize {
        if v == 0 {
            0
        } else {
            key_len(tag) + encoded_len_varint(v)
        }
    }

    fn put_uint(tag: u32, v: u64, buf: &mut Vec<u8>) {
        if v != 0 {
            encode_key(tag, WireType::Varint, buf);
            encode_varint(v, buf);
        }
    }

    /// `int32` and `int64` both encode a negative value as its 64-bit two's complement.
    fn int_len(tag: u32, v: i64) -> usize {
        uint_len(tag, v as u64)
    }

    fn put_int(tag: u32, v: i64, buf: &mut Vec<u8>) {
        put_uint(tag, v as u64, buf);
    }

    fn put_double(tag: u32, v: f64, buf: &mut Vec<u8>) {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }

    fn nested_len(tag: u32, len: usize) -> usize {
        key_len(tag) + encoded_len_varint(len as u64) + len
    }

    fn put_nested(tag: u32, len: usize, buf: &mut Vec<u8>) {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(len as u64, buf);
    }

    /// A `map<string, string>` entry's message length (key 1, value 2).
    fn str_entry_len(k: &str, v: &str) -> usize {
        str_len(1, k) + str_len(2, v)
    }

    fn put_str_entry(tag: u32, k: &str, v: &str, buf: &mut Vec<u8>) {
        put_nested(tag, str_entry_len(k, v), buf);
        put_str(1, k, buf);
        put_str(2, v, buf);
    }

    /// A `map<string, bytes>` entry's message length (key 1, value 2).
    fn bytes_entry_len(k: &str, v: &[u8]) -> usize {
        str_len(1, k) + bytes_len(2, v)
    }

    fn put_bytes_entry(tag: u32, k: &str, v: &[u8], buf: &mut Vec<u8>) {
        put_nested(tag, bytes_entry_len(k, v), buf);
        put_str(1, k, buf);
        put_bytes(2, v, buf);
    }

    fn bytes_len(tag: u32, v: &[u8]) -> usize {
        if v.is_empty() {
            0
        } else {
            key_len(tag) + encoded_len_varint(v.len() as u64) + v.len()
        }
    }

    fn put_bytes(tag: u32, v: &[u8], buf: &mut Vec<u8>) {
        if !v.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(v.len() as u64, buf);
            buf.extend_from_slice(v);
        }
    }

    /// A `map<string, double>` entry's message length; the value is always written.
    fn double_entry_len(k: &str) -> usize {
        str_len(1, k) + key_len(2) + 8
    }

    fn put_double_entry(tag: u32, k: &str, v: f64, buf: &mut Vec<u8>) {
        put_nested(tag, double_entry_len(k), buf);
        put_str(1, k, buf);
        put_double(2, v, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ddlambda_wire::trace::{decode_v04, decode_v05};
    use prost::Message;

    const PYTHON_V04: &[u8] =
        include_bytes!("../../../../tests/fixtures/payloads/python-v04.msgpack");
    const PYTHON_V05: &[u8] =
        include_bytes!("../../../../tests/fixtures/payloads/python-v05.msgpack");
    const NODE_V04: &[u8] = include_bytes!("../../../../tests/fixtures/payloads/node-v04.msgpack");

    fn batch(traces: Vec<Vec<Span>>, lang: &str) -> TraceBatch {
        TraceBatch {
            traces,
            lang: lang.into(),
            lang_version: "3.11.7".into(),
            tracer_version: "4.16.0".into(),
        }
    }

    fn round_trip(batch: &TraceBatch) -> pb::AgentPayload {
        pb::AgentPayload::decode(encode(batch).as_slice()).expect("our own bytes decode")
    }

    #[test]
    fn every_span_field_survives_the_round_trip() {
        let traces = decode_v04(PYTHON_V04).unwrap();
        let payload = round_trip(&batch(traces.clone(), "python"));
        assert_eq!(payload.tracer_payloads.len(), 1);
        let tp = &payload.tracer_payloads[0];
        assert_eq!(
            (tp.language_name.as_str(), tp.language_version.as_str()),
            ("python", "3.11.7")
        );
        assert_eq!(tp.tracer_version, "4.16.0");
        assert_eq!(tp.env, "demo");
        assert_eq!(tp.runtime_id, traces[0][0].meta["runtime-id"]);
        let chunk = &tp.chunks[0];
        assert_eq!(chunk.priority, 1);
        assert_eq!(chunk.origin, "lambda");
        for (sent, got) in traces[0].iter().zip(&chunk.spans) {
            assert_eq!(got.name, sent.name);
            assert_eq!(got.service, sent.service);
            assert_eq!(got.resource, sent.resource);
            assert_eq!(got.r#type, sent.r#type);
            assert_eq!(
                (got.trace_id, got.span_id, got.parent_id),
                (sent.trace_id, sent.span_id, sent.parent_id)
            );
            assert_eq!(
                (got.start, got.duration, got.error),
                (sent.start, sent.duration, sent.error)
            );
            for (k, v) in &sent.meta {
                assert_eq!(got.meta.get(k), Some(v), "meta {k}");
            }
            for (k, v) in &sent.metrics {
                assert_eq!(got.metrics.get(k), Some(v), "metric {k}");
            }
            assert_eq!(got.span_links.len(), sent.span_links.len());
        }
        let link = &chunk.spans[0].span_links[0];
        assert_eq!(link.trace_id_high, 0x1234567890ABCDEF);
        assert_eq!(link.attributes["link.kind"], "follows");
        assert_eq!(chunk.spans[0].meta[COMPUTE_STATS_KEY], "1");
        assert!(!chunk.spans[1].meta.contains_key(COMPUTE_STATS_KEY));
    }

    #[test]
    fn v05_spans_encode_like_v04_spans() {
        let payload = round_trip(&batch(decode_v05(PYTHON_V05).unwrap(), "python"));
        let chunk = &payload.tracer_payloads[0].chunks[0];
        assert_eq!(chunk.spans.len(), 3);
        assert_eq!(chunk.priority, 1);
    }

    #[test]
    fn the_tracers_top_level_marks_are_trusted() {
        // ddtrace marks web.request and db.query (another service), not cache.get.
        let payload = round_trip(&batch(decode_v04(PYTHON_V04).unwrap(), "python"));
        let top: Vec<bool> = payload.tracer_payloads[0].chunks[0]
            .spans
            .iter()
            .map(|s| s.metrics.get(TOP_LEVEL_KEY) == Some(&1.0))
            .collect();
        assert_eq!(top, [true, true, false]);
    }

    #[test]
    fn only_marked_spans_are_top_level_upstream() {
        // dd-trace marks only its root; the trace agent marks the rest on arrival.
        let mut traces = decode_v04(NODE_V04).unwrap();
        let unmarked = round_trip(&batch(traces.clone(), "nodejs"));
        let top = |p: &pb::AgentPayload| -> Vec<bool> {
            p.tracer_payloads[0].chunks[0]
                .spans
                .iter()
                .map(|s| s.metrics.get(TOP_LEVEL_KEY) == Some(&1.0))
                .collect()
        };
        assert_eq!(top(&unmarked), [true, false, false]);
        ddlambda_wire::trace::mark_top_level(&mut traces[0]);
        assert_eq!(
            top(&round_trip(&batch(traces, "nodejs"))),
            [true, true, false]
        );
    }

    #[test]
    fn priority_and_origin_come_from_the_root() {
        let span = |id, parent, priority: Option<f64>, origin: Option<&str>| {
            let mut s = Span {
                span_id: id,
                parent_id: parent,
                trace_id: 9,
                ..Span::default()
            };
            if let Some(p) = priority {
                s.metrics.insert(SAMPLING_PRIORITY_KEY.into(), p);
            }
            if let Some(o) = origin {
                s.meta.insert(ORIGIN_KEY.into(), o.into());
            }
            s
        };
        let traces = vec![
            // Root listed last, child without priority.
            vec![
                span(2, 1, None, None),
                span(1, 0, Some(2.0), Some("synthetics")),
            ],
            // A partial flush: no span without a parent; priority only on a child.
            vec![span(5, 4, None, None), span(6, 5, Some(-1.0), None)],
            // No decision at all.
            vec![span(7, 0, None, None)],
            vec![],
        ];
        let payload = round_trip(&batch(traces, "rust"));
        let chunks = &payload.tracer_payloads[0].chunks;
        assert_eq!(chunks.len(), 3, "empty traces are not chunks");
        assert_eq!(
            (chunks[0].priority, chunks[0].origin.as_str()),
            (2, "synthetics")
        );
        assert_eq!(
            (chunks[1].priority, chunks[1].origin.as_str()),
            (-1, "lambda")
        );
        assert_eq!(chunks[2].priority, PRIORITY_NONE);
    }

    #[test]
    fn a_trace_whose_stats_the_tracer_computed_is_not_counted_again() {
        let mut traces = decode_v04(PYTHON_V04).unwrap();
        let counted = traces.clone();
        traces[0][0]
            .meta
            .insert(COMPUTE_STATS_KEY.into(), "0".into());
        let payload = round_trip(&batch(vec![traces.remove(0), counted[0].clone()], "python"));
        let chunks = &payload.tracer_payloads[0].chunks;
        assert_eq!(chunks[0].spans[0].meta[COMPUTE_STATS_KEY], "0");
        assert_eq!(chunks[1].spans[0].meta[COMPUTE_STATS_KEY], "1");
    }

    /// The direct writer and the prost model decode to the same message, for every fixture
    /// and the edge cases of the per-chunk processing.
    #[test]
    fn the_direct_encoding_is_the_models_message() {
        let mut edge = decode_v04(NODE_V04).unwrap();
        edge[0][0].metrics.insert(TOP_LEVEL_KEY.into(), 0.0);
        edge[0][0].metrics.insert(TRACER_TOP_LEVEL_KEY.into(), 1.0);
        edge[0][1].error = -1;
        edge[0][1].start = -5;
        edge[0][1].meta.insert(String::new(), String::new());
        edge[0][1].metrics.insert("zero".into(), 0.0);
        edge[0][1]
            .meta_struct
            .insert("_llmobs".into(), vec![0x81, 0xa1, b'k', 0x01]);
        edge[0][1].meta_struct.insert("appsec".into(), Vec::new());
        let mut stats_done = decode_v04(PYTHON_V04).unwrap();
        stats_done[0][1]
            .meta
            .insert(COMPUTE_STATS_KEY.into(), "0".into());
        for (traces, lang) in [
            (decode_v04(PYTHON_V04).unwrap(), "python"),
            (decode_v05(PYTHON_V05).unwrap(), "python"),
            (decode_v04(NODE_V04).unwrap(), "nodejs"),
            (edge, "nodejs"),
            (stats_done, "python"),
            (vec![vec![], vec![Span::default()]], ""),
            (Vec::new(), ""),
        ] {
            let b = batch(traces, lang);
            let model = agent_payload(&b);
            assert_eq!(round_trip(&b), model);
        }
    }

    #[test]
    fn an_empty_batch_is_a_valid_payload() {
        let payload = round_trip(&batch(Vec::new(), ""));
        assert!(payload.tracer_payloads[0].chunks.is_empty());
    }
}
