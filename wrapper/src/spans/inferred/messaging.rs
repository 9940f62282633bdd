//! Asynchronous triggers: SQS (with SNS or EventBridge upstream), SNS, Kinesis, EventBridge,
//! DynamoDB streams and S3 notifications. Every span here finishes when `aws.lambda` starts.

use ddlambda_wire::Span;
use serde_json::{Value, json};

use super::{InferContext, Inferred, base_span, parse_utc_timestamp, str_at, tag, time_at};
use crate::trigger::{first_record, is_step_functions_event};

/// `aws.sqs` from `Records[0]`, preceded by an `aws.sns` span when the body is an SNS envelope
/// (SNS→SQS without raw delivery) or an `aws.eventbridge` span when it is an EventBridge event
/// carrying `detail._datadog`. The upstream span finishes when SQS received the message.
pub(super) fn sqs(event: &Value, cx: &InferContext<'_>) -> Option<Inferred> {
    let record = first_record(event)?;
    let arn = str_at(record, "/eventSourceARN")?;
    let queue = arn.rsplit(':').next().unwrap_or(arn);
    let service = cx
        .config
        .inferred_service(queue, "lambda_sqs", queue, "sqs");
    let start = time_at(record, "/attributes/SentTimestamp", 1_000_000)?;
    let mut span = base_span("aws.sqs", service, queue.to_owned(), "web", start, false);
    span.meta.insert("span.kind".into(), "server".into());
    span.meta.insert("queuename".into(), queue.to_owned());
    span.meta.insert("event_source_arn".into(), arn.to_owned());
    tag(
        &mut span,
        "receipt_handle",
        str_at(record, "/receiptHandle"),
    );
    tag(
        &mut span,
        "sender_id",
        str_at(record, "/attributes/SenderId"),
    );

    let mut spans = Vec::with_capacity(2);
    if let Some(mut upstream) = sqs_upstream(record, cx) {
        upstream.duration = (start - upstream.start).max(0);
        spans.push(upstream);
    }
    spans.push(span);
    Some(Inferred {
        spans,
        synchronous: false,
    })
}

fn sqs_upstream(record: &Value, cx: &InferContext<'_>) -> Option<Span> {
    let body: Value = serde_json::from_str(record.get("body")?.as_str()?).ok()?;
    let is_sns = body.get("Type").and_then(Value::as_str) == Some("Notification")
        && body.get("TopicArn").is_some();
    if is_sns {
        let event =
            json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": body}]});
        return sns(&event, cx);
    }
    let carries_context = body
        .pointer("/detail/_datadog")
        .is_some_and(|v| !v.is_null() && v != &Value::Bool(false) && v != &json!({}));
    if carries_context {
        return eventbridge(&body, cx);
    }
    None
}

/// `aws.sns` from `Records[0].Sns`, starting at the message's `Timestamp`.
pub(super) fn sns(event: &Value, cx: &InferContext<'_>) -> Option<Span> {
    let message = first_record(event)?.get("Sns")?;
    let topic_arn = str_at(message, "/TopicArn")?;
    let topic = topic_arn.rsplit(':').next().unwrap_or(topic_arn);
    let service = cx
        .config
        .inferred_service(topic, "lambda_sns", topic, "sns");
    let start = parse_utc_timestamp(str_at(message, "/Timestamp")?)?;
    let mut span = base_span("aws.sns", service, topic.to_owned(), "web", start, false);
    span.meta.insert("span.kind".into(), "server".into());
    span.meta.insert("topicname".into(), topic.to_owned());
    span.meta.insert("topic_arn".into(), topic_arn.to_owned());
    tag(&mut span, "message_id", str_at(message, "/MessageId"));
    tag(&mut span, "type", str_at(message, "/Type"));
    tag(
        &mut span,
        "subject",
        str_at(message, "/Subject").filter(|s| !s.is_empty()),
    );
    Some(span)
}

