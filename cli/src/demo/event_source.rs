//! The Lambda event source mappings: reads what reached the queue or stream through the SDK
//! (`ReceiveMessage`, `GetShardIterator` + `GetRecords`) and builds the events Lambda would
//! hand the next function, in Lambda's JSON shapes (`aws_lambda_events`' `SqsEvent`,
//! `KinesisEvent`): message attributes and base64 data as they were sent.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::DemoError;
use super::resources::Resources;

/// Lambda's default batch sizes: 10 for SQS, 100 for Kinesis.
pub const SQS_BATCH: usize = 10;
pub const KINESIS_BATCH: usize = 100;

/// Receives `want` messages (deleting them) within `limit`; their Lambda SQS records.
pub async fn receive_sqs(
    r: &Resources,
    region: &str,
    want: usize,
    limit: Duration,
) -> Result<Vec<Value>, DemoError> {
    let deadline = Instant::now() + limit;
    let mut records = Vec::with_capacity(want);
    while records.len() < want {
        if Instant::now() > deadline {
            return Err(DemoError::Timeout(format!(
                "{want} messages on {} (got {})",
                r.queue_url,
                records.len()
            )));
        }
        let out = r
            .sqs
            .receive_message()
            .queue_url(&r.queue_url)
            .max_number_of_messages(SQS_BATCH as i32)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| DemoError::aws("SQS ReceiveMessage", e))?;
        let messages = out.messages.unwrap_or_default();
        let handles: Vec<_> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let handle = m.receipt_handle.clone()?;
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(handle)
                    .build()
                    .ok()
            })
            .collect();
        if !handles.is_empty() {
            r.sqs
                .delete_message_batch()
                .queue_url(&r.queue_url)
                .set_entries(Some(handles))
                .send()
                .await
                .map_err(|e| DemoError::aws("SQS DeleteMessageBatch", e))?;
        }
        records.extend(messages.iter().map(|m| sqs_record(m, &r.queue_arn, region)));
    }
    Ok(records)
}

/// One record of a Lambda SQS event.
fn sqs_record(m: &aws_sdk_sqs::types::Message, queue_arn: &str, region: &str) -> Value {
    let attributes: Map<String, Value> = m
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let mut a = json!({
                "dataType": v.data_type(),
                "stringListValues": [],
                "binaryListValues": [],
            });
            if let Some(s) = v.string_value() {
                a["stringValue"] = s.into();
            }
            if let Some(b) = v.binary_value() {
                a["binaryValue"] = STANDARD.encode(b.as_ref()).into();
            }
            (k.clone(), a)
        })
        .collect();
    let system: Map<String, Value> = m
        .attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.as_str())))
        .collect();
    json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": system,
        "messageAttributes": attributes,
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    })
}

/// Reads `want` records from the stream's first shard, from its start, within `limit`; their
/// Lambda Kinesis records.
pub async fn read_kinesis(
    r: &Resources,
    region: &str,
    want: usize,
    limit: Duration,
) -> Result<Vec<Value>, DemoError> {
    let shard = r
        .kinesis
        .list_shards()
        .stream_name(&r.stream_name)
        .send()
        .await
        .map_err(|e| DemoError::aws("Kinesis ListShards", e))?
        .shards
        .and_then(|s| s.into_iter().next())
        .ok_or_else(|| DemoError::missing("Kinesis ListShards", "Shards"))?
        .shard_id;
    let mut iterator = r
        .kinesis
        .get_shard_iterator()
        .stream_name(&r.stream_name)
        .shard_id(&shard)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .map_err(|e| DemoError::aws("Kinesis GetShardIterator", e))?
        .shard_iterator;
    let deadline = Instant::now() + limit;
    let mut records = Vec::with_capacity(want);
    while records.len() < want {
        let Some(it) = iterator.take() else {
            return Err(DemoError::missing(
                "Kinesis GetRecords",
                "NextShardIterator",
            ));
        };
        if Instant::now() > deadline {
            return Err(DemoError::Timeout(format!(
                "{want} records on {} (got {})",
                r.stream_name,
                records.len()
            )));
        }
        let out = r
            .kinesis
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .map_err(|e| DemoError::aws("Kinesis GetRecords", e))?;
        if out.records.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for rec in &out.records {
            records.push(kinesis_record(rec, &shard, &r.stream_arn, region));
        }
        iterator = out.next_shard_iterator;
    }
    Ok(records)
}

/// One record of a Lambda Kinesis event.
fn kinesis_record(
    rec: &aws_sdk_kinesis::types::Record,
    shard: &str,
    stream_arn: &str,
    region: &str,
) -> Value {
    // Milliseconds, as Kinesis keeps them (and as aws_lambda_events can read them back).
    let arrival = rec
        .approximate_arrival_timestamp
        .map_or(0.0, |t| (t.as_secs_f64() * 1e3).round() / 1e3);
    json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": rec.partition_key,
            "sequenceNumber": rec.sequence_number,
            "data": STANDARD.encode(rec.data.as_ref()),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("{shard}:{}", rec.sequence_number),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": format!("arn:aws:iam::{}:role/ddlambda-demo", super::standins::ACCOUNT),
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    })
}

/// The events for `records`, `batch` records each, as `{"Records": [...]}`.
pub fn batches(records: &[Value], batch: usize) -> Vec<Value> {
    records
        .chunks(batch.max(1))
        .map(|c| json!({ "Records": c }))
        .collect()
}
