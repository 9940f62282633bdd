//! The stand-ins through the real SDK clients, and the Lambda events the event source mapping
//! builds from what they return, read back with `aws_lambda_events`.

use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use serde_json::json;

use super::StandIns;
use crate::demo::event_source::{batches, read_kinesis, receive_sqs};
use crate::demo::resources::{Endpoint, Resources};

const REGION: &str = "us-east-1";
const LIMIT: Duration = Duration::from_secs(30);

async fn setup() -> (StandIns, Resources) {
    let standins = StandIns::start(REGION).await.expect("start stand-ins");
    let endpoint = Endpoint {
        url: standins.endpoint(),
        region: REGION.to_owned(),
        access_key_id: "test".to_owned(),
        secret_access_key: "test".to_owned(),
        session_token: None,
    };
    let resources = Resources::create(&endpoint, "orders", "events")
        .await
        .expect("create queue and stream");
    (standins, resources)
}

#[tokio::test]
async fn sqs_messages_reach_a_lambda_event_with_their_attributes() {
    let (_s, r) = setup().await;
    assert_eq!(r.queue_arn, "arn:aws:sqs:us-east-1:123456789012:orders");
    let entries: Vec<_> = (0..3)
        .map(|i| {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(format!("{{\"n\":{i}}}"))
                .build()
                .unwrap();
            SendMessageBatchRequestEntry::builder()
                .id(format!("e{i}"))
                .message_body(format!("body {i}"))
                .message_attributes("_datadog", attribute)
                .build()
                .unwrap()
        })
        .collect();
    let sent = r
        .sqs
        .send_message_batch()
        .queue_url(&r.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .expect("SendMessageBatch");
    assert_eq!(sent.successful.len(), 3);
    // MD5 of "body 0" (Python's hashlib), as SQS reports it.
    assert_eq!(
        sent.successful[0].md5_of_message_body,
        "2c2f1edb5aac06c6c201d1fe8916de7d"
    );

    let records = receive_sqs(&r, REGION, 3, LIMIT).await.expect("receive");
    let event: SqsEvent =
        serde_json::from_value(batches(&records, 10)[0].clone()).expect("an SQS Lambda event");
    assert_eq!(event.records.len(), 3);
    for (i, m) in event.records.iter().enumerate() {
        assert_eq!(m.body.as_deref(), Some(format!("body {i}").as_str()));
        assert_eq!(m.event_source_arn.as_deref(), Some(r.queue_arn.as_str()));
        let attr = &m.message_attributes["_datadog"];
        assert_eq!(
            attr.string_value.as_deref(),
            Some(format!("{{\"n\":{i}}}").as_str())
        );
        assert_eq!(attr.data_type.as_deref(), Some("String"));
    }
    // Received messages are gone: a second receive finds the queue empty.
    let again = r
        .sqs
        .receive_message()
        .queue_url(&r.queue_url)
        .send()
        .await
        .expect("ReceiveMessage");
    assert!(again.messages.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn kinesis_records_reach_a_lambda_event_with_their_data() {
    let (_s, r) = setup().await;
    assert_eq!(
        r.stream_arn,
        "arn:aws:kinesis:us-east-1:123456789012:stream/events"
    );
    let records: Vec<_> = (0..3)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(json!({"i": i}).to_string()))
                .partition_key(format!("k{i}"))
                .build()
                .unwrap()
        })
        .collect();
    let put = r
        .kinesis
        .put_records()
        .stream_name(&r.stream_name)
        .set_records(Some(records))
        .send()
        .await
        .expect("PutRecords");
    assert_eq!(put.failed_record_count, Some(0));
    let single = r
        .kinesis
        .put_record()
        .stream_name(&r.stream_name)
        .data(Blob::new(json!({"i": 3}).to_string()))
        .partition_key("k3")
        .send()
        .await
        .expect("PutRecord");
    assert_eq!(single.shard_id, "shardId-000000000000");

    let records = read_kinesis(&r, REGION, 4, LIMIT).await.expect("read");
    let event: KinesisEvent =
        serde_json::from_value(batches(&records, 100)[0].clone()).expect("a Kinesis Lambda event");
    assert_eq!(event.records.len(), 4);
    let mut last = String::new();
    for (i, rec) in event.records.iter().enumerate() {
        assert_eq!(rec.kinesis.data.0, json!({"i": i}).to_string().into_bytes());
        assert_eq!(rec.kinesis.partition_key, format!("k{i}"));
        assert!(
            rec.kinesis.sequence_number > last,
            "sequence numbers increase"
        );
        last.clone_from(&rec.kinesis.sequence_number);
        assert_eq!(rec.event_source_arn.as_deref(), Some(r.stream_arn.as_str()));
    }
}

#[tokio::test]
async fn bad_requests_get_aws_errors_and_change_nothing() {
    let (_s, r) = setup().await;
    let missing = r
        .sqs
        .send_message()
        .queue_url("http://127.0.0.1:1/123456789012/nope")
        .message_body("x")
        .send()
        .await
        .expect_err("unknown queue");
    let text = aws_sdk_sqs::error::DisplayErrorContext(&missing).to_string();
    assert!(text.contains("does not exist"), "{text}");

    let again = r
        .kinesis
        .create_stream()
        .stream_name(&r.stream_name)
        .shard_count(1)
        .send()
        .await
        .expect_err("stream exists");
    assert!(
        again
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception())
    );

    // One entry over 1 MiB: the whole call is refused, nothing is appended.
    let big = PutRecordsRequestEntry::builder()
        .data(Blob::new(vec![b'x'; 1024 * 1024]))
        .partition_key("k")
        .build()
        .unwrap();
    let small = PutRecordsRequestEntry::builder()
        .data(Blob::new("{}"))
        .partition_key("k")
        .build()
        .unwrap();
    r.kinesis
        .put_records()
        .stream_name(&r.stream_name)
        .records(small)
        .records(big)
        .send()
        .await
        .expect_err("record too large");
    let it = r
        .kinesis
        .get_shard_iterator()
        .stream_name(&r.stream_name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("iterator");
    let got = r
        .kinesis
        .get_records()
        .shard_iterator(it)
        .send()
        .await
        .expect("GetRecords");
    assert!(got.records.is_empty());
}
