//! What triggered the invocation: event-source detection (datadog-lambda's
//! `trigger.parse_event_source`, later rules overriding earlier ones) and the
//! `function_trigger.event_source` / `function_trigger.event_source_arn` tags on `aws.lambda`.

use std::io::Read;

use base64::Engine;
use serde_json::Value;

/// The kind of event that invoked the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// API Gateway; the subtype tells REST, HTTP API and WebSocket apart.
    ApiGateway(ApiGatewayKind),
    /// Application Load Balancer.
    Alb,
    /// CloudWatch Logs subscription.
    CloudWatchLogs,
    /// CloudWatch (scheduled / AWS) events.
    CloudWatchEvents,
    /// CloudFront (Lambda@Edge).
    CloudFront,
    /// DynamoDB stream.
    DynamoDb,
    /// EventBridge (custom events).
    EventBridge,
    /// Kinesis stream.
    Kinesis,
    /// Lambda function URL.
    FunctionUrl,
    /// S3 notification.
    S3,
    /// SNS notification.
    Sns,
    /// SQS message batch.
    Sqs,
    /// Step Functions (context object injected into the payload).
    StepFunctions,
    /// Anything else, including direct invokes.
    Unknown,
}

/// API Gateway flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiGatewayKind {
    /// A shape with `requestContext.stage` but none of the markers below.
    Other,
    /// REST API (v1 payload, `httpMethod`).
    Rest,
    /// HTTP API (v2 payload, `routeKey`).
    Http,
    /// WebSocket API (`requestContext.messageDirection`).
    WebSocket,
}

/// The values of several keys of a JSON object, in one pass. A `BTreeMap` look-up calls
/// `memcmp` for every key it passes; this compares only keys of the right length.
pub(crate) fn get_many<'a, const N: usize>(
    obj: &'a serde_json::Map<String, Value>,
    keys: [&str; N],
) -> [Option<&'a Value>; N] {
    let mut found = [None; N];
    for (k, v) in obj {
        if let Some(i) = keys.iter().position(|key| key.len() == k.len() && key == k) {
            found[i] = Some(v);
        }
    }
    found
}

/// The second dot-separated label of a domain name (`<id>.lambda-url.<region>.on.aws`).
fn second_label(domain: &str) -> Option<&str> {
    let rest = &domain[memchr::memchr(b'.', domain.as_bytes())? + 1..];
    Some(match memchr::memchr(b'.', rest.as_bytes()) {
        Some(end) => &rest[..end],
        None => rest,
    })
}

/// What one pass over an event's top-level keys tells: its source, and the top-level fields
/// the carrier dispatch and the HTTP carrier start from (looking each up in the map again costs
/// more than the pass).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape<'a> {
    /// The event source.
    pub(crate) source: EventSource,
    /// A `request` key (AppSync).
    pub(crate) has_request: bool,
    /// `requestContext`, whatever its type.
    pub(crate) request_context: Option<&'a Value>,
    /// `headers`, whatever its type.
    pub(crate) headers: Option<&'a Value>,
    /// `multiValueHeaders`, whatever its type.
    pub(crate) multi_value_headers: Option<&'a Value>,
    /// `Records`, whatever its type.
    pub(crate) records: Option<&'a Value>,
}

impl Shape<'static> {
    /// The shape of no event: an unknown source without any field.
    pub(crate) const NONE: Self = Shape {
        source: EventSource::Unknown,
        has_request: false,
        request_context: None,
        headers: None,
        multi_value_headers: None,
        records: None,
    };
}

