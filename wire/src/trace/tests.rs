//! Golden payloads recorded from real tracers (tests/fixtures/payloads), checked field by field
//! against libdatadog's decoders (what the Datadog Lambda extension runs), plus hand-built bodies
//! for every shape and every error the decoders name.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body_util::Full;
use libdd_trace_protobuf::pb;
use libdd_trace_utils::trace_utils;

use super::*;
use crate::{Span, SpanLink};

const PYTHON_V04: &[u8] = include_bytes!("../../../tests/fixtures/payloads/python-v04.msgpack");
const PYTHON_V05: &[u8] = include_bytes!("../../../tests/fixtures/payloads/python-v05.msgpack");
const NODE_V04: &[u8] = include_bytes!("../../../tests/fixtures/payloads/node-v04.msgpack");

/// The oracle's decoders are async over an in-memory body: they finish on the first poll.
fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("an in-memory body never waits"),
    }
}

fn from_pb(span: pb::Span) -> Span {
    Span {
        service: span.service,
        name: span.name,
        resource: span.resource,
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_id: span.parent_id,
        start: span.start,
        duration: span.duration,
        error: span.error,
        meta: span.meta.into_iter().collect(),
        metrics: span.metrics.into_iter().collect(),
        r#type: span.r#type,
        meta_struct: span.meta_struct.into_iter().collect(),
        span_links: span
            .span_links
            .into_iter()
            .map(|l| SpanLink {
                trace_id: l.trace_id,
                trace_id_high: l.trace_id_high,
                span_id: l.span_id,
                attributes: l.attributes.into_iter().collect(),
                tracestate: l.tracestate,
                flags: l.flags,
            })
            .collect(),
    }
}

fn oracle_v04(body: &[u8]) -> Vec<Vec<Span>> {
    let (_, traces) = ready(trace_utils::get_traces_from_request_body(Full::new(
        Bytes::copy_from_slice(body),
    )))
    .expect("libdatadog decodes the fixture");
    traces
        .into_iter()
        .map(|t| t.into_iter().map(from_pb).collect())
        .collect()
}

fn oracle_v05(body: &[u8]) -> Vec<Vec<Span>> {
    let (_, traces) = ready(trace_utils::get_v05_traces_from_request_body(Full::new(
        Bytes::copy_from_slice(body),
    )))
    .expect("libdatadog decodes the fixture");
    traces
        .into_iter()
        .map(|t| t.into_iter().map(from_pb).collect())
        .collect()
}

#[test]
fn python_v04_matches_libdatadog_field_by_field() {
    let ours = decode_v04(PYTHON_V04).unwrap();
    assert_eq!(ours, oracle_v04(PYTHON_V04));
    let spans = &ours[0];
    assert_eq!(spans.len(), 3);
    let root = &spans[0];
    assert_eq!(root.name, "web.request");
    assert_eq!(root.service, "demo-svc");
    assert_eq!(root.meta["customer.tier"], "gold");
    assert_eq!(root.metrics["orders.count"], 3.0);
    assert_eq!(root.span_links.len(), 1);
    assert_eq!(root.span_links[0].trace_id_high, 0x1234567890ABCDEF);
    assert_eq!(root.span_links[0].trace_id, 0x1122334455667788);
    assert_eq!(root.span_links[0].span_id, 0x0A0B0C0D);
    assert_eq!(root.span_links[0].attributes["link.kind"], "follows");
    // Python omits parent_id and error on the root: they default to 0.
    assert_eq!((root.parent_id, root.error), (0, 0));
    let failed = &spans[2];
    assert_eq!(failed.error, 1);
    assert_eq!(failed.meta["error.type"], "builtins.ValueError");
    assert_eq!(failed.parent_id, root.span_id);
}

#[test]
fn python_v05_matches_libdatadog_field_by_field() {
    let ours = decode_v05(PYTHON_V05).unwrap();
    assert_eq!(ours, oracle_v05(PYTHON_V05));
    let spans = &ours[0];
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[1].name, "db.query");
    assert_eq!(spans[1].r#type, "sql");
    assert_eq!(spans[2].error, 1);
    assert!(spans[0].meta.contains_key("_dd.span_links"));
}

#[test]
fn node_v04_matches_libdatadog_field_by_field() {
    // Node: array32/map32 headers, integer metrics, parent_id and error always present.
    let ours = decode_v04(NODE_V04).unwrap();
    assert_eq!(ours, oracle_v04(NODE_V04));
    let root = &ours[0][0];
    assert_eq!(root.span_id, root.trace_id);
    assert_eq!(root.metrics["_sampling_priority_v1"], 1.0);
    assert_eq!(
        ours[0][2].meta["error.message"],
        "cache miss is not an option"
    );
}

// ---- hand-built bodies ------------------------------------------------------------------

fn str(out: &mut Vec<u8>, s: &str) {
    rmp::encode::write_str(out, s).unwrap();
}

