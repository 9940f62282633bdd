//! A producer: answers with the SQS `SendMessage` input it would send, `_datadog` attribute
//! included, so the consumer continues this invocation's trace (and, with
//! `DD_DATA_STREAMS_ENABLED`, its pathway). `produce_carrier` is what the AWS SDK hooks
//! (`ddlambda::aws`, feature `aws-sdk`) call for every message they send; call it yourself for
//! other clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
struct Request {
    queue_url: String,
    message: String,
}

#[ddlambda::handler]
async fn handler(event: LambdaEvent<Request>) -> Result<Value, Error> {
    let Request { queue_url, message } = event.payload;
    let queue = queue_url.rsplit('/').next().unwrap_or_default();
    let mut input = json!({ "QueueUrl": queue_url, "MessageBody": message });
    // The produce checkpoint and the carrier: the trace context of `aws.lambda` and the pathway.
    if let Some(carrier) = ddlambda::streams::produce_carrier("sqs", queue, message.len() as u64) {
        input["MessageAttributes"] = json!({
            "_datadog": {"DataType": "String", "StringValue": Value::Object(carrier).to_string()}
        });
    }
    Ok(input)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ddlambda::tracing_bridge::init_default_subscriber();
    ddlambda::run(service_fn(handler)).await
}
