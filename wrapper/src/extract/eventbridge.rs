//! EventBridge: ddtrace puts the context in the event's `detail._datadog`.

use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::{Env, step_functions, usable};
use crate::trigger::truthy;

/// `detail._datadog`: a Step Functions context, else Datadog / W3C headers.
pub(crate) fn extract(event: &Value, env: &Env<'_>) -> Option<SpanContext> {
    let detail = event.get("detail").filter(|d| truthy(Some(d)));
    let carrier = detail?.get("_datadog").filter(|d| truthy(Some(d)))?;
    from_carrier(carrier, env)
}

/// A `_datadog` carrier found in an EventBridge `detail` (direct or inside SQS / SNS).
pub(crate) fn from_carrier(carrier: &Value, env: &Env<'_>) -> Option<SpanContext> {
    if let Some(ctx) = step_functions::from_context(carrier) {
        return Some(ctx);
    }
    usable(env.propagator.extract_value(carrier))
}
