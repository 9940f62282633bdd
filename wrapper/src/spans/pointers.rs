//! Span pointers: links from the consumer of an S3 notification or a DynamoDB stream record to
//! the producer's `PutObject` / `PutItem` span, without any propagated context.
//!
//! Both sides hash what they know of the object or item the same way (SHA-256 over the
//! `|`-joined components, 32 hex digits); the backend joins the consumer's upstream pointer
//! (`ptr.dir=u`) to the producer's downstream one. The records taken, skipped and encoded are
//! datadog-lambda 8.130.0's (`span_pointers.py`, with ddtrace's hashing rules in
//! `utils_botocore/span_pointers/`), except where noted on [`for_event`].

use std::collections::BTreeMap;

use ddlambda_wire::SpanLink;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::trigger::EventSource;

/// `ptr.kind` of an S3 object.
pub const S3_OBJECT: &str = "aws.s3.object";
/// `ptr.kind` of a DynamoDB item.
pub const DYNAMODB_ITEM: &str = "aws.dynamodb.item";

/// One upstream span pointer: what was written, identified by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanPointer {
    /// [`S3_OBJECT`] or [`DYNAMODB_ITEM`].
    pub kind: &'static str,
    /// The first 32 hex digits of the SHA-256 of the components.
    pub hash: String,
}

impl SpanPointer {
    /// The span link carrying the pointer, as ddtrace's `Span._add_span_pointer` encodes it in
    /// v0.4: zero trace and span ids, no flags, no tracestate, the `ptr.*` attributes and
    /// `link.kind=span-pointer`.
    pub fn into_link(self) -> SpanLink {
        let attributes = BTreeMap::from([
            ("link.kind".to_owned(), "span-pointer".to_owned()),
            ("ptr.kind".to_owned(), self.kind.to_owned()),
            // Upstream: the consumer's end of the pointer.
            ("ptr.dir".to_owned(), "u".to_owned()),
            ("ptr.hash".to_owned(), self.hash),
        ]);
        SpanLink {
            attributes,
            ..SpanLink::default()
        }
    }
}

