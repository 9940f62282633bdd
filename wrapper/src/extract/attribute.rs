//! The `_datadog` message attribute ddtrace injects on SQS (`dataType` + `stringValue` /
//! `binaryValue`) and SNS (`Type` + `Value`) messages: a JSON header map, as a String or as
//! base64 Binary (ddtrace sends SNS as Binary; raw delivery forwards it to SQS as Binary).

use base64::Engine;
use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::propagation::HeaderSet;
use super::{Env, step_functions, usable};
use crate::trigger::truthy;

/// The context in a message-attribute map's `_datadog` entry. `Err(())` when there is no
/// `_datadog` entry at all (the caller may then look elsewhere, e.g. `AWSTraceHeader`);
/// `Ok(None)` when there is one but it yields no usable context.
pub(crate) fn extract(attributes: &Value, env: &Env<'_>) -> Result<Option<SpanContext>, ()> {
    let Some(attribute) = attributes.get("_datadog").filter(|a| truthy(Some(a))) else {
        return Err(());
    };
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
    Ok(match kind {
        Some("String") => {
            value("stringValue").and_then(|json| carrier_context(json.as_bytes(), env))
        }
        Some("Binary") => {
            let Some(encoded) = value("binaryValue") else {
                return Ok(None);
            };
            match base64::engine::general_purpose::STANDARD.decode(encoded) {
                Ok(json) => carrier_context(&json, env),
                Err(e) => {
                    tracing::debug!(error = %e, "_datadog Binary attribute is not base64");
                    None
                }
            }
        }
        other => {
            tracing::debug!(data_type = ?other, "_datadog attribute must be String or Binary");
            None
        }
    })
}

/// The context in a `_datadog` JSON document: Datadog / W3C headers, or a Step Functions
/// context object.
pub(crate) fn carrier_context(json: &[u8], env: &Env<'_>) -> Option<SpanContext> {
    // Every Step Functions context names its state machine; the (rare) documents that might be
    // one — or that spell a key with escapes — are parsed whole, the others straight into
    // their trace headers.
    if memchr::memmem::find(json, b"\"StateMachine\"").is_some()
        || memchr::memchr(b'\\', json).is_some()
    {
        let carrier: Value = match serde_json::from_slice(json) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "_datadog is not JSON");
                return None;
            }
        };
        if step_functions::is_context(&carrier) {
            if let Some(ctx) = step_functions::from_context(&carrier) {
                return Some(ctx);
            }
            tracing::debug!("_datadog Step Functions context is malformed");
        }
        return usable(env.propagator.extract_value(&carrier));
    }
    match serde_json::from_slice::<HeaderSet<'_>>(json) {
        Ok(headers) => usable(env.propagator.extract_set(&headers)),
        Err(e) => {
            tracing::debug!(error = %e, "_datadog is not a JSON object of string headers");
            None
        }
    }
}