#[test]
fn every_integer_width_and_sign_is_accepted() {
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_array_len(&mut b, 5).unwrap();
    // fixint, u8, u16, i32, i64
    let writers: [fn(&mut Vec<u8>); 5] = [
        |b| rmp::encode::write_pfix(b, 7).unwrap(),
        |b| rmp::encode::write_u8(b, 7).unwrap(),
        |b| rmp::encode::write_u16(b, 7).unwrap(),
        |b| rmp::encode::write_i32(b, 7).unwrap(),
        |b| rmp::encode::write_i64(b, 7).unwrap(),
    ];
    for write in writers {
        rmp::encode::write_map_len(&mut b, 5).unwrap();
        for key in ["trace_id", "span_id", "start", "duration", "error"] {
            str(&mut b, key);
            if key == "error" {
                rmp::encode::write_u32(&mut b, 1).unwrap();
            } else {
                write(&mut b);
            }
        }
    }
    let traces = decode_v04(&b).unwrap();
    for span in &traces[0] {
        assert_eq!(
            (span.trace_id, span.span_id, span.start, span.duration),
            (7, 7, 7, 7)
        );
        assert_eq!(span.error, 1);
    }
}

#[test]
fn signed_ids_are_reinterpreted_like_the_agent_does() {
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_map_len(&mut b, 2).unwrap();
    str(&mut b, "trace_id");
    rmp::encode::write_i64(&mut b, -1).unwrap();
    str(&mut b, "span_id");
    rmp::encode::write_nfix(&mut b, -2).unwrap();
    let span = &decode_v04(&b).unwrap()[0][0];
    assert_eq!(span.trace_id, u64::MAX);
    assert_eq!(span.span_id, u64::MAX - 1);
}

#[test]
fn big_headers_nil_fields_floats_and_unknown_keys() {
    let mut b = vec![0xdd, 0, 0, 0, 1]; // array32 of 1 trace
    b.extend([0xdc, 0, 1]); // array16 of 1 span
    b.extend([0xdf, 0, 0, 0, 8]); // map32 of 8 fields
    str(&mut b, "service");
    b.push(0xc0); // nil string
    str(&mut b, "meta");
    b.extend([0xde, 0, 1]); // map16
    str(&mut b, "k");
    str(&mut b, "v");
    str(&mut b, "metrics");
    rmp::encode::write_map_len(&mut b, 3).unwrap();
    str(&mut b, "f32");
    rmp::encode::write_f32(&mut b, 1.5).unwrap();
    str(&mut b, "neg");
    rmp::encode::write_i8(&mut b, -3).unwrap();
    str(&mut b, "big");
    rmp::encode::write_u64(&mut b, 1 << 40).unwrap();
    str(&mut b, "meta_struct");
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    str(&mut b, "appsec");
    rmp::encode::write_bin(&mut b, &[1, 2, 3]).unwrap();
    str(&mut b, "span_events");
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_map_len(&mut b, 2).unwrap();
    str(&mut b, "name");
    str(&mut b, "exception");
    str(&mut b, "attributes");
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    str(&mut b, "nested");
    rmp::encode::write_array_len(&mut b, 2).unwrap();
    rmp::encode::write_bool(&mut b, true).unwrap();
    rmp::encode::write_ext_meta(&mut b, 2, 5).unwrap();
    b.extend([9, 9]);
    str(&mut b, "a_future_key");
    rmp::encode::write_f64(&mut b, 2.0).unwrap();
    str(&mut b, "duration");
    b.push(0xc0); // nil integer
    str(&mut b, "name");
    rmp::encode::write_bin(&mut b, b"from-bin").unwrap();
    let span = &decode_v04(&b).unwrap()[0][0];
    assert_eq!(span.service, "");
    assert_eq!(span.name, "from-bin");
    assert_eq!(span.duration, 0);
    assert_eq!(span.meta, BTreeMap::from([("k".into(), "v".into())]));
    assert_eq!(span.metrics["f32"], 1.5);
    assert_eq!(span.metrics["neg"], -3.0);
    assert_eq!(span.metrics["big"], (1u64 << 40) as f64);
    assert_eq!(span.meta_struct["appsec"], [1, 2, 3]);
}

#[test]
fn invalid_utf8_is_repaired_not_refused() {
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    str(&mut b, "name");
    rmp::encode::write_str_len(&mut b, 3).unwrap();
    b.extend([b'o', 0xff, b'k']);
    assert_eq!(decode_v04(&b).unwrap()[0][0].name, "o\u{fffd}k");
}

#[test]
fn errors_name_trace_span_and_field() {
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_array_len(&mut b, 2).unwrap();
    rmp::encode::write_map_len(&mut b, 0).unwrap();
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    str(&mut b, "duration");
    let offset = b.len();
    str(&mut b, "soon");
    let err = decode_v04(&b).unwrap_err();
    assert_eq!(err.offset, offset);
    assert_eq!(
        err.to_string(),
        format!("trace 0 span 1: field `duration`: expected integer, found str (at byte {offset})")
    );
}

