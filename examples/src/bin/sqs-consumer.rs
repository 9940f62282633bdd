//! An SQS consumer: one `aws.lambda` span per batch, continuing the producer's trace through
//! an inferred `aws.sqs` span; the other producers of the batch are span links.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[ddlambda::handler]
async fn handler(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.payload.records {
        let id = record.message_id.as_deref().unwrap_or_default();
        let _span = tracing::info_span!("process_message", message_id = id).entered();
        match record.body.as_deref() {
            Some(body) => tracing::info!(bytes = body.len(), "processed"),
            None => response.add_failure(id),
        }
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ddlambda::tracing_bridge::init_default_subscriber();
    ddlambda::run(service_fn(handler)).await
}