/// Why a record yields no pointer (logged at debug level; the other records still count).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Skip {
    #[error("the record is not an object")]
    NotObject,
    #[error("`{0}` is missing")]
    Missing(&'static str),
    #[error("`{0}` is not a string")]
    NotString(&'static str),
    #[error("`{0}` is not an object")]
    NotMap(&'static str),
    #[error("`{0}` is not ASCII")]
    NotAscii(&'static str),
    #[error("the ETag has a double quote inside it")]
    QuotedEtag,
    #[error("eventSourceARN is not a DynamoDB stream ARN (arn:aws:dynamodb:…:table/T/stream/…)")]
    StreamArn,
    #[error("the primary key has {0} attributes, not 1 or 2")]
    KeyCount(usize),
    #[error("key attribute `{0}` is not a single S, N or B string value")]
    KeyValue(String),
}

/// The pointers of an S3 (`ObjectCreated:*`) or DynamoDB stream event: one per record that
/// identifies an object or item, in record order; nothing for other events.
///
/// Deliberate differences from datadog-lambda 8.130.0:
/// - a malformed record (no `eventName`, an `s3`, `bucket`, `object` or first `dynamodb` that
///   is not an object, a record that is not an object) is skipped alone; datadog-lambda's
///   exception escapes the per-record handling and drops every pointer of the event;
/// - an S3 ETag in double quotes is unquoted first (as ddtrace does for the producer's
///   `PutObject` response, and as bottlecap and datadog-lambda-js do), so it still meets the
///   producer's pointer; datadog-lambda refuses such an ETag and writes no pointer.
pub fn for_event(event: &Value, source: EventSource) -> Vec<SpanPointer> {
    let record_pointer: fn(&Value) -> Result<Option<SpanPointer>, Skip> = match source {
        EventSource::S3 => s3_record,
        EventSource::DynamoDb => dynamodb_record,
        _ => return Vec::new(),
    };
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return Vec::new();
    };
    records
        .iter()
        .enumerate()
        .filter_map(|(i, record)| {
            record_pointer(record)
                .inspect_err(|e| tracing::debug!("ddlambda: no span pointer for record {i}: {e}"))
                .ok()
                .flatten()
        })
        .collect()
}

/// An S3 notification record: `ObjectCreated:*` records only (a removed or restored object was
/// not written by anyone to link to).
fn s3_record(record: &Value) -> Result<Option<SpanPointer>, Skip> {
    let record = record.as_object().ok_or(Skip::NotObject)?;
    let name = record.get("eventName").ok_or(Skip::Missing("eventName"))?;
    let name = name.as_str().ok_or(Skip::NotString("eventName"))?;
    if !name.starts_with("ObjectCreated:") {
        return Ok(None);
    }
    let s3 = match record.get("s3") {
        None | Some(Value::Null) => return Ok(None),
        Some(s3) => s3.as_object().ok_or(Skip::NotMap("s3"))?,
    };
    let bucket = map_at(s3, "bucket", "s3.bucket")?;
    let object = map_at(s3, "object", "s3.object")?;
    let bucket = str_at(bucket, "name", "s3.bucket.name")?;
    let key = str_at(object, "key", "s3.object.key")?;
    let etag = str_at(object, "eTag", "s3.object.eTag")?;
    s3_object_hash(bucket, key, etag).map(|hash| {
        Some(SpanPointer {
            kind: S3_OBJECT,
            hash,
        })
    })
}

/// The hash of an S3 object: bucket, key and ETag, the ETag without surrounding quotes.
///
/// The key is hashed as the event gives it: S3 URL-encodes keys in notifications (`a b.txt`
/// arrives as `a+b.txt`) and, like every Datadog library, this does not decode them.
pub fn s3_object_hash(bucket: &str, key: &str, etag: &str) -> Result<String, Skip> {
    let etag = etag
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag);
    if etag.contains('"') {
        return Err(Skip::QuotedEtag);
    }
    if !bucket.is_ascii() {
        return Err(Skip::NotAscii("s3.bucket.name"));
    }
    if !etag.is_ascii() {
        return Err(Skip::NotAscii("s3.object.eTag"));
    }
    Ok(hash(&[bucket.as_bytes(), key.as_bytes(), etag.as_bytes()]))
}

/// A DynamoDB stream record, whatever its `eventName` (an insert, a modification and a removal
/// were each written by someone): the table from `eventSourceARN`, the item from
/// `dynamodb.Keys`.
fn dynamodb_record(record: &Value) -> Result<Option<SpanPointer>, Skip> {
    let record = record.as_object().ok_or(Skip::NotObject)?;
    let arn = str_at(record, "eventSourceARN", "eventSourceARN")?;
    let table = table_from_stream_arn(arn).ok_or(Skip::StreamArn)?;
    let keys = map_at(record, "dynamodb", "dynamodb")?
        .get("Keys")
        .ok_or(Skip::Missing("dynamodb.Keys"))?
        .as_object()
        .ok_or(Skip::NotMap("dynamodb.Keys"))?;
    dynamodb_item_hash(table, keys).map(|hash| {
        Some(SpanPointer {
            kind: DYNAMODB_ITEM,
            hash,
        })
    })
}

/// The table of `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<timestamp>`, checked
/// as datadog-lambda checks it (the `aws` partition only; exactly four path segments).
fn table_from_stream_arn(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, _region, _account, resource] = parts[..] else {
        return None;
    };
    if (prefix, partition, service) != ("arn", "aws", "dynamodb") {
        return None;
    }
    let segments: Vec<&str> = resource.split('/').collect();
    match segments[..] {
        ["table", table, "stream", _] => Some(table),
        _ => None,
    }
}

/// The hash of a DynamoDB item: the table, then each primary key attribute's name and value,
/// attributes in byte order of their names, and two empty components for a key without a
/// sort key. `S` values are hashed as UTF-8, `N` and `B` as the ASCII text the stream gives
/// (for `B`, its base64 — as datadog-lambda does).
pub fn dynamodb_item_hash(table: &str, keys: &Map<String, Value>) -> Result<String, Skip> {
    let mut attributes: Vec<(&String, &Value)> = keys.iter().collect();
    if !(1..=2).contains(&attributes.len()) {
        return Err(Skip::KeyCount(attributes.len()));
    }
    attributes.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut parts: Vec<&[u8]> = Vec::with_capacity(5);
    parts.push(table.as_bytes());
    for (name, value) in &attributes {
        parts.push(name.as_bytes());
        parts.push(key_value(name, value)?);
    }
    if attributes.len() == 1 {
        parts.extend([b"".as_slice(), b"".as_slice()]);
    }
    Ok(hash(&parts))
}

