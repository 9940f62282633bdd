//! The post-runtime flush's CPU work for 1000 spans: `AgentPayload` encoding and gzip, the
//! direct writer (`traces::encode`) against the prost model it replaced
//! (`traces::agent_payload(..).encode_to_vec()`), measured side by side in the same run.
//!
//! `cargo bench -p ddlambda-extension --bench encode`. For instruction counts on a loaded
//! machine: `valgrind --tool=callgrind <bench binary> --callgrind` (fewer iterations).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use ddlambda_extension::config::Config;
use ddlambda_extension::event::TraceBatch;
use ddlambda_extension::flush::enrich::FunctionTags;
use ddlambda_extension::sinks::datadog::gzip;
use ddlambda_extension::sinks::datadog::traces::{agent_payload, encode};
use ddlambda_wire::Span;
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
        ("DD_VERSION", "1.2.3"),
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
                        service: "bench".into(),
                        name: "db.query".into(),
                        resource: format!("SELECT * FROM t WHERE id = {i}"),
                        trace_id: t + 1,
                        span_id: t * 1000 + i + 1,
                        parent_id: if i == 0 { 0 } else { t * 1000 + 1 },
                        start: 1_700_000_000_000_000_000 + i as i64 * 1000,
                        duration: 1000,
                        r#type: "sql".into(),
                        ..Span::default()
                    };
                    s.meta.insert("db.system".into(), "postgresql".into());
                    s.meta.insert("component".into(), "psycopg".into());
                    s.meta.insert("runtime-id".into(), "6f1c3b".into());
                    s.metrics.insert("_dd.top_level".into(), 1.0);
                    s.metrics.insert("_sampling_priority_v1".into(), 1.0);
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
    let callgrind = std::env::args().any(|a| a == "--callgrind");
    let runs = if callgrind { 5 } else { 201 };
    let b = batch();
    let model = || agent_payload(&b).encode_to_vec();
    let direct = || encode(&b);
    assert_eq!(
        prost::Message::encoded_len(&agent_payload(&b)),
        direct().len(),
        "same message"
    );
    let body = direct();
    // Interleaved, so both see the same machine load.
    let mut m = Vec::new();
    let mut d = Vec::new();
    let mut z = Vec::new();
    for _ in 0..3 {
        m.push(median_us(runs, || drop(black_box(model()))));
        d.push(median_us(runs, || drop(black_box(direct()))));
        z.push(median_us(runs, || drop(black_box(gzip(&body)))));
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m, d, z) = (mid(m), mid(d), mid(z));
    println!(
        "encode {SPANS} spans ({} bytes): prost model {m:.0} µs, direct {d:.0} µs ({:.2}x); gzip level 1 → {} bytes: {z:.0} µs; flush CPU {:.0} µs → {:.0} µs",
        body.len(),
        m / d,
        gzip(&body).len(),
        m + z,
        d + z,
    );
}
