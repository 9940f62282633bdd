//! v0.5: `[string table, [[span, …], …]]`, each span a 12-element array whose strings are
//! indices into the table.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::reader::{Reader, capacity};
use super::{DecodeError, ErrorKind, Location, finish, read};
use crate::Span;

/// Elements of a v0.5 span, in order.
const FIELDS: [&str; 12] = [
    "service",
    "name",
    "resource",
    "trace_id",
    "span_id",
    "parent_id",
    "start",
    "duration",
    "error",
    "meta",
    "metrics",
    "type",
];

/// Decodes a v0.5 body into traces of spans.
///
/// Strict where the format is: the body must be a 2-element array, the table must hold only
/// strings, every span must have 12 elements and every index must be inside the table (the
/// checks ddapm-test-agent makes).
pub fn decode_v05(body: &[u8]) -> Result<Vec<Vec<Span>>, DecodeError> {
    let mut r = Reader::new(body);
    let mut at = Location::default();
    read(&mut r, at, |r| match r.array_len()? {
        2 => Ok(()),
        n => Err(ErrorKind::V05BodyArity(n)),
    })?;
    let table = read(
        &mut r,
        Location {
            field: Some("string table"),
            ..at
        },
        string_table,
    )?;
    let trace_count = read(&mut r, at, Reader::array_len)?;
    let mut traces = Vec::with_capacity(capacity(trace_count, &r));
    for t in 0..trace_count {
        at.trace = Some(t);
        at.span = None;
        let span_count = read(&mut r, at, Reader::array_len)?;
        let mut spans = Vec::with_capacity(capacity(span_count, &r));
        for s in 0..span_count {
            at.span = Some(s);
            spans.push(decode_span(&mut r, at, &table)?);
        }
        traces.push(spans);
    }
    finish(&r, traces)
}

fn string_table<'a>(r: &mut Reader<'a>) -> Result<Vec<Cow<'a, str>>, ErrorKind> {
    let len = r.array_len()?;
    let mut table = Vec::with_capacity(capacity(len, r));
    for index in 0..len {
        if r.next_is_nil() {
            return Err(ErrorKind::V05TableEntry {
                index,
                found: "nil",
            });
        }
        table.push(r.str().map_err(|e| match e {
            ErrorKind::UnexpectedType { found, .. } => ErrorKind::V05TableEntry { index, found },
            other => other,
        })?);
    }
    Ok(table)
}

fn decode_span(
    r: &mut Reader<'_>,
    at: Location,
    table: &[Cow<'_, str>],
) -> Result<Span, DecodeError> {
    read(r, at, |r| match r.array_len()? {
        12 => Ok(()),
        n => Err(ErrorKind::V05SpanArity(n)),
    })?;
    let field = |i: usize| Location {
        field: Some(FIELDS[i]),
        ..at
    };
    let string = |r: &mut Reader<'_>| lookup(table, r);
    Ok(Span {
        service: read(r, field(0), string)?,
        name: read(r, field(1), string)?,
        resource: read(r, field(2), string)?,
        trace_id: read(r, field(3), Reader::integer)?.as_u64(),
        span_id: read(r, field(4), Reader::integer)?.as_u64(),
        parent_id: read(r, field(5), Reader::integer)?.as_u64(),
        start: read(r, field(6), Reader::integer)?.as_i64(),
        duration: read(r, field(7), Reader::integer)?.as_i64(),
        error: read(r, field(8), |r| r.integer()?.to_i32())?,
        meta: read(r, field(9), |r| {
            let mut map = BTreeMap::new();
            for _ in 0..r.map_len()? {
                map.insert(lookup(table, r)?, lookup(table, r)?);
            }
            Ok(map)
        })?,
        metrics: read(r, field(10), |r| {
            let mut map = BTreeMap::new();
            for _ in 0..r.map_len()? {
                map.insert(lookup(table, r)?, r.float()?);
            }
            Ok(map)
        })?,
        r#type: read(r, field(11), string)?,
        // v0.5 has no room for links or structured payloads.
        span_links: Vec::new(),
        meta_struct: BTreeMap::new(),
    })
}

fn lookup(table: &[Cow<'_, str>], r: &mut Reader<'_>) -> Result<String, ErrorKind> {
    let index = r.integer()?.as_u64();
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .map(|s| String::from(&**s))
        .ok_or(ErrorKind::V05StringIndex {
            index,
            len: table.len(),
        })
}
