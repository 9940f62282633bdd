//! Datadog spans → `ExportTraceServiceRequest` (`POST /v1/traces`), the way Datadog's own
//! mappings read them back (the agent's OTLP intake and the Collector's Datadog receiver):
//!
//! - trace id: 16 bytes, the high half from `_dd.p.tid` (hex), the low half from `trace_id`;
//!   span and parent ids: 8 bytes, big-endian; no parent id on a root;
//! - span name: the Datadog operation name; `operation.name`, `resource.name` and `span.type`
//!   attributes carry name, resource and type, so the Datadog agent's OTLP intake gets back
//!   exactly what the tracer sent;
//! - kind from the `span.kind` tag (UNSPECIFIED when the tracer set none: nothing says which);
//! - start and end in Unix nanoseconds;
//! - status ERROR, with `error.msg` (or `error.message`) as message, when `error` is set;
//! - every meta tag as a string attribute, every metric as a double attribute, every
//!   `meta_struct` entry as a bytes attribute (the tracer's msgpack, unchanged); on a key
//!   clash (OTLP keys are unique) the mapping's own attributes win, then meta, then metrics;
//! - span links as links; Datadog flags keep their W3C bits (0–7) and lose bit 31, which in
//!   Datadog only says "flags are set". Span pointers (links with zero ids and
//!   `link.kind: span-pointer`) stay links with all-zero ids: OpenTelemetry calls such a context
//!   invalid, but it is what the Datadog agent turns back into a span pointer, and the `ptr.*`
//!   attributes go with it.
//!
//! Spans are grouped by resource (`resource::attributes`: service and function tags), each
//! group one `ResourceSpans` with one scope, `Datadog` at the tracer's version (the Collector's
//! Datadog receiver's scope), and the tracer's language as `telemetry.sdk.*`.

use std::collections::HashMap;

use ddlambda_wire::{Span, SpanLink};

use super::proto::{Writer, common};
use super::resource;
use crate::event::TraceBatch;

/// The instrumentation scope of translated Datadog spans.
pub const SCOPE: &str = "Datadog";

/// Attributes the mapping adds; tags of the same name are left out.
const OPERATION_NAME: &str = "operation.name";
const RESOURCE_NAME: &str = "resource.name";
const SPAN_TYPE: &str = "span.type";

/// `Span.SpanKind`.
fn kind(span: &Span) -> u64 {
    match span.meta.get("span.kind").map(String::as_str) {
        Some("internal") => 1,
        Some("server") => 2,
        Some("client") => 3,
        Some("producer") => 4,
        Some("consumer") => 5,
        _ => 0,
    }
}

/// The high 64 bits of each trace id in the batch, by low half, from `_dd.p.tid`: tracers put
/// it on one span of a chunk only (ddtrace: the first), and a trace may come in several chunks.
fn trace_id_highs(batch: &TraceBatch) -> HashMap<u64, u64> {
    batch
        .traces
        .iter()
        .flatten()
        .filter_map(|s| {
            let high = u64::from_str_radix(s.meta.get("_dd.p.tid")?, 16).ok()?;
            Some((s.trace_id, high))
        })
        .collect()
}

