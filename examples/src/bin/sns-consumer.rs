//! An SNS consumer: `aws.lambda` under an inferred `aws.sns` span.

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[ddlambda::handler]
async fn handler(event: LambdaEvent<SnsEvent>) -> Result<(), Error> {
    for record in &event.payload.records {
        tracing::info!(
            topic = record.sns.topic_arn,
            message_id = record.sns.message_id,
            "notification"
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ddlambda::tracing_bridge::init_default_subscriber();
    ddlambda::run(service_fn(handler)).await
}