#[test]
fn a_truncated_body_says_so() {
    let cut = &PYTHON_V04[..PYTHON_V04.len() - 10];
    let err = decode_v04(cut).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Truncated { .. }), "{err}");
    assert_eq!(err.location.trace, Some(0));
    assert_eq!(err.location.span, Some(2));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut b = PYTHON_V04.to_vec();
    b.push(0x90);
    let err = decode_v04(&b).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TrailingBytes(1));
}

#[test]
fn lying_length_headers_do_not_allocate_or_loop() {
    // Four billion traces announced, none present.
    assert!(matches!(
        decode_v04(&[0xdd, 0xff, 0xff, 0xff, 0xff])
            .unwrap_err()
            .kind,
        ErrorKind::Truncated { .. }
    ));
    // An unknown key whose value announces four billion map entries.
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    str(&mut b, "x");
    b.extend([0xdf, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        decode_v04(&b).unwrap_err().kind,
        ErrorKind::Truncated { .. }
    ));
}

#[test]
fn not_msgpack_at_all() {
    let err = decode_v04(b"{\"traces\": []}").unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::UnexpectedType {
            expected: "array",
            found: "integer"
        }
    );
    assert!(decode_v04(b"").is_err());
}

#[test]
fn an_out_of_range_error_field_is_refused() {
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    str(&mut b, "error");
    rmp::encode::write_u64(&mut b, u64::MAX).unwrap();
    let err = decode_v04(&b).unwrap_err();
    assert_eq!(err.location.field, Some("error"));
    assert!(matches!(
        err.kind,
        ErrorKind::OutOfRange { target: "i32", .. }
    ));
}

// ---- v0.5 --------------------------------------------------------------------------------

fn v05(table: &[&str], spans: &[&[u64]]) -> Vec<u8> {
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 2).unwrap();
    rmp::encode::write_array_len(&mut b, table.len() as u32).unwrap();
    for s in table {
        str(&mut b, s);
    }
    rmp::encode::write_array_len(&mut b, 1).unwrap();
    rmp::encode::write_array_len(&mut b, spans.len() as u32).unwrap();
    for span in spans {
        rmp::encode::write_array_len(&mut b, span.len() as u32).unwrap();
        for (i, &v) in span.iter().enumerate() {
            match i {
                9 | 10 => drop(rmp::encode::write_map_len(&mut b, 0).unwrap()),
                _ => rmp::encode::write_uint(&mut b, v).map(|_| ()).unwrap(),
            }
        }
    }
    b
}

#[test]
fn v05_decodes_a_minimal_span() {
    let b = v05(
        &["", "svc", "op", "res", "web"],
        &[&[1, 2, 3, 10, 11, 0, 5, 6, 0, 0, 0, 4]],
    );
    let span = &decode_v05(&b).unwrap()[0][0];
    assert_eq!(
        (&*span.service, &*span.name, &*span.resource),
        ("svc", "op", "res")
    );
    assert_eq!(
        (span.trace_id, span.span_id, span.r#type.as_str()),
        (10, 11, "web")
    );
}

#[test]
fn v05_checks_arity_indices_and_table() {
    let short = v05(&[""], &[&[0; 11]]);
    assert_eq!(
        decode_v05(&short).unwrap_err().kind,
        ErrorKind::V05SpanArity(11)
    );

    let bad_index = v05(&["", "svc"], &[&[1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
    let err = decode_v05(&bad_index).unwrap_err();
    assert_eq!(err.kind, ErrorKind::V05StringIndex { index: 7, len: 2 });
    assert_eq!(err.location.field, Some("name"));
    assert_eq!(err.location.span, Some(0));

    let mut not_a_string = Vec::new();
    rmp::encode::write_array_len(&mut not_a_string, 2).unwrap();
    rmp::encode::write_array_len(&mut not_a_string, 2).unwrap();
    str(&mut not_a_string, "");
    rmp::encode::write_u8(&mut not_a_string, 4).unwrap();
    rmp::encode::write_array_len(&mut not_a_string, 0).unwrap();
    assert_eq!(
        decode_v05(&not_a_string).unwrap_err().kind,
        ErrorKind::V05TableEntry {
            index: 1,
            found: "integer"
        }
    );

    // A v0.4 body sent to the v0.5 route.
    assert_eq!(
        decode_v05(PYTHON_V04).unwrap_err().kind,
        ErrorKind::V05BodyArity(1)
    );
}

#[test]
fn every_prefix_and_every_byte_flip_is_an_error_or_a_decode_never_a_panic() {
    for (body, decode) in [
        (
            PYTHON_V04,
            decode_v04 as fn(&[u8]) -> Result<Vec<Vec<Span>>, DecodeError>,
        ),
        (NODE_V04, decode_v04),
        (PYTHON_V05, decode_v05),
    ] {
        for len in 0..body.len() {
            assert!(decode(&body[..len]).is_err(), "a {len}-byte prefix decoded");
        }
        let mut flipped = body.to_vec();
        for i in 0..flipped.len() {
            for mask in [0x01, 0x10, 0x80, 0xff] {
                flipped[i] ^= mask;
                let _ = decode(&flipped);
                flipped[i] ^= mask;
            }
        }
    }
}
