//! SNS: the `_datadog` message attribute of each record (`Type` String or Binary, `Value`).

use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::{Env, attribute};

/// `Records[0]`'s context.
pub(crate) fn extract(env: &Env<'_>) -> Option<SpanContext> {
    record_context(env.shape.first_record()?, env)
}

/// One SNS record's context (also used for SNS envelopes inside SQS bodies, given the
/// notification object itself).
pub(crate) fn record_context(record: &Value, env: &Env<'_>) -> Option<SpanContext> {
    notification_context(record.get("Sns")?, env)
}

/// The context of an SNS notification (`MessageAttributes._datadog`).
pub(crate) fn notification_context(notification: &Value, env: &Env<'_>) -> Option<SpanContext> {
    let attributes = notification.get("MessageAttributes")?;
    attribute::extract(attributes, env).ok().flatten()
}