/// A key attribute's value: `{"S": "..."}`, `{"N": "..."}` or `{"B": "..."}`.
fn key_value<'a>(name: &str, value: &'a Value) -> Result<&'a [u8], Skip> {
    let bad = || Skip::KeyValue(name.to_owned());
    let typed = value.as_object().filter(|v| v.len() == 1).ok_or_else(bad)?;
    match typed.iter().next() {
        Some((kind, Value::String(text))) if kind == "S" => Ok(text.as_bytes()),
        Some((kind, Value::String(text))) if (kind == "N" || kind == "B") && text.is_ascii() => {
            Ok(text.as_bytes())
        }
        _ => Err(bad()),
    }
}

/// ddtrace's `_standard_hashing_function`: SHA-256 over the `|`-joined components, the first
/// 16 bytes in lowercase hex.
fn hash(components: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for (i, component) in components.iter().enumerate() {
        if i > 0 {
            hasher.update(b"|");
        }
        hasher.update(component);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(32);
    for byte in &digest[..16] {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn map_at<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<&'a Map<String, Value>, Skip> {
    map.get(key)
        .ok_or(Skip::Missing(path))?
        .as_object()
        .ok_or(Skip::NotMap(path))
}

fn str_at<'a>(map: &'a Map<String, Value>, key: &str, path: &'static str) -> Result<&'a str, Skip> {
    map.get(key)
        .ok_or(Skip::Missing(path))?
        .as_str()
        .ok_or(Skip::NotString(path))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn s3_event(records: Value) -> Value {
        json!({ "Records": records })
    }

    fn s3_put(bucket: &str, key: &str, etag: &str) -> Value {
        json!({
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": { "bucket": { "name": bucket }, "object": { "key": key, "eTag": etag } }
        })
    }

    fn hashes(event: &Value, source: EventSource) -> Vec<String> {
        for_event(event, source)
            .into_iter()
            .map(|p| p.hash)
            .collect()
    }

    /// ddtrace's and bottlecap's published vectors for the standard hash.
    #[test]
    fn s3_hash_vectors() {
        for (key, etag, want) in [
            (
                "some-key.data",
                "ab12ef34",
                "e721375466d4116ab551213fdea08413",
            ),
            (
                "some-key.你好",
                "ab12ef34",
                "d1333a04b9928ab462b5c6cadfa401f4",
            ),
            (
                "some-key.data",
                "ab12ef34-5",
                "2b90dffc37ebc7bc610152c3dc72af9f",
            ),
            (
                "some-key.data",
                "\"ab12ef34\"",
                "e721375466d4116ab551213fdea08413",
            ),
        ] {
            assert_eq!(
                s3_object_hash("some-bucket", key, etag).as_deref(),
                Ok(want),
                "{key} {etag}"
            );
        }
    }

    /// DynamoDB vectors, as ddtrace 4.16.0's `_aws_dynamodb_item_span_pointer_hash` computes them.
    #[test]
    fn dynamodb_hash_vectors() {
        let keys = |v: Value| v.as_object().cloned().expect("object");
        assert_eq!(
            dynamodb_item_hash(
                "some-table",
                &keys(json!({"some-key": {"S": "some-value"}}))
            )
            .as_deref(),
            Ok("7f1aee721472bcb48701d45c7c7f7821")
        );
        let composite = dynamodb_item_hash(
            "some-table",
            &keys(json!({"other-key": {"N": "123"}, "some-key": {"S": "some-value"}})),
        );
        // Attribute order in the record does not matter: names are sorted.
        let reversed = dynamodb_item_hash(
            "some-table",
            &keys(json!({"some-key": {"S": "some-value"}, "other-key": {"N": "123"}})),
        );
        assert_eq!(composite, reversed);
        assert_eq!(composite.as_deref(), Ok("7aa1b80b0e49bd2078a5453399f4dd67"));
    }

    #[test]
    fn s3_takes_created_objects_of_every_record() {
        let event = s3_event(json!([
            s3_put("b", "k1", "e1"),
            { "eventName": "ObjectRemoved:Delete", "s3": { "bucket": { "name": "b" }, "object": { "key": "k" } } },
            s3_put("b", "k2", "e2"),
        ]));
        let pointers = for_event(&event, EventSource::S3);
        assert_eq!(pointers.len(), 2);
        assert_eq!(pointers[0].kind, S3_OBJECT);
        assert_eq!(pointers[0].hash, s3_object_hash("b", "k1", "e1").unwrap());
        assert_eq!(pointers[1].hash, s3_object_hash("b", "k2", "e2").unwrap());
        // The same event announced as another source has no pointers.
        assert!(for_event(&event, EventSource::Sqs).is_empty());
    }

    #[test]
    fn a_malformed_s3_record_is_skipped_alone() {
        let good = s3_put("b", "k", "e");
        let want = s3_object_hash("b", "k", "e").unwrap();
        for bad in [
            json!("not a record"),
            json!({ "s3": {} }),
            json!({ "eventName": 7 }),
            json!({ "eventName": "ObjectCreated:Put", "s3": "x" }),
            json!({ "eventName": "ObjectCreated:Put", "s3": { "bucket": null, "object": {} } }),
            json!({ "eventName": "ObjectCreated:Put", "s3": { "bucket": { "name": "b" }, "object": { "key": "k" } } }),
            json!({ "eventName": "ObjectCreated:Put", "s3": { "bucket": { "name": "b" }, "object": { "key": "k", "eTag": 5 } } }),
            s3_put("bücket", "k", "e"),
            s3_put("b", "k", "e\"tag"),
            s3_put("b", "k", "é"),
            s3_put("b", "k", "\""),
            json!({ "eventName": "ObjectCreated", "s3": good["s3"].clone() }),
        ] {
            let event = s3_event(json!([bad.clone(), good.clone()]));
            assert_eq!(hashes(&event, EventSource::S3), [want.as_str()], "{bad}");
        }
    }

    #[test]
    fn dynamodb_takes_every_record() {
        let record = |arn: &str, keys: Value| json!({ "eventName": "REMOVE", "eventSourceARN": arn, "dynamodb": { "Keys": keys } });
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/some-table/stream/2024-06-10T19:26:16.525";
        let event = json!({ "Records": [
            record(arn, json!({"some-key": {"S": "some-value"}})),
            record("arn:aws-cn:dynamodb:cn-north-1:1:table/t/stream/x", json!({"k": {"S": "v"}})),
            record("arn:aws:dynamodb:us-east-1:1:table/t", json!({"k": {"S": "v"}})),
            record("arn:aws:dynamodb:us-east-1:1:table/t/stream/x/y", json!({"k": {"S": "v"}})),
            record(arn, json!({})),
            record(arn, json!({"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}})),
            record(arn, json!({"k": {"BOOL": true}})),
            record(arn, json!({"k": {"N": 5}})),
            record(arn, json!({"k": {"S": "v", "N": "1"}})),
            record(arn, json!({"k": "bare"})),
            record(arn, json!({"k": {"N": "١٢"}})),
            json!({ "eventSourceARN": arn }),
            json!({ "eventSourceARN": arn, "dynamodb": "x" }),
            json!(null),
            record(arn, json!({"other-key": {"N": "123"}, "some-key": {"S": "some-value"}})),
        ]});
        assert_eq!(
            hashes(&event, EventSource::DynamoDb),
            [
                "7f1aee721472bcb48701d45c7c7f7821",
                "7aa1b80b0e49bd2078a5453399f4dd67"
            ]
        );
    }

    #[test]
    fn link_is_a_span_pointer() {
        let link = SpanPointer {
            kind: DYNAMODB_ITEM,
            hash: "h".into(),
        }
        .into_link();
        assert_eq!((link.trace_id, link.trace_id_high, link.span_id), (0, 0, 0));
        assert_eq!((link.flags, link.tracestate.as_str()), (0, ""));
        assert_eq!(link.attributes["link.kind"], "span-pointer");
        assert_eq!(link.attributes["ptr.kind"], DYNAMODB_ITEM);
        assert_eq!(link.attributes["ptr.dir"], "u");
        assert_eq!(link.attributes["ptr.hash"], "h");
    }

    #[test]
    fn events_without_records_have_none() {
        for event in [json!({}), json!({"Records": {}}), json!(null), json!([1])] {
            assert!(for_event(&event, EventSource::S3).is_empty());
            assert!(for_event(&event, EventSource::DynamoDb).is_empty());
        }
    }
}