fn trace_id(high: u64, low: u64) -> [u8; 16] {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// Encodes a batch as the protobuf body of `POST /v1/traces` (before compression).
pub fn encode(batch: &TraceBatch) -> Vec<u8> {
    let highs = trace_id_highs(batch);
    let spans = batch
        .traces
        .iter()
        .flatten()
        .map(|s| (s, highs.get(&s.trace_id).copied().unwrap_or(0)));
    // Few distinct resources per batch (services × function): a linear search is cheapest.
    let mut groups: Vec<(resource::Attributes<'_>, Vec<(&Span, u64)>)> = Vec::new();
    for (span, high) in spans {
        let attrs = resource::attributes(Some(&span.service), |k| {
            span.meta.get(k).map(String::as_str)
        });
        match groups.iter_mut().find(|(a, _)| *a == attrs) {
            Some((_, members)) => members.push((span, high)),
            None => groups.push((attrs, vec![(span, high)])),
        }
    }
    let estimate: usize = batch
        .traces
        .iter()
        .flatten()
        .map(crate::buffer::span_bytes)
        .sum();
    let sdk = [
        ("telemetry.sdk.name", "datadog"),
        ("telemetry.sdk.language", batch.lang.as_str()),
        ("telemetry.sdk.version", batch.tracer_version.as_str()),
        ("process.runtime.version", batch.lang_version.as_str()),
    ];
    let mut w = Writer::with_capacity(estimate + 256);
    for (attrs, members) in &groups {
        // ExportTraceServiceRequest.resource_spans
        w.message(1, |w| {
            resource::put(w, 1, attrs, &sdk);
            // ResourceSpans.scope_spans
            w.message(2, |w| {
                common::scope(w, 1, SCOPE, &batch.tracer_version);
                for (span, high) in members {
                    put_span(w, span, *high);
                }
            });
        });
    }
    w.into_bytes()
}

/// `ScopeSpans.spans`; `high`: the trace id's high half.
fn put_span(w: &mut Writer, s: &Span, high: u64) {
    w.message(2, |w| {
        w.bytes(1, &trace_id(high, s.trace_id));
        w.bytes(2, &s.span_id.to_be_bytes());
        if s.parent_id != 0 {
            w.bytes(4, &s.parent_id.to_be_bytes());
        }
        w.string(5, &s.name);
        w.varint(6, kind(s));
        let start = s.start.max(0) as u64;
        w.fixed64(7, start);
        w.fixed64(8, start.saturating_add(s.duration.max(0) as u64));

        common::kv_str(w, 9, OPERATION_NAME, &s.name);
        common::kv_str(w, 9, RESOURCE_NAME, &s.resource);
        if !s.r#type.is_empty() {
            common::kv_str(w, 9, SPAN_TYPE, &s.r#type);
        }
        let synthetic = |k: &str| k == OPERATION_NAME || k == RESOURCE_NAME || k == SPAN_TYPE;
        for (k, v) in s.meta.iter().filter(|(k, _)| !synthetic(k)) {
            common::kv_str(w, 9, k, v);
        }
        for (k, v) in s.metrics.iter() {
            if !synthetic(k) && !s.meta.contains_key(k) {
                common::kv_double(w, 9, k, *v);
            }
        }
        for (k, v) in s.meta_struct.iter() {
            if !synthetic(k) && !s.meta.contains_key(k) && !s.metrics.contains_key(k) {
                common::kv_bytes(w, 9, k, v);
            }
        }

        for link in &s.span_links {
            put_link(w, link);
        }

        if s.error != 0 {
            // Span.status
            w.message(15, |w| {
                let message = s
                    .meta
                    .get("error.msg")
                    .or_else(|| s.meta.get("error.message"));
                w.string(2, message.map_or("", String::as_str));
                w.varint(3, 2); // STATUS_CODE_ERROR
            });
        }
    });
}

/// `Span.links`.
fn put_link(w: &mut Writer, l: &SpanLink) {
    w.message(13, |w| {
        w.bytes(1, &trace_id(l.trace_id_high, l.trace_id));
        w.bytes(2, &l.span_id.to_be_bytes());
        w.string(3, &l.tracestate);
        for (k, v) in &l.attributes {
            common::kv_str(w, 4, k, v);
        }
        w.fixed32(6, l.flags & 0xff);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use prost::Message;
    use std::collections::BTreeMap;

    fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        let mut found = attrs.iter().filter(|kv| kv.key == key);
        let first = found.next()?;
        assert!(found.next().is_none(), "{key} twice");
        first
            .value
            .as_ref()
            .and_then(|v: &AnyValue| v.value.as_ref())
    }

    fn text<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
        match attr(attrs, key)? {
            any_value::Value::StringValue(v) => Some(v),
            other => panic!("{key} is {other:?}"),
        }
    }

    fn tagged(mut span: Span, pairs: &[(&str, &str)]) -> Span {
        for (k, v) in pairs {
            span.meta.insert((*k).to_owned(), (*v).to_owned());
        }
        span
    }

    fn function_tags() -> Vec<(&'static str, &'static str)> {
        vec![
            ("functionname", "my-fn"),
            ("region", "eu-west-1"),
            ("account_id", "123456789012"),
            ("_dd.origin", "lambda"),
        ]
    }

    fn batch() -> TraceBatch {
        let root = tagged(
            Span {
                service: "web".into(),
                name: "aws.lambda".into(),
                resource: "my-fn".into(),
                trace_id: 0x1122_3344_5566_7788,
                span_id: 1,
                start: 1_700_000_000_000_000_000,
                duration: 5_000_000,
                r#type: "serverless".into(),
                metrics: BTreeMap::from([("_sampling_priority_v1".into(), 1.0)]),
                meta_struct: BTreeMap::from([("_llmobs".into(), vec![0x81, 0xa1, b'a', 1])]),
                span_links: vec![
                    SpanLink {
                        trace_id: 9,
                        trace_id_high: 8,
                        span_id: 7,
                        tracestate: "dd=s:1".into(),
                        flags: 1 | 1 << 31,
                        attributes: BTreeMap::from([("k".into(), "v".into())]),
                    },
                    SpanLink {
                        attributes: BTreeMap::from([
                            ("link.kind".into(), "span-pointer".into()),
                            ("ptr.kind".into(), "aws.s3.object".into()),
                            ("ptr.dir".into(), "d".into()),
                            ("ptr.hash".into(), "abc".into()),
                        ]),
                        ..SpanLink::default()
                    },
                ],
                ..Span::default()
            },
            &[
                ("_dd.p.tid", "00000000deadbeef"),
                ("span.kind", "server"),
                ("env", "prod"),
            ],
        );
        let child = tagged(
            Span {
                service: "db".into(),
                name: "postgres.query".into(),
                resource: "SELECT 1".into(),
                trace_id: root.trace_id,
                span_id: 2,
                parent_id: 1,
                start: root.start + 1000,
                duration: 2000,
                error: 1,
                metrics: BTreeMap::from([("rows".into(), 3.0), ("env".into(), 1.0)]),
                ..Span::default()
            },
            &[
                ("span.kind", "client"),
                ("env", "prod"),
                ("error.msg", "boom"),
                ("resource.name", "a tracer's own"),
            ],
        );
        let mut root = root;
        let mut child = child;
        for (k, v) in function_tags() {
            root.meta.insert(k.into(), v.into());
            child.meta.insert(k.into(), v.into());
        }
        TraceBatch {
            traces: vec![vec![root, child]],
            lang: "python".into(),
            lang_version: "3.12.1".into(),
            tracer_version: "4.16.0".into(),
        }
    }

    #[test]
    fn decodes_with_the_opentelemetry_types_field_by_field() {
        let batch = batch();
        let req = ExportTraceServiceRequest::decode(&encode(&batch)[..]).unwrap();
        // Two services: two resources.
        assert_eq!(req.resource_spans.len(), 2);
        let by_service = |svc: &str| {
            req.resource_spans
                .iter()
                .find(|r| {
                    text(&r.resource.as_ref().unwrap().attributes, "service.name") == Some(svc)
                })
                .unwrap()
        };
        let web = by_service("web");
        let res = &web.resource.as_ref().unwrap().attributes;
        assert_eq!(text(res, "faas.name"), Some("my-fn"));
        assert_eq!(text(res, "cloud.provider"), Some("aws"));
        assert_eq!(text(res, "cloud.region"), Some("eu-west-1"));
        assert_eq!(text(res, "cloud.account.id"), Some("123456789012"));
        assert_eq!(text(res, "deployment.environment.name"), Some("prod"));
        assert_eq!(text(res, "telemetry.sdk.language"), Some("python"));
        let scope = &web.scope_spans[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "Datadog");
        assert_eq!(scope.scope.as_ref().unwrap().version, "4.16.0");

        let root = &scope.spans[0];
        assert_eq!(
            hex(&root.trace_id),
            "00000000deadbeef1122334455667788",
            "_dd.p.tid is the high half"
        );
        assert_eq!(root.span_id, 1u64.to_be_bytes());
        assert!(root.parent_span_id.is_empty());
        assert_eq!(root.name, "aws.lambda");
        assert_eq!(root.kind, SpanKind::Server as i32);
        assert_eq!(root.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(root.end_time_unix_nano, 1_700_000_000_005_000_000);
        assert_eq!(text(&root.attributes, "resource.name"), Some("my-fn"));
        assert_eq!(text(&root.attributes, "operation.name"), Some("aws.lambda"));
        assert_eq!(text(&root.attributes, "span.type"), Some("serverless"));
        assert_eq!(text(&root.attributes, "_dd.origin"), Some("lambda"));
        assert_eq!(
            attr(&root.attributes, "_sampling_priority_v1"),
            Some(&any_value::Value::DoubleValue(1.0))
        );
        assert_eq!(
            attr(&root.attributes, "_llmobs"),
            Some(&any_value::Value::BytesValue(vec![0x81, 0xa1, b'a', 1]))
        );
        assert_eq!(root.status.as_ref().map_or(0, |s| s.code), 0);

        let link = &root.links[0];
        assert_eq!(hex(&link.trace_id), "00000000000000080000000000000009");
        assert_eq!(link.span_id, 7u64.to_be_bytes());
        assert_eq!(link.trace_state, "dd=s:1");
        assert_eq!(link.flags, 1, "W3C bits kept, Datadog's bit 31 dropped");
        assert_eq!(text(&link.attributes, "k"), Some("v"));
        let pointer = &root.links[1];
        assert_eq!(pointer.trace_id, [0; 16]);
        assert_eq!(pointer.span_id, [0; 8]);
        assert_eq!(text(&pointer.attributes, "link.kind"), Some("span-pointer"));
        assert_eq!(text(&pointer.attributes, "ptr.hash"), Some("abc"));

        let db = &by_service("db").scope_spans[0].spans[0];
        assert_eq!(db.trace_id, root.trace_id);
        assert_eq!(db.parent_span_id, root.span_id);
        assert_eq!(db.kind, SpanKind::Client as i32);
        let status = db.status.as_ref().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "boom");
        assert_eq!(
            attr(&db.attributes, "rows"),
            Some(&any_value::Value::DoubleValue(3.0))
        );
        // The mapping's own attribute wins over a tag of that name; `env` the metric is
        // shadowed by `env` the tag; no key appears twice (`attr` checks).
        assert_eq!(text(&db.attributes, "resource.name"), Some("SELECT 1"));
        assert_eq!(text(&db.attributes, "env"), Some("prod"));
        assert_eq!(attr(&db.attributes, "span.type"), None);
    }

    #[test]
    fn empty_batch_is_an_empty_request() {
        let req = ExportTraceServiceRequest::decode(&encode(&TraceBatch::default())[..]).unwrap();
        assert!(req.resource_spans.is_empty());
    }

    #[test]
    fn a_span_without_kind_or_tid_keeps_a_64_bit_id_and_no_kind() {
        let batch = TraceBatch {
            traces: vec![vec![Span {
                name: "x".into(),
                trace_id: u64::MAX,
                span_id: 3,
                start: -5,
                ..Span::default()
            }]],
            ..TraceBatch::default()
        };
        let req = ExportTraceServiceRequest::decode(&encode(&batch)[..]).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(hex(&span.trace_id), "0000000000000000ffffffffffffffff");
        assert_eq!(span.kind, SpanKind::Unspecified as i32);
        assert_eq!(span.start_time_unix_nano, 0);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
