//! SQS: per record, an EventBridge envelope in the body (`detail._datadog`), an SNS envelope in
//! the body (`MessageAttributes._datadog`), the `_datadog` message attribute (String or Binary),
//! or a Datadog-planted `AWSTraceHeader` (dd-trace-java pads the trace id with `00000000`).

use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::{Env, attribute, step_functions, usable};
use crate::trigger::truthy;
use crate::xray::XrayHeader;

/// dd-trace-java writes Datadog ids into X-Ray headers behind this padding.
const JAVA_PADDING: &str = "00000000";

/// `Records[0]`'s context.
pub(crate) fn extract(event: &Value, env: &Env<'_>) -> Option<SpanContext> {
    record_context(crate::trigger::first_record(event)?, env)
}

/// One SQS record's context.
pub(crate) fn record_context(record: &Value, env: &Env<'_>) -> Option<SpanContext> {
    // Only an object can be an envelope: other bodies are not parsed at all.
    let body = record
        .get("body")
        .and_then(Value::as_str)
        .filter(|b| b.trim_start().starts_with('{'))
        .and_then(|b| serde_json::from_str::<Value>(b).ok());
    // EventBridge → SQS: the envelope decides, whatever it holds.
    if let Some(carrier) = body.as_ref().and_then(eventbridge_carrier) {
        if step_functions::is_context(carrier)
            && let Some(ctx) = step_functions::from_context(carrier)
        {
            return Some(ctx);
        }
        return usable(env.propagator.extract_value(carrier));
    }
    // SNS → SQS without raw delivery: the notification is the body.
    let attributes = match body.as_ref().filter(|b| is_sns_notification(b)) {
        Some(notification) => notification.get("MessageAttributes"),
        None => record
            .get("messageAttributes")
            .filter(|a| !a.is_null())
            .or_else(|| record.get("Sns").and_then(|s| s.get("MessageAttributes"))),
    };
    match attributes.map(|a| attribute::extract(a, env)) {
        Some(Ok(ctx)) => ctx,
        Some(Err(())) | None => aws_trace_header(record),
    }
}

fn is_sns_notification(body: &Value) -> bool {
    body.get("Type").and_then(Value::as_str) == Some("Notification")
        && body.get("TopicArn").is_some()
}

/// `detail._datadog` of an EventBridge envelope (an object with a `detail` object, a
/// `detail-type` and a `source`); `None` if the body is not one or carries no `_datadog` object.
fn eventbridge_carrier(body: &Value) -> Option<&Value> {
    let detail = body.get("detail")?;
    if !detail.is_object() || !truthy(body.get("detail-type")) || !truthy(body.get("source")) {
        return None;
    }
    // datadog-lambda raises on a missing `_datadog` and falls through to the plain SQS path.
    detail.get("_datadog").filter(|c| c.is_object())
}

/// The `attributes.AWSTraceHeader` dd-trace-java plants: `Root=1-<epoch>-00000000<16 hex
/// Datadog trace id>;Parent=<16 hex span id>;Sampled=<priority>`. Genuine X-Ray headers (no
/// padding) are ignored: their `Sampled=0` would drop traces (datadog-lambda-extension#1325).
fn aws_trace_header(record: &Value) -> Option<SpanContext> {
    let header = record.get("attributes")?.get("AWSTraceHeader")?.as_str()?;
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
