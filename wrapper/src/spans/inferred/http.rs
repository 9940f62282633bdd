//! HTTP triggers: API Gateway REST, HTTP API and WebSocket, function URLs and ALB. These are
//! synchronous (the span finishes with `aws.lambda`) unless API Gateway invoked the function
//! asynchronously (`X-Amz-Invocation-Type: Event`).
//!
//! When a traced Lambda authorizer ran for the request (its injected `_datadog` data is in
//! `requestContext.authorizer` and is not a cached result), a REST or WebSocket API span gets
//! an `aws.apigateway.authorizer` span upstream and starts when that one ends, as
//! datadog-lambda's `process_injected_data` does; an HTTP API span just starts at the injected
//! finish time (datadog-lambda draws no authorizer span there).

use ddlambda_wire::Span;
use serde_json::Value;

use super::{INFERRED_METRIC, InferContext, Inferred, base_span, python_int, str_at, tag, time_at};
use crate::extract::authorizer_data;

fn invoked_async(event: &Value) -> bool {
    str_at(event, "/headers/X-Amz-Invocation-Type") == Some("Event")
}

fn api(span: Span, synchronous: bool) -> Option<Inferred> {
    Some(Inferred {
        spans: vec![span],
        synchronous,
    })
}

/// The API span, preceded by the authorizer span when a traced authorizer ran for this request
/// (REST and WebSocket APIs; `request_ms` is the request's `requestTimeEpoch`).
fn authorized_api(
    mut span: Span,
    rc: &Value,
    request_ms: i64,
    synchronous: bool,
    cx: &InferContext<'_>,
) -> Option<Inferred> {
    let Some(authorizer) = cx
        .decode_authorizer_context
        .then(|| authorizer_span(&span, rc, request_ms))
        .flatten()
    else {
        return api(span, synchronous);
    };
    // The API span starts when the authorizer span finishes, and is its child.
    span.start = authorizer.start.saturating_add(authorizer.duration);
    Some(Inferred {
        spans: vec![authorizer, span],
        synchronous,
    })
}

/// `aws.apigateway.authorizer`, as datadog-lambda's `insert_upstream_authorizer_span` draws it:
/// the API span's service, resource, type and tags, always synchronous, from the authorizer's
/// injected finish time to the later of that and `requestTimeEpoch + integrationLatency`.
fn authorizer_span(api: &Span, rc: &Value, request_ms: i64) -> Option<Span> {
    let data = authorizer_data(Some(rc), false)?;
    let Some(start) = data.parent_span_finish_time.as_ref().and_then(python_int) else {
        tracing::debug!(
            "authorizer data has no usable parent span finish time; no authorizer span"
        );
        return None;
    };
    let latency = match rc.pointer("/authorizer/integrationLatency") {
        None => 0,
        Some(value) => python_int(value)?,
    };
    let integration_start = request_ms.checked_add(latency)?.checked_mul(1_000_000)?;
    let finish = start.max(integration_start);
    let name = "aws.apigateway.authorizer";
    let mut span = Span {
        name: name.to_owned(),
        start,
        duration: finish.saturating_sub(start),
        ..api.clone()
    };
    span.meta.insert("operation_name".into(), name.to_owned());
    span.meta
        .insert("_inferred_span.synchronicity".into(), "sync".into());
    // datadog-lambda sets the inferred-span metric on the API span only.
    span.metrics.remove(INFERRED_METRIC);
    Some(span)
}

/// The route as datadog-lambda's `_get_resource_path` finds it: a templated `routeKey`'s path,
/// else `rawPath`, else `requestContext.resourcePath`, else the route key.
fn resource_path<'a>(event: &'a Value, rc: &'a Value) -> &'a str {
    let route_key = str_at(rc, "/routeKey").unwrap_or("");
    if route_key.contains('{')
        && let Some(path) = route_key.split(' ').nth(1)
    {
        return path;
    }
    [str_at(event, "/rawPath"), str_at(rc, "/resourcePath")]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or(route_key)
}

