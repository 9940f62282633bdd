//! The `_datadog` message attribute ddtrace injects on SQS (`dataType` + `stringValue` /
//! `binaryValue`) and SNS (`Type` + `Value`) messages: a JSON header map, as a String or as
//! base64 Binary (ddtrace sends SNS as Binary; raw delivery forwards it to SQS as Binary).

use base64::Engine;
use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::{Env, step_functions, usable};
use crate::trigger::truthy;

/// The context in a message-attribute map's `_datadog` entry. `Err(())` when there is no
/// `_datadog` entry at all (the caller may then look elsewhere, e.g. `AWSTraceHeader`);
/// `Ok(None)` when there is one but it yields no usable context.
pub(crate) fn extract(attributes: &Value, env: &Env<'_>) -> Result<Option<SpanContext>, ()> {
    let Some(attribute) = attributes.get("_datadog").filter(|a| truthy(Some(a))) else {
        return Err(());
    };
    let Some(carrier) = decode(attribute) else {
        return Ok(None);
    };
    if step_functions::is_context(&carrier) {
        if let Some(ctx) = step_functions::from_context(&carrier) {
            return Ok(Some(ctx));
        }
        tracing::debug!("_datadog Step Functions context is malformed");
    }
    Ok(usable(env.propagator.extract_value(&carrier)))
}

/// Decodes the attribute's JSON; `None` (with a debug log) for other types or bad data.
pub(crate) fn decode(attribute: &Value) -> Option<Value> {
    let kind = attribute
        .get("Type")
        .filter(|t| truthy(Some(t)))
        .or_else(|| attribute.get("dataType"))
        .and_then(Value::as_str);
    let value = |primary: &str| {
        attribute
            .get(primary)
            .filter(|v| truthy(Some(v)))
            .or_else(|| attribute.get("Value"))
            .filter(|v| truthy(Some(v)))
            .and_then(Value::as_str)
    };
    let json: Vec<u8> = match kind {
        Some("String") => value("stringValue")?.as_bytes().to_vec(),
        Some("Binary") => {
            match base64::engine::general_purpose::STANDARD.decode(value("binaryValue")?) {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::debug!(error = %e, "_datadog Binary attribute is not base64");
                    return None;
                }
            }
        }
        other => {
            tracing::debug!(
                data_type = ?other,
                "_datadog attribute must be String or Binary"
            );
            return None;
        }
    };
    match serde_json::from_slice(&json) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(error = %e, "_datadog attribute is not JSON");
            None
        }
    }
}
