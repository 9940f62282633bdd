//! API Gateway (REST, HTTP API, WebSocket), ALB and function URL events: the context an API
//! Gateway Lambda authorizer injected, then the request headers.

use base64::Engine;
use ddlambda_wire::SpanContext;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::propagation::{CowStr, HeaderSet};
use super::{Env, usable};
use crate::trigger::{ApiGatewayKind, EventSource, truthy};

/// The request id the authorizer saw, injected next to its context.
const AUTHORIZING_REQUEST_ID: &str = "x-datadog-authorizing-requestid";
/// When the authorizer's span finished (ns), injected next to its context.
const PARENT_SPAN_FINISH_TIME: &str = "x-datadog-parent-span-finish-time";

/// Authorizer context first (if decoding is on), then `headers` / `multiValueHeaders`.
pub(crate) fn extract(env: &Env<'_>) -> Option<SpanContext> {
    if env.decode_authorizer_context
        && let Some(ctx) = authorizer_context(env)
    {
        return Some(ctx);
    }
    headers_context(env.shape.headers, env.shape.multi_value_headers, env)
}

/// The context in request headers: `headers` if it is a non-empty object, else the first value
/// of each `multiValueHeaders` entry. AppSync's `request` uses this too, without authorizer data.
pub(crate) fn headers_context(
    headers: Option<&Value>,
    multi_value_headers: Option<&Value>,
    env: &Env<'_>,
) -> Option<SpanContext> {
    let headers = match headers.and_then(Value::as_object) {
        Some(single) if !single.is_empty() => HeaderSet::from_map(single),
        _ => HeaderSet::from_multi_value(multi_value_headers?.as_object()?),
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

/// The context a traced Lambda authorizer injected, unless it is a cached result.
fn authorizer_context(env: &Env<'_>) -> Option<SpanContext> {
    let http_api = env.shape.source == EventSource::ApiGateway(ApiGatewayKind::Http);
    with_fresh_authorizer_data(env.shape.request_context, http_api, |injected| {
        usable(env.propagator.extract_set(&injected.headers))
    })
    .flatten()
}

/// Fresh authorizer data, as the inferred API span needs it (see `spans::inferred::http`).
pub(crate) struct AuthorizerData {
    /// `x-datadog-parent-span-finish-time` as injected: when the authorizer's span finished,
    /// in ns (a JSON number from datadog-lambda). The inferred API span starts there.
    pub(crate) parent_span_finish_time: Option<Value>,
}

/// The data a traced Lambda authorizer injected into this request, unless there is none, it
/// does not decode, or it is a cached result. `request_context` is the event's; `http_api`
/// says where the data is (`authorizer.lambda._datadog` for an HTTP API, else
/// `authorizer._datadog`).
pub(crate) fn authorizer_data(
    request_context: Option<&Value>,
    http_api: bool,
) -> Option<AuthorizerData> {
    with_fresh_authorizer_data(request_context, http_api, |injected| AuthorizerData {
        parent_span_finish_time: injected.parent_span_finish_time.clone(),
    })
}

/// Decodes the `_datadog` data a traced Lambda authorizer returned (base64 JSON, written by
/// datadog-lambda's `_inject_authorizer_span_headers`) and hands it to `f`, unless API Gateway
/// served it from the authorizer cache: it is fresh only if `integrationLatency > 0` or the
/// injected request id matches this request's (datadog-lambda's `get_injected_authorizer_data`).
/// Extraction and the inferred authorizer span both read it through here.
fn with_fresh_authorizer_data<R>(
    request_context: Option<&Value>,
    http_api: bool,
    f: impl FnOnce(&Injected<'_>) -> R,
) -> Option<R> {
    let request_context = request_context.filter(|v| truthy(Some(v)))?;
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
    // A trace header that is not a string fails this, as it voids the context in ddtrace.
    let injected: Injected<'_> = match serde_json::from_slice(&decoded) {
        Ok(injected) => injected,
        Err(e) => {
            tracing::debug!(error = %e, "authorizer _datadog is not a JSON object of string headers; skipped");
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
    // Python compares with `==`, so a token authorizer with neither id also matches.
    if latency > 0.0 || request_context.get("requestId") == injected.authorizing_request_id.as_ref()
    {
        return Some(f(&injected));
    }
    tracing::debug!("authorizer context is a cached result; skipped");
    None
}

/// What a traced authorizer injects: trace headers, the request id it authorized and when
/// its span finished.
struct Injected<'de> {
    headers: HeaderSet<'de>,
    authorizing_request_id: Option<Value>,
    /// `x-datadog-parent-span-finish-time` as injected: ns, a JSON number from datadog-lambda.
    parent_span_finish_time: Option<Value>,
}

impl<'de> Deserialize<'de> for Injected<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InjectedVisitor;
        impl<'de> Visitor<'de> for InjectedVisitor {
            type Value = Injected<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of trace headers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut injected = Injected {
                    headers: HeaderSet::default(),
                    authorizing_request_id: None,
                    parent_span_finish_time: None,
                };
                while let Some(CowStr(key)) = map.next_key()? {
                    if key == AUTHORIZING_REQUEST_ID {
                        injected.authorizing_request_id = Some(map.next_value()?);
                    } else if key == PARENT_SPAN_FINISH_TIME {
                        injected.parent_span_finish_time = Some(map.next_value()?);
                    } else {
                        injected.headers.read_entry(&key, &mut map)?;
                    }
                }
                Ok(injected)
            }
        }
        deserializer.deserialize_map(InjectedVisitor)
    }
}
