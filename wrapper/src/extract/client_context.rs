//! The Lambda client context of a synchronous invoke: `custom` is the header map, or
//! `custom._datadog` (the legacy form). Every built-in carrier falls back to it.

use ddlambda_wire::SpanContext;

use super::{Env, usable};
use crate::trigger::truthy;

/// Headers from `client_context.custom` (or `custom._datadog`).
pub(crate) fn extract(env: &Env<'_>) -> Option<SpanContext> {
    let custom = env.info.client_context.as_ref()?.get("custom")?;
    if !truthy(Some(custom)) {
        return None;
    }
    let headers = match custom.get("_datadog") {
        Some(legacy) => legacy,
        None => custom,
    };
    usable(env.propagator.extract_value(headers))
}
