//! The demo's producer: sends `count` JSON messages to the SQS queue `DEMO_QUEUE_URL` names,
//! in `SendMessageBatch` calls of ten; the SDK hook gives each one a data-streams checkpoint
//! and the `_datadog` attribute that carries this invocation's trace on.

#[path = "../demo/aws.rs"]
mod aws;

use std::sync::OnceLock;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Built once, at init, as Lambda functions should: TLS setup stays off the invocations.
static SQS: OnceLock<aws_sdk_sqs::Client> = OnceLock::new();

/// SQS accepts at most ten entries per batch.
const BATCH: usize = 10;

#[derive(Debug, Deserialize, Serialize)]
struct Request {
    count: usize,
}

#[ddlambda::handler]
async fn handler(event: LambdaEvent<Request>) -> Result<Value, Error> {
    let queue_url = aws::required("DEMO_QUEUE_URL")?;
    let sqs = SQS.get().ok_or("the SQS client is built in main")?;
    let mut sent = 0;
    let ids: Vec<usize> = (0..event.payload.count).collect();
    for chunk in ids.chunks(BATCH) {
        let entries = chunk
            .iter()
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(json!({"order": i, "item": "demo"}).to_string())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .send_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        if let Some(failed) = out.failed.first() {
            return Err(format!(
                "SendMessageBatch: {} failed: {:?}",
                failed.id, failed.message
            )
            .into());
        }
        sent += out.successful.len();
    }
    Ok(json!({ "sent": sent }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ddlambda::tracing_bridge::init_default_subscriber();
    let _ = SQS.set(aws::sqs()?);
    ddlambda::run(service_fn(handler)).await
}