/// `aws.kinesis` from `Records[0]`, starting at `approximateArrivalTimestamp` (seconds).
pub(super) fn kinesis(event: &Value, cx: &InferContext<'_>) -> Option<Span> {
    let record = first_record(event)?;
    let arn = str_at(record, "/eventSourceARN").unwrap_or("");
    let last = arn.rsplit(':').next().unwrap_or(arn);
    let stream = last.strip_prefix("stream/").unwrap_or(last);
    let event_id = str_at(record, "/eventID")?;
    let shard = event_id.split(':').next().unwrap_or(event_id);
    let service = cx
        .config
        .inferred_service(stream, "lambda_kinesis", stream, "kinesis");
    let start = time_at(
        record,
        "/kinesis/approximateArrivalTimestamp",
        1_000_000_000,
    )?;
    let mut span = base_span(
        "aws.kinesis",
        service,
        stream.to_owned(),
        "web",
        start,
        false,
    );
    let meta = &mut span.meta;
    meta.insert("span.kind".into(), "server".into());
    meta.insert("streamname".into(), stream.to_owned());
    meta.insert("shardid".into(), shard.to_owned());
    meta.insert("event_source_arn".into(), arn.to_owned());
    meta.insert("event_id".into(), event_id.to_owned());
    tag(&mut span, "event_name", str_at(record, "/eventName"));
    tag(&mut span, "event_version", str_at(record, "/eventVersion"));
    tag(
        &mut span,
        "partition_key",
        str_at(record, "/kinesis/partitionKey"),
    );
    Some(span)
}

/// `aws.eventbridge` named after the event's `source`, starting at its `time` (or, for a
/// Step Functions context in `detail._datadog`, the state's `EnteredTime`).
pub(super) fn eventbridge(event: &Value, cx: &InferContext<'_>) -> Option<Span> {
    let source = str_at(event, "/source")?;
    let service = cx
        .config
        .inferred_service(source, "lambda_eventbridge", source, "eventbridge");
    let sfn_time = event
        .get("detail")
        .filter(|d| is_step_functions_event(d))
        .and_then(|d| str_at(d, "/_datadog/State/EnteredTime"));
    let start = parse_utc_timestamp(sfn_time.or_else(|| str_at(event, "/time"))?)?;
    let mut span = base_span(
        "aws.eventbridge",
        service,
        source.to_owned(),
        "web",
        start,
        false,
    );
    span.meta.insert("span.kind".into(), "server".into());
    tag(&mut span, "detail_type", str_at(event, "/detail-type"));
    Some(span)
}

/// `aws.dynamodb` named after the table, starting at `ApproximateCreationDateTime` (seconds).
pub(super) fn dynamodb(event: &Value, cx: &InferContext<'_>) -> Option<Span> {
    let record = first_record(event)?;
    let arn = str_at(record, "/eventSourceARN")?;
    let table = arn.split('/').nth(1)?;
    let service = cx
        .config
        .inferred_service(table, "lambda_dynamodb", table, "dynamodb");
    // datadog-lambda truncates to whole seconds (`int(...)`).
    let start = time_at(record, "/dynamodb/ApproximateCreationDateTime", 1)? * 1_000_000_000;
    let mut span = base_span(
        "aws.dynamodb",
        service,
        table.to_owned(),
        "web",
        start,
        false,
    );
    span.meta.insert("span.kind".into(), "server".into());
    span.meta.insert("tablename".into(), table.to_owned());
    span.meta.insert("event_source_arn".into(), arn.to_owned());
    tag(&mut span, "event_id", str_at(record, "/eventID"));
    tag(&mut span, "event_name", str_at(record, "/eventName"));
    tag(&mut span, "event_version", str_at(record, "/eventVersion"));
    tag(
        &mut span,
        "stream_view_type",
        str_at(record, "/dynamodb/StreamViewType"),
    );
    span.meta.insert(
        "size_bytes".into(),
        python_str(record.pointer("/dynamodb/SizeBytes")),
    );
    Some(span)
}

/// `aws.s3` named after the bucket, starting at the record's `eventTime`.
pub(super) fn s3(event: &Value, cx: &InferContext<'_>) -> Option<Span> {
    let record = first_record(event)?;
    let bucket = str_at(record, "/s3/bucket/name")?;
    let service = cx
        .config
        .inferred_service(bucket, "lambda_s3", bucket, "s3");
    let start = parse_utc_timestamp(str_at(record, "/eventTime")?)?;
    let mut span = base_span("aws.s3", service, bucket.to_owned(), "web", start, false);
    span.meta.insert("span.kind".into(), "server".into());
    span.meta.insert("bucketname".into(), bucket.to_owned());
    tag(&mut span, "event_name", str_at(record, "/eventName"));
    tag(&mut span, "bucket_arn", str_at(record, "/s3/bucket/arn"));
    tag(&mut span, "object_key", str_at(record, "/s3/object/key"));
    span.meta.insert(
        "object_size".into(),
        python_str(record.pointer("/s3/object/size")),
    );
    tag(&mut span, "object_etag", str_at(record, "/s3/object/eTag"));
    Some(span)
}

/// `str(value)` as Python renders the numbers datadog-lambda stringifies (`None` when absent).
fn python_str(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "None".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
