//! A producer: answers with the SQS `SendMessage` input it would send, `_datadog` attribute
//! included, so the consumer continues this invocation's trace. (The data-streams producer
//! hooks for the AWS SDK send it for real: `ddlambda::aws`, feature `aws-sdk`.)

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Deserialize)]
struct Request {
    queue_url: String,
    message: String,
}

#[ddlambda::handler]
async fn handler(event: LambdaEvent<Request>) -> Result<Value, Error> {
    let mut carrier = Map::new();
    if let Some(ids) = ddlambda::current_ids() {
        ids.inject(&mut carrier);
    }
    Ok(json!({
        "QueueUrl": event.payload.queue_url,
        "MessageBody": event.payload.message,
        "MessageAttributes": {
            "_datadog": {"DataType": "String", "StringValue": Value::Object(carrier).to_string()}
        }
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ddlambda::tracing_bridge::init_default_subscriber();
    ddlambda::run(service_fn(handler)).await
}