impl<'a> Shape<'a> {
    /// `Records[0]`, if `Records` is a non-empty array.
    pub(crate) fn first_record(&self) -> Option<&'a Value> {
        self.records?.as_array()?.first()
    }

    /// An SQS, SNS or Kinesis batch of more than one record: its other records are span links.
    pub(crate) fn is_batch(&self) -> bool {
        matches!(
            self.source,
            EventSource::Sqs | EventSource::Sns | EventSource::Kinesis
        ) && self
            .records
            .and_then(Value::as_array)
            .is_some_and(|r| r.len() > 1)
    }

    /// The shape of `event`.
    pub(crate) fn of(event: &'a Value) -> Self {
        let mut top = TopLevel::default();
        let mut shape: Self = Shape::NONE;
        if let Some(obj) = event.as_object() {
            for (key, value) in obj {
                match TopLevelKey::of(key) {
                    Some(TopLevelKey::RequestContext) => shape.request_context = Some(value),
                    Some(TopLevelKey::Awslogs) => top.awslogs = Some(value),
                    Some(TopLevelKey::DetailType) => top.detail_type = Some(value),
                    Some(TopLevelKey::Detail) => top.detail = Some(value),
                    Some(TopLevelKey::Source) => top.source_field = Some(value),
                    Some(TopLevelKey::HttpMethod) => top.http_method = true,
                    Some(TopLevelKey::RouteKey) => top.route_key = true,
                    Some(TopLevelKey::Records) => shape.records = Some(value),
                    Some(TopLevelKey::StepFunctions) => top.maybe_step_functions = true,
                    Some(TopLevelKey::Request) => shape.has_request = true,
                    Some(TopLevelKey::Headers) => shape.headers = Some(value),
                    Some(TopLevelKey::MultiValueHeaders) => shape.multi_value_headers = Some(value),
                    None => {}
                }
            }
            shape.source = EventSource::from_fields(event, &shape, &top);
        }
        shape
    }
}

/// The top-level fields detection reads beside those of [`Shape`].
#[derive(Default, Clone, Copy)]
struct TopLevel<'a> {
    awslogs: Option<&'a Value>,
    detail_type: Option<&'a Value>,
    detail: Option<&'a Value>,
    source_field: Option<&'a Value>,
    http_method: bool,
    route_key: bool,
    maybe_step_functions: bool,
}

/// The top-level keys event-source detection and the carrier dispatch read.
#[derive(Clone, Copy)]
enum TopLevelKey {
    RequestContext,
    Awslogs,
    DetailType,
    Detail,
    Source,
    HttpMethod,
    RouteKey,
    Records,
    /// `Payload`, `Execution` or `_datadog`.
    StepFunctions,
    Request,
    Headers,
    MultiValueHeaders,
}

impl TopLevelKey {
    /// Every key of the event goes through this: length and first byte rule out almost all
    /// of them before any string comparison.
    fn of(key: &str) -> Option<Self> {
        let first = key.as_bytes().first().copied().unwrap_or(0);
        let (candidate, name) = match (key.len(), first) {
            (14, b'r') => (Self::RequestContext, "requestContext"),
            (7, b'a') => (Self::Awslogs, "awslogs"),
            (11, b'd') => (Self::DetailType, "detail-type"),
            (6, b'd') => (Self::Detail, "detail"),
            (6, b's') => (Self::Source, "source"),
            (10, b'h') => (Self::HttpMethod, "httpMethod"),
            (8, b'r') => (Self::RouteKey, "routeKey"),
            (7, b'R') => (Self::Records, "Records"),
            (7, b'P') => (Self::StepFunctions, "Payload"),
            (9, b'E') => (Self::StepFunctions, "Execution"),
            (8, b'_') => (Self::StepFunctions, "_datadog"),
            (7, b'r') => (Self::Request, "request"),
            (7, b'h') => (Self::Headers, "headers"),
            (17, b'm') => (Self::MultiValueHeaders, "multiValueHeaders"),
            _ => return None,
        };
        (key == name).then_some(candidate)
    }
}

impl EventSource {
    /// Detects the event source from the event's shape (one pass over its top-level keys).
    pub fn detect(event: &Value) -> Self {
        Shape::of(event).source
    }

