//! Inferred spans: the managed service that triggered the function (a queue, a topic, an API),
//! as datadog-lambda (Python, `tracing.create_inferred_span*`) draws it — same names,
//! resources, start times, tags and service naming.
//!
//! A trigger whose required fields are missing gets no inferred span, as in datadog-lambda
//! (where the builder raises and the exception is swallowed).
//!
//! `tests/e2e/inferred_differential.rs` compares every event fixture with datadog-lambda
//! 8.130.0. Deliberate differences:
//! 1. A REST event without `requestContext.identity` keeps its span, without `http.useragent`
//!    (datadog-lambda reads it unguarded and draws no span).
//! 2. Times are RFC 3339 with or without fractional seconds (datadog-lambda's fixed
//!    `strptime` formats fail on the other form, and it draws no span).
//! 3. An HTTP API request whose fresh authorizer data has no usable finish time starts at
//!    `timeEpoch` (datadog-lambda's `int(None)` raises: no span).
//! 4. An absent field gives no tag (ddtrace 4.16 writes the string `"None"`).
//! 5. An upstream span that would end before it starts has duration 0, not a negative one.
//! 6. Times are exact integers of ns (datadog-lambda goes through float seconds, which are
//!    256 ns coarse at today's epoch).

mod http;
mod messaging;

use ddlambda_wire::Span;
use serde_json::Value;

use crate::config::Config;
use crate::trigger::{ApiGatewayKind, EventSource};

/// Metric set on every inferred span (`InferredSpanInfo.METRIC`).
pub const INFERRED_METRIC: &str = "_dd._inferred_span";

/// The inferred spans of one invocation, upstream first: `[aws.sns, aws.sqs]` for SNS→SQS.
/// Each span's parent is the one before it; the last one parents `aws.lambda`. Ids, trace ids
/// and parents are assigned by the caller; starts are set; durations are set for every span
/// but the last, which finishes with `aws.lambda` (at its start when asynchronous, at its
/// end when synchronous).
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    pub spans: Vec<Span>,
    /// The last span finishes when `aws.lambda` finishes (API calls), not when it starts.
    pub synchronous: bool,
}

/// What the builders need besides the event.
pub struct InferContext<'a> {
    pub config: &'a Config,
    pub request_id: &'a str,
    /// Now, in ns: the start of spans the event gives no time for (ALB).
    pub now_ns: i64,
    /// `DD_DECODE_AUTHORIZER_CONTEXT` ([`crate::extract::Chain::decodes_authorizer_context`]):
    /// a traced API Gateway authorizer's data gives the `aws.apigateway.authorizer` span and
    /// the API span's start.
    pub decode_authorizer_context: bool,
}

/// The inferred spans for `event`, or `None` when the trigger has none, or when it is off
/// (`DD_TRACE_MANAGED_SERVICES=false`).
pub fn infer(event: &Value, source: EventSource, cx: &InferContext<'_>) -> Option<Inferred> {
    if !cx.config.managed_services {
        return None;
    }
    match source {
        EventSource::Sqs => messaging::sqs(event, cx),
        EventSource::Sns => messaging::sns(event, cx).map(Inferred::asynchronous),
        EventSource::Kinesis => messaging::kinesis(event, cx).map(Inferred::asynchronous),
        EventSource::EventBridge => messaging::eventbridge(event, cx).map(Inferred::asynchronous),
        EventSource::DynamoDb => messaging::dynamodb(event, cx).map(Inferred::asynchronous),
        EventSource::S3 => messaging::s3(event, cx).map(Inferred::asynchronous),
        EventSource::ApiGateway(ApiGatewayKind::Rest) => http::rest_api(event, cx),
        EventSource::ApiGateway(ApiGatewayKind::Http) => http::http_api(event, cx),
        EventSource::ApiGateway(ApiGatewayKind::WebSocket) => http::websocket(event, cx),
        EventSource::FunctionUrl => http::function_url(event, cx),
        EventSource::Alb => http::alb(event, cx),
        _ => None,
    }
}

impl Inferred {
    fn asynchronous(span: Span) -> Self {
        Self {
            spans: vec![span],
            synchronous: false,
        }
    }

    /// The span that parents `aws.lambda`.
    pub fn last(&self) -> Option<&Span> {
        self.spans.last()
    }
}

/// A span with the tags every inferred span carries.
fn base_span(
    name: &str,
    service: String,
    resource: String,
    r#type: &str,
    start: i64,
    synchronous: bool,
) -> Span {
    let mut span = Span {
        service,
        name: name.to_owned(),
        resource: resource.clone(),
        start,
        r#type: r#type.to_owned(),
        ..Span::default()
    };
    let meta = &mut span.meta;
    meta.insert("operation_name".into(), name.to_owned());
    meta.insert("resource_names".into(), resource);
    meta.insert(
        "_inferred_span.synchronicity".into(),
        if synchronous { "sync" } else { "async" }.into(),
    );
    meta.insert("_inferred_span.tag_source".into(), "self".into());
    meta.insert("_dd.origin".into(), "lambda".into());
    span.metrics.insert(INFERRED_METRIC.into(), 1.0);
    span
}

/// Sets `key` when there is a value. datadog-lambda passes `None` through and ddtrace 4.16
/// writes it as the string `"None"`; an absent field gives no tag here (deliberate difference).
fn tag(span: &mut Span, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        span.meta.insert(key.to_owned(), value.to_owned());
    }
}

/// Python's `int(value)` on a JSON value, as datadog-lambda applies it to injected times: an
/// integer as is, a float truncated, a string holding an integer parsed; anything else `None`
/// (where Python raises).
fn python_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// A JSON number or numeric string (AWS sends `SentTimestamp` as a string) in `unit_ns`
/// nanoseconds per unit, converted to ns in decimal so no float rounding creeps in:
/// `1643638425.163` seconds is exactly `1643638425163000000` ns.
fn time_at(value: &Value, pointer: &str, unit_ns: i64) -> Option<i64> {
    let text = match value.pointer(pointer)? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    decimal_to_ns(&text, unit_ns)
}

fn decimal_to_ns(text: &str, unit_ns: i64) -> Option<i64> {
    if text.contains(['e', 'E']) {
        return text
            .parse::<f64>()
            .ok()
            .map(|v| (v * unit_ns as f64).round() as i64);
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: i64 = whole.parse().ok()?;
    let mut scaled = whole.checked_mul(unit_ns)?;
    let mut digit_unit = unit_ns;
    for digit in fraction.bytes() {
        if !digit.is_ascii_digit() {
            return None;
        }
        digit_unit /= 10;
        if digit_unit == 0 {
            break;
        }
        scaled += i64::from(digit - b'0') * digit_unit;
    }
    Some(scaled)
}

/// The times datadog-lambda parses for SNS, S3, EventBridge and Step Functions
/// (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`), in ns since the epoch.
pub use ddlambda_wire::time::parse_rfc3339_ns as parse_utc_timestamp;

#[cfg(test)]
mod tests;
