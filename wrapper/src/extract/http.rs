//! API Gateway (REST, HTTP API, WebSocket), ALB and function URL events: the context an API
//! Gateway Lambda authorizer injected, then the request headers.

use base64::Engine;
use ddlambda_wire::SpanContext;
use serde_json::{Map, Value};

use super::propagation::HeaderSet;
use super::{Env, usable};
use crate::trigger::{ApiGatewayKind, EventSource, truthy};

/// The request id the authorizer saw, injected next to its context.
const AUTHORIZING_REQUEST_ID: &str = "x-datadog-authorizing-requestid";

/// Authorizer context first (if decoding is on), then `headers` / `multiValueHeaders`.
pub(crate) fn extract(event: &Value, env: &Env<'_>) -> Option<SpanContext> {
    if env.decode_authorizer_context {
        let http_api = env.source == EventSource::ApiGateway(ApiGatewayKind::Http);
        if let Some(injected) = authorizer_context(event, http_api)
            && let Some(ctx) = usable(env.propagator.extract(&injected))
        {
            return Some(ctx);
        }
    }
    extract_headers(event, env)
}

/// The request headers only (AppSync's `request` uses this, without authorizer data).
pub(crate) fn extract_headers(event: &Value, env: &Env<'_>) -> Option<SpanContext> {
    let headers = match event.get("headers").and_then(Value::as_object) {
        Some(single) if !single.is_empty() => HeaderSet::from_map(single),
        _ => HeaderSet::from_multi_value(event.get("multiValueHeaders")?.as_object()?),
    };
    usable(env.propagator.extract_set(&headers))
}

/// `headers` if it is a non-empty object, else `multiValueHeaders` with the first value of each.
pub fn resolve_headers(event: &Value) -> Option<Map<String, Value>> {
    if let Some(headers) = event.get("headers").and_then(Value::as_object)
        && !headers.is_empty()
    {
        return Some(headers.clone());
    }
    let multi = event.get("multiValueHeaders")?.as_object()?;
    let mut resolved = Map::with_capacity(multi.len());
    for (key, value) in multi {
        match value {
            Value::Array(values) => {
                if let Some(first) = values.first() {
                    resolved.insert(key.clone(), first.clone());
                }
            }
            Value::String(_) => {
                resolved.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Some(resolved)
}

/// The `_datadog` context a traced Lambda authorizer returned (base64 JSON), unless API
/// Gateway served it from the authorizer cache: it is fresh only if `integrationLatency > 0` or
/// the injected request id matches this request's.
fn authorizer_context(event: &Value, http_api: bool) -> Option<Map<String, Value>> {
    let request_context = event.get("requestContext").filter(|v| truthy(Some(v)))?;
    let authorizer = request_context
        .get("authorizer")
        .filter(|v| truthy(Some(v)))?;
    let raw = if http_api {
        authorizer
            .get("lambda")
            .filter(|v| truthy(Some(v)))?
            .get("_datadog")
    } else {
        authorizer.get("_datadog")
    }
    .filter(|v| truthy(Some(v)))?;
    let Some(encoded) = raw.as_str() else {
        tracing::debug!("authorizer _datadog is not a string; skipped");
        return None;
    };
    let decoded = match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::debug!(error = %e, "authorizer _datadog is not base64; skipped");
            return None;
        }
    };
    let injected: Map<String, Value> = match serde_json::from_slice(&decoded) {
        Ok(map) => map,
        Err(e) => {
            tracing::debug!(error = %e, "authorizer _datadog is not a JSON object; skipped");
            return None;
        }
    };
    let latency = match authorizer.get("integrationLatency") {
        None => 0.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(_) => {
            tracing::debug!("authorizer integrationLatency is not a number; skipped");
            return None;
        }
    };
    if latency > 0.0 {
        return Some(injected);
    }
    // Python compares with `==`, so a token authorizer with neither id also matches.
    if request_context.get("requestId") == injected.get(AUTHORIZING_REQUEST_ID) {
        return Some(injected);
    }
    tracing::debug!("authorizer context is a cached result; skipped");
    None
}
