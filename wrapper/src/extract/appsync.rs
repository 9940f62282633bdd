//! AppSync resolvers: `request.headers` (e.g. from RUM), no authorizer data.

use ddlambda_wire::SpanContext;
use serde_json::Value;

use super::Env;

/// `request.headers` when `request` is an object with a `headers` key.
pub(crate) fn extract(event: &Value, env: &Env<'_>) -> Option<SpanContext> {
    let request = event.get("request")?.as_object()?;
    if !request.contains_key("headers") {
        return None;
    }
    super::http::headers_context(
        request.get("headers"),
        request.get("multiValueHeaders"),
        env,
    )
}