    /// datadog-lambda's rules over the top-level fields `Shape::of` collected.
    fn from_fields(event: &Value, shape: &Shape<'_>, top: &TopLevel<'_>) -> Self {
        let TopLevel {
            awslogs,
            detail_type,
            detail,
            source_field,
            http_method,
            route_key,
            maybe_step_functions,
        } = *top;
        let mut source = Self::Unknown;
        let [stage, domain_name, message_direction, elb] =
            match shape.request_context.and_then(Value::as_object) {
                Some(rc) => get_many(rc, ["stage", "domainName", "messageDirection", "elb"]),
                None => [None; 4],
            };
        if truthy(stage) {
            if domain_name
                .and_then(Value::as_str)
                .is_some_and(|d| second_label(d) == Some("lambda-url"))
            {
                return Self::FunctionUrl;
            }
            let mut kind = ApiGatewayKind::Other;
            if http_method {
                kind = ApiGatewayKind::Rest;
            }
            if route_key {
                kind = ApiGatewayKind::Http;
            }
            if truthy(message_direction) {
                kind = ApiGatewayKind::WebSocket;
            }
            source = Self::ApiGateway(kind);
        }
        if truthy(elb) {
            source = Self::Alb;
        }
        if truthy(awslogs) {
            source = Self::CloudWatchLogs;
        }
        if truthy(detail_type) {
            source = Self::EventBridge;
        }
        let has_event_categories = detail
            .and_then(Value::as_object)
            .is_some_and(|d| d.get("EventCategories").is_some_and(|c| !c.is_null()));
        if source_field.and_then(Value::as_str) == Some("aws.events") || has_event_categories {
            source = Self::CloudWatchEvents;
        }
        if maybe_step_functions && is_step_functions_event(event) {
            source = Self::StepFunctions;
        }
        if let Some(record) = shape.first_record().and_then(Value::as_object) {
            let [lower, upper, cf] = get_many(record, ["eventSource", "EventSource", "cf"]);
            let aws_source = lower
                .filter(|v| truthy(Some(v)))
                .or(upper)
                .and_then(Value::as_str);
            match aws_source {
                Some("aws:dynamodb") => source = Self::DynamoDb,
                Some("aws:kinesis") => source = Self::Kinesis,
                Some("aws:s3") => source = Self::S3,
                Some("aws:sns") => source = Self::Sns,
                Some("aws:sqs") => source = Self::Sqs,
                _ => {}
            }
            if truthy(cf) {
                source = Self::CloudFront;
            }
        }
        source
    }

    /// The `function_trigger.event_source` value, `None` for unknown events.
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Self::ApiGateway(_) => "api-gateway",
            Self::Alb => "application-load-balancer",
            Self::CloudWatchLogs => "cloudwatch-logs",
            Self::CloudWatchEvents => "cloudwatch-events",
            Self::CloudFront => "cloudfront",
            Self::DynamoDb => "dynamodb",
            Self::EventBridge => "eventbridge",
            Self::Kinesis => "kinesis",
            Self::FunctionUrl => "lambda-function-url",
            Self::S3 => "s3",
            Self::Sns => "sns",
            Self::Sqs => "sqs",
            Self::StepFunctions => "states",
            Self::Unknown => return None,
        })
    }
}

/// The trigger tags for `aws.lambda`, as datadog-lambda's `extract_trigger_tags`:
/// `function_trigger.event_source`, `function_trigger.event_source_arn` when known, and for
/// HTTP triggers `span.kind`, `http.url`, `http.method`, `http.route`, `http.referer`,
/// `http.useragent` (`http.status_code` comes with the response). `invoked_function_arn`
/// supplies region, account and function name for ARNs the event does not carry.
pub fn trigger_tags(
    event: &Value,
    source: EventSource,
    invoked_function_arn: &str,
) -> Vec<(&'static str, String)> {
    let Some(name) = source.as_str() else {
        return Vec::new();
    };
    let mut tags = vec![("function_trigger.event_source", name.to_owned())];
    if let Some(arn) = event_source_arn(event, source, invoked_function_arn) {
        tags.push(("function_trigger.event_source_arn", arn));
    }
    if source.is_http() {
        tags.extend(http_tags(event));
    }
    tags
}

impl EventSource {
    /// API Gateway, ALB and function URLs: the triggers with HTTP tags and a status code.
    pub fn is_http(self) -> bool {
        matches!(self, Self::ApiGateway(_) | Self::Alb | Self::FunctionUrl)
    }
}

