//! The `_datadog` message attribute ddtrace injects on SQS (`dataType` + `stringValue` /
//! `binaryValue`) and SNS (`Type` + `Value`) messages: a JSON header map, as a String or as
//! base64 Binary (ddtrace sends SNS as Binary; raw delivery forwards it to SQS as Binary).

use std::cell::RefCell;

use base64::Engine;
use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::{Env, flat_object, step_functions, usable};
use crate::trigger::truthy;

/// The context in a message-attribute map's `_datadog` entry. `Err(())` when there is no
/// `_datadog` entry at all (the caller may then look elsewhere, e.g. `AWSTraceHeader`);
/// `Ok(None)` when there is one but it yields no usable context.
pub(crate) fn extract<'a>(attributes: &'a Value, env: &Env<'_>) -> Result<Option<SpanContext>, ()> {
    let Some(attribute) = attributes.get("_datadog").filter(|a| truthy(Some(a))) else {
        return Err(());
    };
    // The attribute's fields in one pass (a look-up per field would `memcmp` every key it
    // passes); SQS spells them `dataType` / `stringValue` / `binaryValue`, SNS `Type` / `Value`.
    let (mut sns_type, mut data_type, mut string_value, mut binary_value, mut sns_value) =
        (None, None, None, None, None);
    for (key, value) in attribute.as_object().into_iter().flatten() {
        match key.as_str() {
            "Type" => sns_type = Some(value),
            "dataType" => data_type = Some(value),
            "stringValue" => string_value = Some(value),
            "binaryValue" => binary_value = Some(value),
            "Value" => sns_value = Some(value),
            _ => {}
        }
    }
    let kind = sns_type
        .filter(|t| truthy(Some(t)))
        .or(data_type)
        .and_then(Value::as_str);
    let value = |primary: Option<&'a Value>| {
        primary
            .filter(|v| truthy(Some(v)))
            .or(sns_value)
            .filter(|v| truthy(Some(v)))
            .and_then(Value::as_str)
    };
    Ok(match kind {
        Some("String") => {
            value(string_value).and_then(|json| carrier_context(json.as_bytes(), env))
        }
        Some("Binary") => {
            let Some(encoded) = value(binary_value) else {
                return Ok(None);
            };
            match with_base64(encoded, |json| carrier_context(json, env)) {
                Ok(ctx) => ctx,
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

thread_local! {
    /// The bytes of the last base64 carrier decoded on this thread: reused, so decoding does
    /// not allocate once warm.
    static DECODED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A larger buffer is not kept after use (one unusually large Kinesis record must not hold
/// its size for the rest of the sandbox's life).
const KEEP_CAPACITY: usize = 16 * 1024;

/// Decodes standard base64 and hands the bytes to `read`, in this thread's reused buffer.
pub(crate) fn with_base64<R>(
    encoded: &str,
    read: impl FnOnce(&[u8]) -> R,
) -> Result<R, base64::DecodeError> {
    let engine = &base64::engine::general_purpose::STANDARD;
    DECODED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = match engine.decode_vec(encoded, &mut buf) {
                Ok(()) => Ok(read(&buf)),
                Err(e) => Err(e),
            };
            if buf.capacity() > KEEP_CAPACITY {
                *buf = Vec::new();
            }
            result
        }
        // `read` decoding another carrier: that one gets a buffer of its own.
        Err(_) => engine.decode(encoded).map(|bytes| read(&bytes)),
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
    match flat_object::header_set(json) {
        Ok(headers) => usable(env.propagator.extract_set(&headers)),
        Err(e) => {
            tracing::debug!(error = %e, "_datadog is not a JSON object of string headers");
            None
        }
    }
}
