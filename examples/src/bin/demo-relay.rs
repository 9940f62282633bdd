//! The demo's middle function: consumes an SQS batch (continuing the producer's trace and
//! pathway) and forwards every message to the Kinesis stream `DEMO_STREAM_NAME` names, in one
//! `PutRecords` call; the SDK hook adds `_datadog` inside each record's JSON data.

#[path = "../demo/aws.rs"]
mod aws;

use std::sync::OnceLock;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// Built once, at init, as Lambda functions should: TLS setup stays off the invocations.
static KINESIS: OnceLock<aws_sdk_kinesis::Client> = OnceLock::new();

#[ddlambda::handler]
async fn handler(event: LambdaEvent<SqsEvent>) -> Result<Value, Error> {
    let stream = aws::required("DEMO_STREAM_NAME")?;
    let kinesis = KINESIS.get().ok_or("the Kinesis client is built in main")?;
    let mut records = Vec::with_capacity(event.payload.records.len());
    for message in &event.payload.records {
        let body = message.body.as_deref().unwrap_or("null");
        // A body that is not JSON travels as a string, so the record is still a JSON object the
        // hook can carry the context in.
        let body: Value = serde_json::from_str(body).unwrap_or_else(|_| Value::from(body));
        let data = json!({"message": body, "relayed_by": "demo-relay"});
        records.push(
            PutRecordsRequestEntry::builder()
                .data(Blob::new(serde_json::to_vec(&data)?))
                .partition_key(message.message_id.clone().unwrap_or_default())
                .build()?,
        );
    }
    if records.is_empty() {
        return Ok(json!({ "forwarded": 0 }));
    }
    let out = kinesis
        .put_records()
        .stream_name(stream)
        .set_records(Some(records))
        .send()
        .await?;
    if let Some(failed) = out.failed_record_count.filter(|n| *n > 0) {
        return Err(format!("PutRecords: {failed} records failed").into());
    }
    Ok(json!({ "forwarded": out.records.len() }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ddlambda::tracing_bridge::init_default_subscriber();
    let _ = KINESIS.set(aws::kinesis()?);
    ddlambda::run(service_fn(handler)).await
}