/// The HTTP facets of an HTTP trigger (datadog-lambda's `extract_http_tags`).
fn http_tags(event: &Value) -> Vec<(&'static str, String)> {
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    let mut tags = vec![("span.kind", "server".to_owned())];
    let request_context = event.get("requestContext").filter(|v| v.is_object());
    let mut path = text(event.get("path"));
    let mut method = text(event.get("httpMethod"));
    let mut url = None;
    let mut route = None;
    let headers = crate::extract::resolve_headers(event).unwrap_or_default();
    let header = |name: &str| {
        headers
            .iter()
            .filter(|(k, _)| k.as_str() == name)
            .find_map(|(_, v)| v.as_str().filter(|s| !s.is_empty()))
    };
    if let Some(rc) = request_context.filter(|rc| truthy(rc.get("stage"))) {
        url = text(rc.get("domainName")).map(|d| format!("https://{d}"));
        path = text(rc.get("path"));
        method = text(rc.get("httpMethod"));
        if let Some(http) = rc.get("http").filter(|h| truthy(Some(h)))
            && event.get("version").and_then(Value::as_str) == Some("2.0")
        {
            path = text(http.get("path"));
            method = text(http.get("method"));
        }
    } else if request_context.is_some_and(|rc| truthy(rc.get("elb"))) {
        if let Some(host) = header("host") {
            url = Some(format!(
                "{}://{host}",
                header("x-forwarded-proto").unwrap_or("http")
            ));
        }
        if let Some(agent) = header("user-agent") {
            tags.push(("http.useragent", agent.to_owned()));
        }
        route = path.map(str::to_owned);
    }
    if let Some(mut url) = url {
        if let Some(path) = path {
            url.push_str(path);
        }
        tags.push(("http.url", url));
    }
    if let Some(method) = method {
        tags.push(("http.method", method.to_owned()));
    }
    let referer = headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("referer") && truthy(Some(v)))
        .and_then(|(_, v)| v.as_str());
    if let Some(referer) = referer {
        tags.push(("http.referer", referer.to_owned()));
    }
    let route_key = text(event.get("routeKey")).or_else(|| text(event.get("resource")));
    if let Some(key) = route_key {
        route = key.rsplit(' ').next().map(str::to_owned);
    }
    if let Some(route) = route {
        tags.push(("http.route", route));
    }
    tags
}