/// `aws.apigateway` for a REST API (v1 payload), starting at `requestTimeEpoch` (ms), or when
/// the request's traced authorizer finished (then preceded by `aws.apigateway.authorizer`).
pub(super) fn rest_api(event: &Value, cx: &InferContext<'_>) -> Option<Inferred> {
    let method = str_at(event, "/httpMethod").unwrap_or("None");
    let path = str_at(event, "/path").unwrap_or("None");
    let (mut span, rc, request_ms, synchronous) = api_span(
        event,
        cx,
        "aws.apigateway",
        method,
        path,
        "/requestTimeEpoch",
    )?;
    // datadog-lambda reads `identity.userAgent` unguarded and draws no span at all when
    // `identity` is missing; the span is kept here, without the tag (deliberate difference).
    tag(
        &mut span,
        "http.useragent",
        str_at(rc, "/identity/userAgent"),
    );
    span.meta.insert("span.kind".into(), "server".into());
    authorized_api(span, rc, request_ms, synchronous, cx)
}

/// `aws.httpapi` for an HTTP API (v2 payload), starting at `timeEpoch` (ms), or when the
/// request's traced authorizer finished. datadog-lambda draws no authorizer span for HTTP APIs.
pub(super) fn http_api(event: &Value, cx: &InferContext<'_>) -> Option<Inferred> {
    let rc = event.get("requestContext")?;
    let method = str_at(rc, "/http/method").unwrap_or("None");
    let path = str_at(event, "/rawPath").unwrap_or("None");
    let (mut span, rc, _, synchronous) =
        api_span(event, cx, "aws.httpapi", method, path, "/timeEpoch")?;
    tag(&mut span, "http.protocol", str_at(rc, "/http/protocol"));
    tag(&mut span, "http.source_ip", str_at(rc, "/http/sourceIp"));
    tag(&mut span, "http.useragent", str_at(rc, "/http/userAgent"));
    if cx.decode_authorizer_context
        && let Some(data) = authorizer_data(Some(rc), true)
    {
        // datadog-lambda fails to draw the span when the finish time is missing or not an
        // integer; it keeps `timeEpoch` here (deliberate difference).
        match data.parent_span_finish_time.as_ref().and_then(python_int) {
            Some(finish) => span.start = finish,
            None => tracing::debug!("authorizer data has no usable parent span finish time"),
        }
    }
    api(span, synchronous)
}

/// What REST and HTTP API spans share: the service, the `METHOD route` resource, the start
/// (ms at `start_ms` in `requestContext`), url, endpoint, method, api id, stage, request id.
/// Returns the span, `requestContext`, the request time (ms) and whether the invocation was
/// synchronous.
fn api_span<'a>(
    event: &'a Value,
    cx: &InferContext<'_>,
    name: &str,
    method: &str,
    path: &str,
    start_ms: &str,
) -> Option<(Span, &'a Value, i64, bool)> {
    let rc = event.get("requestContext")?;
    let domain = str_at(rc, "/domainName").unwrap_or("");
    let api_id = str_at(rc, "/apiId").unwrap_or("");
    let service = cx
        .config
        .inferred_service(api_id, "lambda_api_gateway", domain, "");
    let resource = format!("{method} {}", resource_path(event, rc));
    let request_ms = time_at(rc, start_ms, 1)?;
    let start = request_ms.checked_mul(1_000_000)?;
    let synchronous = !invoked_async(event);
    let mut span = base_span(name, service, resource, "web", start, synchronous);
    span.meta.remove("operation_name"); // datadog-lambda sets none on REST and HTTP API spans
    span.meta
        .insert("http.url".into(), format!("https://{domain}{path}"));
    span.meta.insert("endpoint".into(), path.to_owned());
    span.meta.insert("http.method".into(), method.to_owned());
    span.meta.insert("apiid".into(), api_id.to_owned());
    span.meta.insert("apiname".into(), api_id.to_owned());
    tag(&mut span, "stage", str_at(rc, "/stage"));
    span.meta
        .insert("request_id".into(), cx.request_id.to_owned());
    Some((span, rc, request_ms, synchronous))
}

