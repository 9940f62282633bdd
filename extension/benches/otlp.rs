//! The OTLP sink's flush CPU for 1000 tagged spans: `ExportTraceServiceRequest` written
//! directly (`sinks::otlp::traces::encode`) against building `opentelemetry-proto`'s prost
//! model of the same message and encoding it (what depending on that crate would cost), with
//! the Datadog sink's `AgentPayload` writer for scale; interleaved in the same run.
//!
//! `cargo bench -p ddlambda-extension --bench otlp`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use ddlambda_extension::config::Config;
use ddlambda_extension::event::TraceBatch;
use ddlambda_extension::flush::enrich::FunctionTags;
use ddlambda_extension::sinks::datadog::traces as dd;
use ddlambda_extension::sinks::otlp::resource;
use ddlambda_extension::sinks::otlp::traces::{SCOPE, encode};
use ddlambda_wire::{Span, SpanLink};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OSpan, Status, span,
};
use prost::Message;

const SPANS: usize = 1000;

fn batch() -> TraceBatch {
    let env: HashMap<&str, &str> = [
        ("AWS_LAMBDA_FUNCTION_NAME", "bench-function"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12"),
        ("DD_ENV", "prod"),
        ("DD_SERVICE", "bench"),
    ]
    .into_iter()
    .collect();
    let (config, _) = Config::from_lookup(|k| env.get(k).map(|v| v.to_string()));
    let tags = FunctionTags::new(&config, Some("123456789012"));
    let traces = (0..10u64)
        .map(|t| {
            (0..SPANS as u64 / 10)
                .map(|i| {
                    let mut s = Span {
                        service: if i % 2 == 0 { "bench" } else { "bench-db" }.into(),
                        name: "db.query".into(),
                        resource: format!("SELECT * FROM t WHERE id = {i}"),
                        trace_id: t + 1,
                        span_id: t * 1000 + i + 1,
                        parent_id: if i == 0 { 0 } else { t * 1000 + 1 },
                        start: 1_700_000_000_000_000_000 + i as i64 * 1000,
                        duration: 1000,
                        error: i32::from(i % 10 == 0),
                        r#type: "sql".into(),
                        ..Span::default()
                    };
                    if i == 0 {
                        s.meta.insert("_dd.p.tid".into(), "6560a1b200000000".into());
                        s.span_links.push(SpanLink {
                            trace_id: 9,
                            span_id: 8,
                            ..SpanLink::default()
                        });
                    }
                    s.meta.insert("db.system".into(), "postgresql".into());
                    s.meta.insert("span.kind".into(), "client".into());
                    s.meta.insert("error.msg".into(), "timeout".into());
                    s.metrics.insert("_dd.top_level".into(), 1.0);
                    s.metrics.insert("process_id".into(), 8.0);
                    tags.apply(&mut s, false);
                    s
                })
                .collect()
        })
        .collect();
    TraceBatch {
        traces,
        lang: "python".into(),
        lang_version: "3.12.7".into(),
        tracer_version: "4.16.0".into(),
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

/// The same mapping through the prost model: what the direct writer replaces.
fn model(b: &TraceBatch) -> ExportTraceServiceRequest {
    let highs: HashMap<u64, u64> = b
        .traces
        .iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s.trace_id,
                u64::from_str_radix(s.meta.get("_dd.p.tid")?, 16).ok()?,
            ))
        })
        .collect();
    let mut groups: Vec<(resource::Attributes<'_>, Vec<OSpan>)> = Vec::new();
    for s in b.traces.iter().flatten() {
        let attrs = resource::attributes(Some(&s.service), |k| s.meta.get(k).map(String::as_str));
        let mut trace_id = highs
            .get(&s.trace_id)
            .copied()
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        trace_id.extend(s.trace_id.to_be_bytes());
        let mut attributes = vec![
            kv("operation.name", Value::StringValue(s.name.clone())),
            kv("resource.name", Value::StringValue(s.resource.clone())),
            kv("span.type", Value::StringValue(s.r#type.clone())),
        ];
        attributes.extend(
            s.meta
                .iter()
                .map(|(k, v)| kv(k, Value::StringValue(v.clone()))),
        );
        attributes.extend(s.metrics.iter().map(|(k, v)| kv(k, Value::DoubleValue(*v))));
        let span = OSpan {
            trace_id: trace_id.clone(),
            span_id: s.span_id.to_be_bytes().to_vec(),
            parent_span_id: if s.parent_id == 0 {
                vec![]
            } else {
                s.parent_id.to_be_bytes().to_vec()
            },
            name: s.name.clone(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: s.start as u64,
            end_time_unix_nano: (s.start + s.duration) as u64,
            attributes,
            links: s
                .span_links
                .iter()
                .map(|l| span::Link {
                    trace_id: [l.trace_id_high.to_be_bytes(), l.trace_id.to_be_bytes()].concat(),
                    span_id: l.span_id.to_be_bytes().to_vec(),
                    ..span::Link::default()
                })
                .collect(),
            status: (s.error != 0).then(|| Status {
                message: s.meta.get("error.msg").cloned().unwrap_or_default(),
                code: 2,
            }),
            ..OSpan::default()
        };
        match groups.iter_mut().find(|(a, _)| *a == attrs) {
            Some((_, spans)) => spans.push(span),
            None => groups.push((attrs, vec![span])),
        }
    }
    let sdk = [
        ("telemetry.sdk.name", "datadog"),
        ("telemetry.sdk.language", b.lang.as_str()),
        ("telemetry.sdk.version", b.tracer_version.as_str()),
        ("process.runtime.version", b.lang_version.as_str()),
    ];
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(attrs, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: attrs
                        .iter()
                        .map(|(k, v)| match v {
                            resource::Value::Str(s) => kv(k, Value::StringValue((*s).to_owned())),
                            resource::Value::Int(n) => kv(k, Value::IntValue(*n)),
                        })
                        .chain(
                            sdk.iter()
                                .map(|(k, v)| kv(k, Value::StringValue((*v).to_owned()))),
                        )
                        .collect(),
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: SCOPE.to_owned(),
                        version: b.tracer_version.clone(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
}

/// Median of `runs` timings of `f`, in microseconds.
fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let runs = 201;
    let b = batch();
    let direct = || encode(&b);
    let prost_model = || model(&b).encode_to_vec();
    let datadog = || dd::encode(&b);
    // Same message both ways (attribute for attribute), so the comparison is fair.
    assert_eq!(
        ExportTraceServiceRequest::decode(&direct()[..]).expect("decodes"),
        model(&b),
        "the writer and the model encode the same request"
    );
    let (mut p, mut d, mut x) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        p.push(median_us(runs, || drop(black_box(prost_model()))));
        d.push(median_us(runs, || drop(black_box(direct()))));
        x.push(median_us(runs, || drop(black_box(datadog()))));
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (p, d, x) = (mid(p), mid(d), mid(x));
    println!(
        "OTLP encode {SPANS} spans ({} bytes): prost model {p:.0} µs, direct {d:.0} µs ({:.2}x faster); Datadog AgentPayload writer {x:.0} µs ({} bytes)",
        direct().len(),
        p / d,
        datadog().len(),
    );
}
