//! SQS: per record, an EventBridge envelope in the body (`detail._datadog`), an SNS envelope in
//! the body (`MessageAttributes._datadog`), the `_datadog` message attribute (String or Binary),
//! or a Datadog-planted `AWSTraceHeader` (dd-trace-java pads the trace id with `00000000`).

use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::sqs_body::Envelope;
use super::{Env, attribute, usable};
use crate::trigger::get_many;
use crate::xray::XrayHeader;

/// dd-trace-java writes Datadog ids into X-Ray headers behind this padding.
const JAVA_PADDING: &str = "00000000";

/// `Records[0]`'s context.
pub(crate) fn extract(env: &Env<'_>) -> Option<SpanContext> {
    record_context(env.shape.first_record()?, env)
}

/// One SQS record's context.
pub(crate) fn record_context(record: &Value, env: &Env<'_>) -> Option<SpanContext> {
    // The fields a context can be in, found in one pass (a record has a dozen).
    let [body, message_attributes, sns, system_attributes] = match record.as_object() {
        Some(obj) => get_many(obj, ["body", "messageAttributes", "Sns", "attributes"]),
        None => [None; 4],
    };
    // Only an object can be an envelope: other bodies are not parsed at all.
    let envelope = body
        .and_then(Value::as_str)
        .filter(|b| b.trim_start().starts_with('{'))
        .and_then(Envelope::parse);
    // EventBridge → SQS: the envelope decides, whatever it holds.
    // A Step Functions context first, then Datadog / W3C headers, as datadog-lambda.
    if let Some(carrier) = envelope.as_ref().and_then(Envelope::eventbridge_carrier) {
        return attribute::carrier_context(carrier.as_bytes(), env);
    }
    // SNS → SQS without raw delivery: the notification is the body.
    let attributes = match envelope.as_ref().and_then(Envelope::sns_attributes) {
        Some(notification_attributes) => notification_attributes,
        None => message_attributes
            .filter(|a| !a.is_null())
            .or_else(|| sns.and_then(|s| s.get("MessageAttributes"))),
    };
    match attributes.map(|a| attribute::extract(a, env)) {
        Some(Ok(ctx)) => ctx,
        Some(Err(())) | None => aws_trace_header(system_attributes),
    }
}

/// The `attributes.AWSTraceHeader` dd-trace-java plants: `Root=1-<epoch>-00000000<16 hex
/// Datadog trace id>;Parent=<16 hex span id>;Sampled=<priority>`. Genuine X-Ray headers (no
/// padding) are ignored: their `Sampled=0` would drop traces (datadog-lambda-extension#1325).
fn aws_trace_header(attributes: Option<&Value>) -> Option<SpanContext> {
    let header = attributes?.get("AWSTraceHeader")?.as_str()?;
    let header = XrayHeader::parse(header)?;
    let random = header.root.split('-').nth(2)?;
    let trace_hex = random.strip_prefix(JAVA_PADDING)?;
    let trace_id = u64::from_str_radix(trace_hex, 16).ok()?;
    let parent_id = u64::from_str_radix(header.parent.as_deref()?, 16).ok()?;
    let priority = header.sampled.as_deref()?.parse().ok()?;
    usable(Some(SpanContext {
        sampling_priority: Some(priority),
        ..SpanContext::new(trace_id, parent_id)
    }))
}
