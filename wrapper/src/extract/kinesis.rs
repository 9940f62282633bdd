//! Kinesis: ddtrace injects `_datadog` into the record's JSON data (base64 in the event).
//!
//! Deliberate difference from datadog-lambda (Python): the data is decoded as UTF-8, not ASCII,
//! so JSON payloads with non-ASCII text keep their context.

use base64::Engine;
use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::{Env, usable};
use crate::trigger::truthy;

/// `Records[0]`'s context.
pub(crate) fn extract(event: &Value, env: &Env<'_>) -> Option<SpanContext> {
    record_context(crate::trigger::first_record(event)?, env)
}

/// One record's context: `kinesis.data` → base64 → UTF-8 JSON object → `_datadog`.
pub(crate) fn record_context(record: &Value, env: &Env<'_>) -> Option<SpanContext> {
    let kinesis = record.get("kinesis").filter(|k| truthy(Some(k)))?;
    let data = kinesis.get("data")?.as_str()?;
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::debug!(error = %e, "kinesis data is not base64");
            return None;
        }
    };
    // serde_json validates UTF-8 itself; only an object with `_datadog` can carry a context.
    let payload: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(error = %e, "kinesis data is not UTF-8 JSON");
            return None;
        }
    };
    let carrier = payload.get("_datadog").filter(|c| truthy(Some(c)))?;
    usable(env.propagator.extract_value(carrier))
}
