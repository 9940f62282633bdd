//! A Kinesis consumer: `aws.lambda` under an inferred `aws.kinesis` span; records that fail to
//! parse are reported back to Lambda as batch item failures.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[ddlambda::handler]
async fn handler(event: LambdaEvent<KinesisEvent>) -> Result<KinesisEventResponse, Error> {
    let mut response = KinesisEventResponse::default();
    for record in &event.payload.records {
        let data = &record.kinesis.data.0;
        if serde_json::from_slice::<serde_json::Value>(data).is_err() {
            let mut failure = KinesisBatchItemFailure::default();
            failure.item_identifier = Some(record.kinesis.sequence_number.clone());
            response.batch_item_failures.push(failure);
        }
    }
    tracing::info!(
        records = event.payload.records.len(),
        failed = response.batch_item_failures.len(),
        "batch done"
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ddlambda::tracing_bridge::init_default_subscriber();
    ddlambda::run(service_fn(handler)).await
}
