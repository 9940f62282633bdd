//! v0.4 / v0.5 decode throughput on payloads recorded from real tracers, against libdatadog
//! decoding the same bytes in the same run.
//!
//! Baselines: `trace_utils::get_{,v05_}traces_from_request_body`, the path the Datadog Lambda
//! extension (bottlecap) decodes with, producing owned `pb::Span`s as we produce owned
//! `wire::Span`s; and, for reference, libdatadog's zero-copy `msgpack_decoder::*::from_slice`,
//! which only borrows from the body (its spans cannot outlive the request).
//!
//! Each payload's decoders are timed in 15 interleaved rounds; the median round is reported.
//!
//! `cargo bench -p ddlambda-wire --bench trace_decode`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ddlambda_wire::trace::{decode_v04, decode_v05};
use http_body_util::Full;
use libdd_trace_utils::msgpack_decoder;
use libdd_trace_utils::trace_utils;

const PYTHON_V04: &[u8] = include_bytes!("../../tests/fixtures/payloads/python-v04.msgpack");
const PYTHON_V05: &[u8] = include_bytes!("../../tests/fixtures/payloads/python-v05.msgpack");
const NODE_V04: &[u8] = include_bytes!("../../tests/fixtures/payloads/node-v04.msgpack");

/// A batch as a busy function sends it: the recorded trace `n` times in one body.
fn v04_batch(one: &[u8], n: u32) -> Vec<u8> {
    let (trace, _) = split_outer_array(one);
    let mut body = vec![0xdd];
    body.extend(n.to_be_bytes());
    for _ in 0..n {
        body.extend_from_slice(trace);
    }
    body
}

/// Same for v0.5: one string table, the recorded trace `n` times.
fn v05_batch(one: &[u8], n: u32) -> Vec<u8> {
    // [table, traces]: find where `traces` starts by decoding the table's extent.
    let mut rest = &one[1..];
    let table_len = rmp::decode::read_array_len(&mut rest).expect("v0.5 table");
    for _ in 0..table_len {
        let len = rmp::decode::read_str_len(&mut rest).expect("table entry") as usize;
        rest = &rest[len..];
    }
    let head = &one[..one.len() - rest.len()];
    let (trace, _) = split_outer_array(rest);
    let mut body = head.to_vec();
    body.push(0xdd);
    body.extend(n.to_be_bytes());
    for _ in 0..n {
        body.extend_from_slice(trace);
    }
    body
}

/// The bytes of a one-element outer array's element.
fn split_outer_array(body: &[u8]) -> (&[u8], u32) {
    let mut rest = body;
    let n = rmp::decode::read_array_len(&mut rest).expect("outer array");
    assert_eq!(n, 1, "fixtures hold one trace");
    (rest, n)
}

fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("in-memory bodies are ready"),
    }
}

/// Time per call of each of `fs`, measured in interleaved rounds (so a load swing on a shared
/// machine hits every contender alike); the median round counts.
fn compare<const N: usize>(budget: Duration, mut fs: [&mut dyn FnMut(); N]) -> [Duration; N] {
    const ROUNDS: u32 = 15;
    for f in fs.iter_mut() {
        for _ in 0..20 {
            f();
        }
    }
    let slice = budget / ROUNDS;
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..ROUNDS {
        for (f, samples) in fs.iter_mut().zip(samples.iter_mut()) {
            let mut calls = 0u32;
            let start = Instant::now();
            while start.elapsed() < slice {
                for _ in 0..10 {
                    f();
                }
                calls += 10;
            }
            samples.push(start.elapsed() / calls);
        }
    }
    samples.map(|mut s| {
        s.sort_unstable();
        s[s.len() / 2]
    })
}

fn report(label: &str, bytes: usize, ours: Duration, baselines: &[(&str, Duration)]) {
    let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    print!(
        "{label:<24} {bytes:>8} B  ours {:>9.2?} ({:>6.0} MB/s)",
        ours,
        mbps(ours)
    );
    for (name, d) in baselines {
        print!(
            "  | {name} {:>9.2?} ({:>6.0} MB/s) ratio {:.2}x",
            d,
            mbps(*d),
            d.as_secs_f64() / ours.as_secs_f64()
        );
    }
    println!();
}

fn bench_v04(label: &str, body: &[u8], budget: Duration) {
    let bytes = Bytes::copy_from_slice(body);
    let [ours, bottlecap, zero_copy] = compare(
        budget,
        [
            &mut || {
                black_box(decode_v04(black_box(body)).expect("decodes"));
            },
            &mut || {
                let full = Full::new(bytes.clone());
                black_box(ready(trace_utils::get_traces_from_request_body(full)).expect("decodes"));
            },
            &mut || {
                black_box(msgpack_decoder::v04::from_slice(black_box(body)).expect("decodes"));
            },
        ],
    );
    report(
        label,
        body.len(),
        ours,
        &[("bottlecap path", bottlecap), ("zero-copy", zero_copy)],
    );
}

fn bench_v05(label: &str, body: &[u8], budget: Duration) {
    let bytes = Bytes::copy_from_slice(body);
    let [ours, bottlecap, zero_copy] = compare(
        budget,
        [
            &mut || {
                black_box(decode_v05(black_box(body)).expect("decodes"));
            },
            &mut || {
                let full = Full::new(bytes.clone());
                black_box(
                    ready(trace_utils::get_v05_traces_from_request_body(full)).expect("decodes"),
                );
            },
            &mut || {
                black_box(msgpack_decoder::v05::from_slice(black_box(body)).expect("decodes"));
            },
        ],
    );
    report(
        label,
        body.len(),
        ours,
        &[("bottlecap path", bottlecap), ("zero-copy", zero_copy)],
    );
}

fn main() {
    // `cargo test --benches` runs this once as a smoke test: keep that quick.
    let budget = if std::env::args().any(|a| a == "--bench") {
        Duration::from_millis(1500)
    } else {
        Duration::from_millis(15)
    };
    // Optional: only the payloads whose label contains the first non-flag argument.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |label: &str| filter.as_deref().is_none_or(|f| label.contains(f));
    println!(
        "ratio = libdatadog time / ours (higher is better for us); goal >= 2x vs the bottlecap path"
    );
    let payloads: [(&str, bool, Vec<u8>); 6] = [
        ("python v0.4 (3 spans)", false, PYTHON_V04.to_vec()),
        ("node v0.4 (3 spans)", false, NODE_V04.to_vec()),
        ("python v0.5 (3 spans)", true, PYTHON_V05.to_vec()),
        ("python v0.4 x100", false, v04_batch(PYTHON_V04, 100)),
        ("node v0.4 x100", false, v04_batch(NODE_V04, 100)),
        ("python v0.5 x100", true, v05_batch(PYTHON_V05, 100)),
    ];
    for (label, v05, body) in payloads.iter().filter(|(l, ..)| wanted(l)) {
        if *v05 {
            bench_v05(label, body, budget);
        } else {
            bench_v04(label, body, budget);
        }
    }
}
