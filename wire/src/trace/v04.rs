//! v0.4: `[[span, …], …]`, each span a map with string keys.

use std::collections::BTreeMap;

use super::reader::{Reader, capacity};
use super::{DecodeError, ErrorKind, Location, finish, read};
use crate::{Span, SpanLink};

/// Decodes a v0.4 body into traces of spans.
///
/// Every field is optional (tracers omit zero values); unknown keys and the fields the span
/// model does not carry (`span_events`) are skipped.
pub fn decode_v04(body: &[u8]) -> Result<Vec<Vec<Span>>, DecodeError> {
    let mut r = Reader::new(body);
    let mut at = Location::default();
    let trace_count = read(&mut r, at, Reader::array_len)?;
    let mut traces = Vec::with_capacity(capacity(trace_count, &r));
    for t in 0..trace_count {
        at.trace = Some(t);
        at.span = None;
        let span_count = read(&mut r, at, Reader::array_len)?;
        let mut spans = Vec::with_capacity(capacity(span_count, &r));
        for s in 0..span_count {
            at.span = Some(s);
            spans.push(decode_span(&mut r, at)?);
        }
        traces.push(spans);
    }
    finish(&r, traces)
}

fn decode_span(r: &mut Reader<'_>, at: Location) -> Result<Span, DecodeError> {
    let field_count = read(r, at, Reader::map_len)?;
    let mut span = Span::default();
    for _ in 0..field_count {
        let key = read(r, at, Reader::str_bytes)?;
        let field = |name| Location {
            field: Some(name),
            ..at
        };
        match key {
            b"service" => span.service = read(r, field("service"), Reader::string)?,
            b"name" => span.name = read(r, field("name"), Reader::string)?,
            b"resource" => span.resource = read(r, field("resource"), Reader::string)?,
            b"type" => span.r#type = read(r, field("type"), Reader::string)?,
            b"trace_id" => span.trace_id = read(r, field("trace_id"), Reader::integer)?.as_u64(),
            b"span_id" => span.span_id = read(r, field("span_id"), Reader::integer)?.as_u64(),
            b"parent_id" => {
                span.parent_id = read(r, field("parent_id"), Reader::integer)?.as_u64();
            }
            b"start" => span.start = read(r, field("start"), Reader::integer)?.as_i64(),
            b"duration" => span.duration = read(r, field("duration"), Reader::integer)?.as_i64(),
            b"error" => span.error = read(r, field("error"), |r| r.integer()?.to_i32())?,
            b"meta" => span.meta = read(r, field("meta"), string_map)?,
            b"metrics" => span.metrics = read(r, field("metrics"), float_map)?,
            b"span_links" => span.span_links = read(r, field("span_links"), span_links)?,
            b"meta_struct" => span.meta_struct = read(r, field("meta_struct"), bytes_map)?,
            // span_events and keys from the future.
            _ => read(r, at, Reader::skip)?,
        }
    }
    Ok(span)
}

fn string_map(r: &mut Reader<'_>) -> Result<BTreeMap<String, String>, ErrorKind> {
    let mut map = BTreeMap::new();
    for _ in 0..r.map_len()? {
        // Inserting in place beats collecting, sorting and bulk-building: span maps are small
        // (one B-tree leaf holds 11 entries) and this spares an allocation per map.
        map.insert(r.string()?, r.string()?);
    }
    Ok(map)
}

/// `meta_struct`: string keys, `bin` values (kept as the tracer encoded them).
fn bytes_map(r: &mut Reader<'_>) -> Result<BTreeMap<String, Vec<u8>>, ErrorKind> {
    let mut map = BTreeMap::new();
    for _ in 0..r.map_len()? {
        map.insert(r.string()?, r.str_bytes()?.to_vec());
    }
    Ok(map)
}

fn float_map(r: &mut Reader<'_>) -> Result<BTreeMap<String, f64>, ErrorKind> {
    let mut map = BTreeMap::new();
    for _ in 0..r.map_len()? {
        map.insert(r.string()?, r.float()?);
    }
    Ok(map)
}

fn span_links(r: &mut Reader<'_>) -> Result<Vec<SpanLink>, ErrorKind> {
    let len = r.array_len()?;
    let mut links = Vec::with_capacity(capacity(len, r));
    for _ in 0..len {
        let mut link = SpanLink::default();
        for _ in 0..r.map_len()? {
            match r.str_bytes()? {
                b"trace_id" => link.trace_id = r.integer()?.as_u64(),
                b"trace_id_high" => link.trace_id_high = r.integer()?.as_u64(),
                b"span_id" => link.span_id = r.integer()?.as_u64(),
                b"attributes" => link.attributes = string_map(r)?,
                b"tracestate" => link.tracestate = r.string()?,
                b"flags" => link.flags = r.integer()?.to_u32()?,
                _ => r.skip()?,
            }
        }
        links.push(link);
    }
    Ok(links)
}
