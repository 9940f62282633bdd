//! Step Functions: the context object the state machine passes to the Lambda task (directly,
//! under `Payload` for legacy invokes, or under `_datadog` for JSONata). Ids are derived with
//! the SHA-256 scheme shared by datadog-lambda (Python, JS) and the extension, so the Lambda
//! span joins the state machine's trace without any header.

use ddlambda_wire::SpanContext;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::propagation::parse_tid;

/// The deterministic 63-bit ids of `s`: bits 1..63 of the SHA-256 (the first 8 bytes, top bit
/// cleared; parent ids and `_dd.p.tid`) and bits 65..127 (bytes 8..16, top bit cleared; trace
/// ids). Neither is ever 0. One digest serves both halves.
fn hash_ids(s: &str) -> (u64, u64) {
    let digest = Sha256::digest(s.as_bytes());
    let half = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[at..at + 8]);
        match u64::from_be_bytes(bytes) & 0x7FFF_FFFF_FFFF_FFFF {
            0 => 1,
            id => id,
        }
    };
    (half(0), half(8))
}

/// `trace_id` and `_dd.p.tid` named by a root execution id.
fn set_trace_from(ctx: &mut SpanContext, root: &str) {
    let (high, low) = hash_ids(root);
    ctx.trace_id = low;
    ctx.trace_id_high = Some(high);
}

/// The context for a Step Functions context object, or `None` if `event` is not one (or its
/// fields have the wrong types).
pub(crate) fn from_context(event: &Value) -> Option<SpanContext> {
    let event = event.get("Payload").unwrap_or(event);
    let event = event.get("_datadog").unwrap_or(event);
    let obj = event.as_object()?;
    let mut ctx = SpanContext {
        sampling_priority: Some(1),
        ..SpanContext::default()
    };
    if obj.get("serverless-version").and_then(Value::as_str) == Some("v1") {
        if obj.contains_key("x-datadog-trace-id") {
            // The root is a traced Lambda: continue its trace.
            datadog_trace_id(event, &mut ctx)?;
        } else {
            // The root is a state machine: its root execution names the trace.
            set_trace_from(&mut ctx, obj.get("RootExecutionId")?.as_str()?);
        }
    } else {
        let execution = obj.get("Execution")?;
        let input = execution.get("Input").unwrap_or(&Value::Null);
        let dd_input = match input {
            Value::Object(o) => o.get("_datadog"),
            Value::Null => None,
            _ => return None,
        };
        let from_input = match dd_input {
            Some(dd) if dd.get("x-datadog-trace-id").is_some() => {
                datadog_trace_id(dd, &mut ctx)?;
                true
            }
            _ => false,
        };
        if !from_input {
            set_trace_from(&mut ctx, execution.get("Id")?.as_str()?);
        }
    }
    ctx.parent_id = parent_id(event)?;
    (ctx.trace_id != 0).then_some(ctx)
}

/// Whether a `_datadog` carrier (in SQS, SNS or EventBridge) holds a Step Functions context.
pub(crate) fn is_context(carrier: &Value) -> bool {
    crate::trigger::is_step_functions_event(carrier)
}

/// `x-datadog-trace-id` plus `_dd.p.tid` from `x-datadog-tags`.
fn datadog_trace_id(dd: &Value, ctx: &mut SpanContext) -> Option<()> {
    ctx.trace_id = match dd.get("x-datadog-trace-id")? {
        Value::String(s) => s.trim().parse().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    if let Some(tags) = dd.get("x-datadog-tags").and_then(Value::as_str) {
        let tid = tags
            .split(',')
            .find_map(|tag| tag.split_once("_dd.p.tid=").map(|(_, v)| v));
        ctx.trace_id_high = tid.and_then(parse_tid);
    }
    Some(())
}

/// The hash of `Execution.Id#State.Name#State.EnteredTime`, plus `#RetryCount#RedriveCount`
/// when either is non-zero (older layers hashed without them).
fn parent_id(event: &Value) -> Option<u64> {
    let execution = event.get("Execution")?.as_object()?;
    let state = event.get("State")?.as_object()?;
    let retry = state.get("RetryCount");
    let redrive = execution.get("RedriveCount");
    let is_zero = |v: Option<&Value>| v.is_none_or(|v| v.as_f64() == Some(0.0));
    let mut key = String::with_capacity(256);
    push_py_str(&mut key, execution.get("Id"));
    key.push('#');
    push_py_str(&mut key, state.get("Name"));
    key.push('#');
    push_py_str(&mut key, state.get("EnteredTime"));
    if !(is_zero(retry) && is_zero(redrive)) {
        let zero = Value::from(0);
        key.push('#');
        push_py_str(&mut key, Some(retry.unwrap_or(&zero)));
        key.push('#');
        push_py_str(&mut key, Some(redrive.unwrap_or(&zero)));
    }
    Some(hash_ids(&key).0)
}

/// Appends a JSON scalar as Python's `f"{value}"` prints it (the hash input must match byte
/// for byte).
fn push_py_str(out: &mut String, v: Option<&Value>) {
    use std::fmt::Write;
    match v {
        None | Some(Value::Null) => out.push_str("None"),
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Bool(true)) => out.push_str("True"),
        Some(Value::Bool(false)) => out.push_str("False"),
        Some(other) => {
            let _ = write!(out, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_context_object() {
        // Trace id and tid: datadog-lambda-python's inline Step Functions vector; parent id
        // computed with datadog-lambda 8.130.0 for this state.
        let event = json!({
            "Execution": {
                "Id": "arn:aws:states:sa-east-1:425362996713:execution:abhinav-activity-state-machine:72a7ca3e-901c-41bb-b5a3-5f279b92a316",
                "RedriveCount": 0
            },
            "StateMachine": {},
            "State": {"Name": "step-one", "EnteredTime": "2024-08-13T14:26:36.123Z", "RetryCount": 0}
        });
        let ctx = from_context(&event).unwrap();
        assert_eq!(ctx.trace_id, 435175499815315247);
        assert_eq!(ctx.trace_id_high, Some(0x3e7a_89d1_b731_0603));
        assert_eq!(ctx.parent_id, 492069336373646433);
        assert_eq!(ctx.sampling_priority, Some(1));
    }

    #[test]
    fn not_a_context_object() {
        assert!(from_context(&json!({"x-datadog-trace-id": "1"})).is_none());
        assert!(from_context(&json!("text")).is_none());
    }
}