/// The ARN of the trigger: the record's `eventSourceARN`, else one built from the event.
pub fn event_source_arn(
    event: &Value,
    source: EventSource,
    invoked_function_arn: &str,
) -> Option<String> {
    let record_arn = |v: &Value| {
        v.get("eventSourceARN")
            .filter(|a| truthy(Some(a)))
            .or_else(|| v.get("eventSourceArn"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let from_record = match first_record(event) {
        Some(record) => record_arn(record),
        None => record_arn(event),
    };
    if from_record.is_some() {
        return from_record;
    }
    let fn_arn: Vec<&str> = invoked_function_arn.split(':').collect();
    let region = fn_arn.get(3).copied().unwrap_or("");
    let account = fn_arn.get(4).copied().unwrap_or("");
    let partition = partition(region);
    let record = first_record(event);
    let str_at = |v: Option<&Value>, path: &str| {
        v.and_then(|v| v.pointer(path))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match source {
        EventSource::S3 => str_at(record, "/s3/bucket/arn"),
        EventSource::Sns => str_at(record, "/Sns/TopicArn"),
        EventSource::CloudFront => {
            let id = str_at(record, "/cf/config/distributionId").unwrap_or_default();
            Some(format!(
                "arn:{partition}:cloudfront::{account}:distribution/{id}"
            ))
        }
        EventSource::FunctionUrl => {
            let name = fn_arn.get(6).copied().unwrap_or("");
            let mut arn = format!("arn:aws:lambda:{region}:{account}:url:{name}");
            if let Some(qualifier) = fn_arn.get(7) {
                arn.push(':');
                arn.push_str(qualifier);
            }
            Some(arn)
        }
        EventSource::ApiGateway(_) => {
            let api_id = str_at(Some(event), "/requestContext/apiId").unwrap_or_default();
            let stage = str_at(Some(event), "/requestContext/stage").unwrap_or_default();
            Some(format!(
                "arn:{partition}:apigateway:{region}::/restapis/{api_id}/stages/{stage}"
            ))
        }
        EventSource::Alb => str_at(Some(event), "/requestContext/elb/targetGroupArn"),
        EventSource::CloudWatchLogs => {
            let group = cloudwatch_log_group(event)?;
            Some(format!(
                "arn:{partition}:logs:{region}:{account}:log-group:{group}"
            ))
        }
        EventSource::CloudWatchEvents => str_at(Some(event), "/resources/0"),
        EventSource::StepFunctions => {
            let ctx = event.get("_datadog").unwrap_or(event);
            str_at(Some(ctx), "/StateMachine/Id")
        }
        _ => None,
    }
}

/// `awslogs.data` is base64 gzip JSON; the log group names the ARN.
fn cloudwatch_log_group(event: &Value) -> Option<String> {
    let data = event.pointer("/awslogs/data").and_then(Value::as_str)?;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut json)
        .ok()?;
    let logs: Value = serde_json::from_slice(&json).ok()?;
    Some(
        logs.get("logGroup")
            .and_then(Value::as_str)
            .unwrap_or("cloudwatch")
            .to_owned(),
    )
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("cn-") {
        "aws-cn"
    } else {
        "aws"
    }
}

/// `Records[0]`, if the event has a non-empty `Records` array.
pub fn first_record(event: &Value) -> Option<&Value> {
    event.get("Records")?.as_array()?.first()
}

/// A Step Functions context object, directly, under `Payload` (legacy Lambda invoke), or under
/// `_datadog` (JSONata) with `serverless-version`.
pub fn is_step_functions_event(event: &Value) -> bool {
    let event = event.get("Payload").unwrap_or(event);
    let Some(obj) = event.as_object() else {
        return false;
    };
    let has_context = |o: &serde_json::Map<String, Value>| {
        o.contains_key("Execution") && o.contains_key("StateMachine") && o.contains_key("State")
    };
    if has_context(obj) {
        return true;
    }
    obj.get("_datadog")
        .and_then(Value::as_object)
        .is_some_and(|dd| has_context(dd) && dd.contains_key("serverless-version"))
}

/// Python truthiness for a JSON value: absent, null, false, 0, "" and empty containers are false.
pub(crate) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn second_labels() {
        for domain in [
            "a.lambda-url.us-east-1.on.aws",
            "a.b",
            "a.",
            "a",
            "",
            ".b.c",
            "a..b",
        ] {
            assert_eq!(second_label(domain), domain.split('.').nth(1), "{domain:?}");
        }
    }

    #[test]
    fn detects_sources() {
        let cases = [
            (
                json!({"Records": [{"eventSource": "aws:sqs"}]}),
                EventSource::Sqs,
            ),
            (
                json!({"Records": [{"EventSource": "aws:sns"}]}),
                EventSource::Sns,
            ),
            (
                json!({"Records": [{"eventSource": "aws:kinesis"}]}),
                EventSource::Kinesis,
            ),
            (
                json!({"detail-type": "x", "source": "my.app"}),
                EventSource::EventBridge,
            ),
            (
                json!({"detail-type": "x", "source": "aws.events"}),
                EventSource::CloudWatchEvents,
            ),
            (
                json!({"requestContext": {"stage": "p", "domainName": "a.lambda-url.us-east-1.on.aws"}}),
                EventSource::FunctionUrl,
            ),
            (
                json!({"httpMethod": "GET", "requestContext": {"stage": "p"}}),
                EventSource::ApiGateway(ApiGatewayKind::Rest),
            ),
            (
                json!({"requestContext": {"elb": {"targetGroupArn": "t"}}}),
                EventSource::Alb,
            ),
            (
                json!({"Execution": {}, "StateMachine": {}, "State": {}}),
                EventSource::StepFunctions,
            ),
            (json!([1, 2]), EventSource::Unknown),
        ];
        for (event, want) in cases {
            assert_eq!(EventSource::detect(&event), want, "{event}");
        }
    }

    #[test]
    fn arns() {
        let fn_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn";
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q"}]});
        assert_eq!(
            trigger_tags(&sqs, EventSource::detect(&sqs), fn_arn),
            vec![
                ("function_trigger.event_source", "sqs".to_owned()),
                (
                    "function_trigger.event_source_arn",
                    "arn:aws:sqs:us-east-1:1:q".to_owned()
                )
            ]
        );
        let api = json!({"httpMethod": "GET", "requestContext": {"stage": "dev", "apiId": "abc"}});
        assert_eq!(
            event_source_arn(&api, EventSource::detect(&api), fn_arn).as_deref(),
            Some("arn:aws:apigateway:us-east-1::/restapis/abc/stages/dev")
        );
    }
}
