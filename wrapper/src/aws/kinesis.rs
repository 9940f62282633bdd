//! aws-sdk-kinesis: PutRecord and PutRecords get `_datadog` inside the record's data, when the
//! data is a JSON object and the record stays within 1 MiB; anything else is left untouched.
//! The topic tag is the stream ARN when given, else the stream name.

use aws_sdk_kinesis::operation::put_record::PutRecordInput;
use aws_sdk_kinesis::operation::put_records::PutRecordsInput;
use aws_smithy_runtime_api::client::interceptors::context::Input;
use aws_smithy_types::Blob;
use serde_json::{Map, Value};

use super::{DATADOG_KEY, MAX_KINESIS_RECORD_BYTES, Skip, count, produce_carrier};

pub(super) fn put_record(input: &mut Input) -> bool {
    let Some(r) = input.downcast_mut::<PutRecordInput>() else {
        return false;
    };
    let stream = stream(r.stream_arn.as_deref(), r.stream_name.as_deref());
    let key_len = r.partition_key.as_ref().map_or(0, String::len);
    if let Some(data) = r.data.as_mut() {
        inject(&stream, data, key_len);
    }
    true
}

pub(super) fn put_records(input: &mut Input) -> bool {
    let Some(r) = input.downcast_mut::<PutRecordsInput>() else {
        return false;
    };
    let stream = stream(r.stream_arn.as_deref(), r.stream_name.as_deref());
    for entry in r.records.iter_mut().flatten() {
        let key_len = entry.partition_key.as_ref().map_or(0, String::len);
        inject(&stream, &mut entry.data, key_len);
    }
    true
}

fn stream(arn: Option<&str>, name: Option<&str>) -> String {
    arn.or(name).unwrap_or("").to_owned()
}

fn inject(stream: &str, data: &mut Blob, key_len: usize) {
    let Some(carrier) = produce_carrier("kinesis", stream, data.as_ref().len() as u64) else {
        return;
    };
    count(
        inject_into(data.as_ref(), carrier, key_len).map(|new| *data = Blob::new(new)),
        "kinesis",
    );
}

/// The data with `_datadog` added, or why it stays as it is.
fn inject_into(data: &[u8], carrier: Map<String, Value>, key_len: usize) -> Result<Vec<u8>, Skip> {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(data) else {
        return Err(Skip::NotJson);
    };
    object.insert(DATADOG_KEY.to_owned(), Value::Object(carrier));
    let out = serde_json::to_vec(&object).map_err(|_| Skip::NotJson)?;
    if out.len() + key_len > MAX_KINESIS_RECORD_BYTES {
        return Err(Skip::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("dd-pathway-ctx-base64".into(), "x".into());
        m
    }

    #[test]
    fn json_objects_only_and_within_the_limit() {
        let out = inject_into(br#"{"a":1}"#, carrier(), 3).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["_datadog"]["dd-pathway-ctx-base64"], "x");
        assert!(matches!(
            inject_into(b"[1,2]", carrier(), 0),
            Err(Skip::NotJson)
        ));
        assert!(matches!(
            inject_into(b"\x00\x01binary", carrier(), 0),
            Err(Skip::NotJson)
        ));
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_KINESIS_RECORD_BYTES - 20));
        assert!(matches!(
            inject_into(big.as_bytes(), carrier(), 0),
            Err(Skip::TooLarge)
        ));
    }
}