/// `aws.apigateway.websocket` named after the route key, starting at `requestTimeEpoch` (ms),
/// or when the request's traced authorizer finished (then preceded by
/// `aws.apigateway.authorizer`).
pub(super) fn websocket(event: &Value, cx: &InferContext<'_>) -> Option<Inferred> {
    let rc = event.get("requestContext")?;
    let domain = str_at(rc, "/domainName").unwrap_or("");
    let endpoint = str_at(rc, "/routeKey").unwrap_or("");
    let api_id = str_at(rc, "/apiId").unwrap_or("");
    let service = cx
        .config
        .inferred_service(api_id, "lambda_api_gateway", domain, "");
    let request_ms = time_at(rc, "/requestTimeEpoch", 1)?;
    let synchronous = !invoked_async(event);
    let mut span = base_span(
        "aws.apigateway.websocket",
        service,
        endpoint.to_owned(),
        "web",
        request_ms.checked_mul(1_000_000)?,
        synchronous,
    );
    span.meta
        .insert("http.url".into(), format!("https://{domain}{endpoint}"));
    span.meta.insert("endpoint".into(), endpoint.to_owned());
    span.meta.insert("span.kind".into(), "server".into());
    span.meta.insert("apiid".into(), api_id.to_owned());
    span.meta.insert("apiname".into(), api_id.to_owned());
    tag(&mut span, "stage", str_at(rc, "/stage"));
    span.meta
        .insert("request_id".into(), cx.request_id.to_owned());
    tag(&mut span, "connection_id", str_at(rc, "/connectionId"));
    tag(&mut span, "event_type", str_at(rc, "/eventType"));
    tag(
        &mut span,
        "message_direction",
        str_at(rc, "/messageDirection"),
    );
    authorized_api(span, rc, request_ms, synchronous, cx)
}

/// `aws.lambda.url` (type `http`) for a function URL, starting at `timeEpoch` (ms).
pub(super) fn function_url(event: &Value, cx: &InferContext<'_>) -> Option<Inferred> {
    let rc = event.get("requestContext")?;
    let domain = str_at(rc, "/domainName").unwrap_or("");
    let api_id = str_at(rc, "/apiId").unwrap_or("");
    let service = cx.config.inferred_service(api_id, "lambda_url", domain, "");
    let method = str_at(rc, "/http/method").unwrap_or("None");
    let path = str_at(rc, "/http/path").unwrap_or("None");
    let resource = format!("{method} {path}");
    let start = time_at(rc, "/timeEpoch", 1)?.checked_mul(1_000_000)?;
    let mut span = base_span("aws.lambda.url", service, resource, "http", start, true);
    span.meta
        .insert("http.url".into(), format!("https://{domain}{path}"));
    span.meta.insert("endpoint".into(), path.to_owned());
    span.meta.insert("http.method".into(), method.to_owned());
    span.meta
        .insert("request_id".into(), cx.request_id.to_owned());
    api(span, true)
}

/// `aws.alb` (type `http`); ALB events carry no request time, so it starts at handler time.
pub(super) fn alb(event: &Value, cx: &InferContext<'_>) -> Option<Inferred> {
    let header = |name: &str| {
        let single = event
            .get("headers")
            .and_then(Value::as_object)
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str());
        single.or_else(|| {
            event
                .get("multiValueHeaders")
                .and_then(Value::as_object)
                .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, v)| v.get(0))
                .and_then(Value::as_str)
        })
    };
    let host = header("host");
    let method = str_at(event, "/httpMethod");
    let path = str_at(event, "/path");
    let proto = header("x-forwarded-proto").unwrap_or("http");
    let host_key = host.unwrap_or("");
    let service = cx
        .config
        .inferred_service(host_key, "lambda_alb", host_key, "");
    let resource = match (method, path) {
        (Some(m), Some(p)) => format!("{m} {p}"),
        (m, p) => m.or(p).unwrap_or_default().to_owned(),
    };
    let mut span = base_span("aws.alb", service, resource, "http", cx.now_ns, true);
    span.meta.insert("span.kind".into(), "server".into());
    tag(&mut span, "http.method", method);
    if let (Some(host), Some(path)) = (host, path) {
        span.meta
            .insert("http.url".into(), format!("{proto}://{host}{path}"));
    }
    tag(&mut span, "http.useragent", header("user-agent"));
    tag(&mut span, "endpoint", path);
    span.meta
        .insert("request_id".into(), cx.request_id.to_owned());
    tag(
        &mut span,
        "target_group_arn",
        str_at(event, "/requestContext/elb/targetGroupArn"),
    );
    api(span, true)
}
