//! ddlambda's inferred spans against datadog-lambda 8.130.0's (the `tracer` peer venv, through
//! `tests/peers/inferred_oracle.py`) for every event fixture in `tests/fixtures/events/`: the
//! same chain of spans (upstream first), compared field by field — name, service, resource,
//! type, start, duration of the finished upstream spans, meta, metrics and parenting — under
//! the default configuration and under service-naming and authorizer settings.
//!
//! Compared structurally, not by value:
//! - ids: each side's first span must be parented by that side's extracted context (or be a
//!   root without one), each later span by the span before it; the contexts themselves must be
//!   equal (extraction is compared in full by `extract_differential`);
//! - the ALB span's start, which is "now" (datadog-lambda's clock while it ran, ours as given);
//! - times within 1 µs: datadog-lambda goes through float seconds (`span.start = 1634662094.538`,
//!   `finish(t / 1e9)`), which at today's epoch is 256 ns coarse; ddlambda's are exact decimals;
//! - the tags and metrics ddtrace's tracer itself puts on every span or chunk root (`language`,
//!   `runtime-id`, `process_id`, `_dd.top_level`, `_sampling_priority_v1`, `_dd.p.*`, …): the
//!   wrapper sets the trace-level ones when it assembles the trace, not the inferred-span
//!   builders compared here.
//!
//! Deliberate differences, each asserted where it shows (README "deliberate differences"):
//! - A REST event without `requestContext.identity` still gets its `aws.apigateway` span, without
//!   `http.useragent` (datadog-lambda reads `identity.userAgent` unguarded and draws no span).
//! - Times are parsed as RFC 3339, with or without fractional seconds: an EventBridge `time`
//!   with a fraction gets a span (datadog-lambda's `%H:%M:%SZ` format fails and draws none).
//! - An HTTP API request whose fresh authorizer data has no usable finish time starts its span
//!   at `timeEpoch` (datadog-lambda's `int(None)` raises and draws no span).
//! - An upstream span (SNS or EventBridge before SQS) that would end before it starts has
//!   duration 0 (datadog-lambda writes a negative duration).
//! - A field the event lacks gives no tag (ddtrace 4.16 writes datadog-lambda's `None` as the
//!   string "None").
//! - Where extraction deliberately differs (the `cases.json` deviations, which
//!   `extract_differential` checks), the first inferred span's parent follows each side's
//!   context: e.g. a context without priority parents it here, and it is a root in Python.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ddlambda::config::Config;
use ddlambda::extract::{Chain, InvocationInfo};
use ddlambda::spans::inferred::{InferContext, infer};
use ddlambda::trigger::EventSource;
use ddlambda::wire::Span;
use ddlambda_tests::command::{output_text, peer_program, repo_root, run};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);
/// The request id both sides are given (`context.aws_request_id`).
const REQUEST_ID: &str = "00000000-0000-0000-0000-000000000000";
/// How far apart two times may be: datadog-lambda's float seconds are 256 ns coarse.
const TIME_TOLERANCE_NS: i64 = 1_000;

/// Tags ddtrace's tracer adds to spans by itself, not the inferred-span builders.
const TRACER_META: [&str; 6] = [
    "_dd.base_service",
    "_dd.svc_src",
    "_dd.tags.process",
    "language",
    "runtime-id",
    "_dd.hostname",
];
/// Metrics ddtrace's tracer adds to spans and chunk roots by itself.
const TRACER_METRICS: [&str; 4] = [
    "_dd.top_level",
    "_sampling_priority_v1",
    "process_id",
    "_dd.measured",
];

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/events")
}

/// Every event fixture, by file name.
fn events() -> BTreeMap<String, Value> {
    let mut events = BTreeMap::new();
    for entry in std::fs::read_dir(fixtures()).expect("fixtures dir") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        if !name.ends_with(".json") || name == "cases.json" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("fixture");
        let event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        events.insert(name, event);
    }
    events
}

/// datadog-lambda's answer for every fixture under `env`, and the wall-clock window it ran in
/// (ns); `None` when the peer is absent (and not required).
fn oracle(env: &[(&str, &str)]) -> Option<(Value, (i64, i64))> {
    let python = peer_program("tracer", "python")?;
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/peers/inferred_oracle.py"))
        .arg(fixtures());
    for (key, value) in env {
        cmd.arg(format!("{key}={value}"));
    }
    let before = now_ns();
    let out = run(&mut cmd, LIMIT);
    let after = now_ns();
    assert!(out.status.success(), "oracle failed: {}", output_text(&out));
    let answers = serde_json::from_slice(&out.stdout).expect("oracle prints JSON");
    Some((answers, (before, after)))
}

fn now_ns() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_nanos()).expect("ns fit in i64")
}

/// A fixed "now" for our ALB spans, told apart from any event time.
const OUR_NOW_NS: i64 = 4_102_444_800_000_000_000; // 2100-01-01

/// One side's answer for one event: the extracted context (trace id, span id) and the chain
/// of inferred spans, or `None` when it draws none.
#[derive(Debug)]
struct Answer {
    context: Option<(String, String)>,
    spans: Option<Vec<Drawn>>,
}

/// One span of a chain, in a form both sides map to.
#[derive(Debug)]
struct Drawn {
    name: String,
    service: String,
    resource: String,
    span_type: String,
    start_ns: i64,
    /// Set for the finished (upstream) spans only.
    duration_ns: Option<i64>,
    meta: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    /// `"context"`, `"root"` or `"span <i>"`.
    parent: String,
}

fn ours(event: &Value, config: &Config, chain: &Chain) -> Answer {
    let info = InvocationInfo {
        request_id: REQUEST_ID.to_owned(),
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:inferred-oracle"
            .to_owned(),
        client_context: None,
    };
    let decision = chain.decide(event, &info, None);
    let context = decision
        .context
        .as_ref()
        .map(|c| (c.trace_id.to_string(), c.parent_id.to_string()));
    let cx = InferContext {
        config,
        request_id: REQUEST_ID,
        now_ns: OUR_NOW_NS,
        decode_authorizer_context: chain.decodes_authorizer_context(),
    };
    let spans = infer(event, EventSource::detect(event), &cx).map(|inferred| {
        let count = inferred.spans.len();
        inferred
            .spans
            .iter()
            .enumerate()
            .map(|(i, span)| {
                // The wrapper chains them so (checked end to end in wrapper/tests/invocation.rs).
                let parent = match (i, &context) {
                    (0, Some(_)) => "context".to_owned(),
                    (0, None) => "root".to_owned(),
                    (i, _) => format!("span {}", i - 1),
                };
                drawn_from_span(span, (i + 1 < count).then_some(span.duration), parent)
            })
            .collect()
    });
    Answer { context, spans }
}

fn drawn_from_span(span: &Span, duration_ns: Option<i64>, parent: String) -> Drawn {
    Drawn {
        name: span.name.clone(),
        service: span.service.clone(),
        resource: span.resource.clone(),
        span_type: span.r#type.clone(),
        start_ns: span.start,
        duration_ns,
        meta: span
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        metrics: span.metrics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        parent,
    }
}

/// datadog-lambda's answer: a chain only when `create_inferred_span` returned a span (when it
/// raises midway, spans it started are left open and none parents `aws.lambda`).
fn theirs(answer: &Value) -> Answer {
    let context = answer["context"].as_object().map(|c| {
        (
            c["trace_id"].as_str().expect("trace_id").to_owned(),
            c["span_id"].as_str().expect("span_id").to_owned(),
        )
    });
    let spans = answer["spans"].as_array().expect("spans");
    let returned = spans.iter().any(|s| s["returned"] == true);
    let spans = returned.then(|| {
        spans
            .iter()
            .map(|s| {
                let parent = match &s["parent"] {
                    Value::String(p) => p.clone(),
                    Value::Object(o) if o.contains_key("span") => format!("span {}", o["span"]),
                    other => format!("other {other}"),
                };
                Drawn {
                    name: text(&s["name"]),
                    service: text(&s["service"]),
                    resource: text(&s["resource"]),
                    span_type: text(&s["span_type"]),
                    start_ns: s["start_ns"].as_i64().expect("start_ns"),
                    duration_ns: s["duration_ns"].as_i64(),
                    meta: s["meta"]
                        .as_object()
                        .expect("meta")
                        .iter()
                        .filter(|(k, _)| {
                            !TRACER_META.contains(&k.as_str()) && !k.starts_with("_dd.p.")
                        })
                        .map(|(k, v)| (k.clone(), text(v)))
                        .collect(),
                    metrics: s["metrics"]
                        .as_object()
                        .expect("metrics")
                        .iter()
                        .filter(|(k, _)| !TRACER_METRICS.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.as_f64().expect("numeric metric")))
                        .collect(),
                    parent,
                }
            })
            .collect()
    });
    Answer { context, spans }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// A deliberate difference a fixture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deviation {
    /// REST event without `requestContext.identity`: a span here, none in Python.
    RestWithoutIdentity,
    /// A time with fractional seconds where Python's format wants none: a span here.
    LenientTime,
    /// HTTP API authorizer data without a finish time: a span from `timeEpoch` here.
    HttpApiAuthorizerWithoutFinishTime,
    /// A field the event lacks: no tag here, the string "None" from ddtrace 4.16.
    NoneTags,
    /// An upstream span ending before it starts: duration 0 here, negative in Python.
    NegativeUpstreamDuration,
    /// A context that deliberately differs (a `cases.json` deviation).
    Extraction,
}

/// Fixtures whose context extraction deliberately differs under the default configuration:
/// the events of the `cases.json` cases with a `deviation` and nothing else (no X-Ray, client
/// context, extractor or environment), e.g. a context without priority, which parents the
/// first inferred span here and is dropped in datadog-lambda. `extract_differential` checks
/// what each difference is.
fn extraction_deviations() -> Vec<String> {
    let raw = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    let cases: Vec<Value> = serde_json::from_str(&raw).expect("cases.json is a JSON array");
    cases
        .iter()
        .filter(|case| {
            !case["deviation"].is_null()
                && ["xray", "client_context", "extractor", "env", "merge"]
                    .iter()
                    .all(|k| case[*k].is_null() || case[*k] == false)
        })
        .filter_map(|case| case["event"].as_str().map(str::to_owned))
        .collect()
}

/// The deviation of a fixture where datadog-lambda draws nothing and ddlambda draws a span
/// (`decode`: whether authorizer data is read).
fn missing_span_deviation(name: &str, event: &Value, decode: bool) -> Option<Deviation> {
    match name {
        "inferred-eventbridge-fractional-time.json" => Some(Deviation::LenientTime),
        "authorizer-http-api-no-finish.json" if decode => {
            Some(Deviation::HttpApiAuthorizerWithoutFinishTime)
        }
        _ if EventSource::detect(event)
            == EventSource::ApiGateway(ddlambda::trigger::ApiGatewayKind::Rest)
            && event.pointer("/requestContext/identity").is_none() =>
        {
            Some(Deviation::RestWithoutIdentity)
        }
        _ => None,
    }
}

/// What the comparison of one fixture needs besides the two answers.
struct Setting<'a> {
    /// When datadog-lambda ran: its ALB span starts then.
    python_ran: (i64, i64),
    /// The service a span with none gets when the wrapper assembles the trace (`aws.lambda`'s:
    /// `DD_SERVICE`, else the function name); ddtrace gives such a span its default service.
    lambda_service: &'a str,
    /// [`extraction_deviations`].
    extraction_deviations: &'a [String],
}

/// Why `ours` and `theirs` differ beyond the allowed, if they do; deviations seen go to `seen`.
fn differences(
    name: &str,
    ours: &Answer,
    theirs: &Answer,
    setting: &Setting<'_>,
    seen: &mut Vec<Deviation>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut context_deviates = false;
    if ours.context != theirs.context {
        if setting.extraction_deviations.iter().any(|f| f == name) {
            context_deviates = true;
            seen.push(Deviation::Extraction);
        } else {
            out.push(format!(
                "context: ours {:?}, datadog-lambda {:?}",
                ours.context, theirs.context
            ));
        }
    }
    match (&ours.spans, &theirs.spans) {
        (None, None) => {}
        (Some(o), Some(t)) if names(o) == names(t) => {
            for (i, (o, t)) in o.iter().zip(t).enumerate() {
                compare_span(i, o, t, context_deviates, setting, seen, &mut out);
            }
        }
        (o, t) => out.push(format!(
            "chains: ours {:?}, datadog-lambda {:?}",
            o.as_ref().map(|s| names(s)),
            t.as_ref().map(|s| names(s))
        )),
    }
    if !out.is_empty() {
        out.insert(0, format!("{name}:"));
    }
    out
}

fn compare_span(
    i: usize,
    o: &Drawn,
    t: &Drawn,
    context_deviates: bool,
    setting: &Setting<'_>,
    seen: &mut Vec<Deviation>,
    out: &mut Vec<String>,
) {
    let at = format!("  {} #{i}", o.name);
    let service = if o.service.is_empty() {
        setting.lambda_service
    } else {
        &o.service
    };
    let first_parent = |p: &str| p == "context" || p == "root";
    let parent_ok = o.parent == t.parent
        || (i == 0 && context_deviates && first_parent(&o.parent) && first_parent(&t.parent));
    for (field, equal, ours, theirs) in [
        ("service", service == t.service, service, &t.service),
        (
            "resource",
            o.resource == t.resource,
            &o.resource,
            &t.resource,
        ),
        (
            "type",
            o.span_type == t.span_type,
            &o.span_type,
            &t.span_type,
        ),
        ("parent", parent_ok, &o.parent, &t.parent),
    ] {
        if !equal {
            out.push(format!(
                "{at} {field}: ours {ours:?}, datadog-lambda {theirs:?}"
            ));
        }
    }
    if o.name == "aws.alb" {
        // "Now" on each side: ours as given, theirs while the oracle ran.
        let (from, to) = setting.python_ran;
        if o.start_ns != OUR_NOW_NS || !(from..=to).contains(&t.start_ns) {
            out.push(format!(
                "{at} start: ours {} (want {OUR_NOW_NS}), datadog-lambda {} (want {from}..={to})",
                o.start_ns, t.start_ns
            ));
        }
    } else if (o.start_ns - t.start_ns).abs() > TIME_TOLERANCE_NS {
        out.push(format!(
            "{at} start: ours {}, datadog-lambda {}",
            o.start_ns, t.start_ns
        ));
    }
    match (o.duration_ns, t.duration_ns) {
        (None, None) => {}
        (Some(0), Some(d)) if d < 0 => seen.push(Deviation::NegativeUpstreamDuration),
        (Some(ours), Some(theirs)) if (ours - theirs).abs() <= TIME_TOLERANCE_NS => {}
        (ours, theirs) => out.push(format!(
            "{at} duration: ours {ours:?}, datadog-lambda {theirs:?}"
        )),
    }
    let mut their_meta = t.meta.clone();
    their_meta.retain(|k, v| {
        let none_tag = v == "None" && !o.meta.contains_key(k);
        if none_tag {
            seen.push(Deviation::NoneTags);
        }
        !none_tag
    });
    if o.meta != their_meta {
        out.push(format!(
            "{at} meta differs in {:?}\n    ours:           {:?}\n    datadog-lambda: {:?}",
            differing_keys(&o.meta, &their_meta),
            o.meta,
            their_meta
        ));
    }
    if o.metrics != t.metrics {
        out.push(format!(
            "{at} metrics: ours {:?}, datadog-lambda {:?}",
            o.metrics, t.metrics
        ));
    }
}

fn names(spans: &[Drawn]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

fn differing_keys<V: PartialEq>(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) -> Vec<String> {
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.dedup();
    keys
}

/// Checks a deliberate difference: datadog-lambda draws nothing, ddlambda draws what it says.
fn check_deviation(deviation: Deviation, event: &Value, ours: &Answer) -> Result<(), String> {
    let spans = ours
        .spans
        .as_ref()
        .ok_or_else(|| format!("{deviation:?}: ddlambda draws no span"))?;
    let last = spans.last().ok_or("empty chain")?;
    let ok = match deviation {
        Deviation::RestWithoutIdentity => {
            last.name == "aws.apigateway" && !last.meta.contains_key("http.useragent")
        }
        Deviation::LenientTime => {
            last.name == "aws.eventbridge" && last.start_ns == 1_795_464_697_123_000_000
        }
        Deviation::HttpApiAuthorizerWithoutFinishTime => {
            let time_epoch = event["requestContext"]["timeEpoch"].as_i64().unwrap_or(0);
            last.name == "aws.httpapi" && last.start_ns == time_epoch * 1_000_000
        }
        other => unreachable!("{other:?} is not about a missing span"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{deviation:?}: ddlambda draws {spans:#?}"))
    }
}

/// Runs the comparison over every fixture under one configuration; returns how many fixtures
/// drew spans on both sides and which deviations showed.
fn compare_all(env: &[(&str, &str)]) -> Option<(usize, Vec<Deviation>)> {
    let (answers, python_ran) = oracle(env)?;
    let lookup = |key: &str| {
        env.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    };
    let config = Config::from_lookup(lookup);
    let decode = lookup("DD_DECODE_AUTHORIZER_CONTEXT")
        .is_none_or(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let chain = Chain::new().with_decode_authorizer_context(decode);
    let events = events();
    assert!(events.len() > 100, "the fixture set shrank");
    let lambda_service = config
        .service
        .clone()
        .unwrap_or_else(|| "inferred-oracle".to_owned());
    let extraction_deviations = extraction_deviations();
    let setting = Setting {
        python_ran,
        lambda_service: &lambda_service,
        extraction_deviations: &extraction_deviations,
    };
    let mut failures = Vec::new();
    let mut deviations = Vec::new();
    let mut drawn = 0;
    for (name, event) in &events {
        let answer = &answers[name.as_str()];
        assert!(answer.is_object(), "oracle has no answer for {name}");
        let (ours, theirs) = (ours(event, &config, &chain), theirs(answer));
        if theirs.spans.is_none()
            && ours.spans.is_some()
            && let Some(d) = missing_span_deviation(name, event, decode)
        {
            match check_deviation(d, event, &ours) {
                Ok(()) => deviations.push(d),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
            continue;
        }
        if let Some(d) = missing_span_deviation(name, event, decode)
            && theirs.spans.is_some()
        {
            failures.push(format!(
                "{name}: {d:?} expected, but datadog-lambda draws a span now"
            ));
        }
        if ours.spans.is_some() && theirs.spans.is_some() {
            drawn += 1;
        }
        failures.extend(differences(name, &ours, &theirs, &setting, &mut deviations));
    }
    assert!(
        failures.is_empty(),
        "ddlambda and datadog-lambda differ ({env:?}):\n{}",
        failures.join("\n")
    );
    deviations.sort();
    deviations.dedup();
    Some((drawn, deviations))
}

#[test]
fn inferred_spans_agree_with_datadog_lambda() {
    let Some((drawn, deviations)) = compare_all(&[]) else {
        return;
    };
    assert!(
        drawn >= 60,
        "only {drawn} fixtures drew spans on both sides"
    );
    assert_eq!(
        deviations,
        [
            Deviation::RestWithoutIdentity,
            Deviation::LenientTime,
            Deviation::HttpApiAuthorizerWithoutFinishTime,
            Deviation::NoneTags,
            Deviation::NegativeUpstreamDuration,
            Deviation::Extraction,
        ],
        "every deliberate difference must be exercised"
    );
}

#[test]
fn service_naming_agrees_with_datadog_lambda() {
    let mapping = [
        "lambda_sqs:all-queues",
        "order-events:orders-topic",
        "k7c2ycf9ab:orders-api",
        "lambda_url:urls",
        "lambda_dynamodb:tables",
        "com.example.orders:orders-bus",
    ]
    .join(",");
    for env in [
        vec![("DD_SERVICE_MAPPING", mapping.as_str())],
        vec![("DD_TRACE_AWS_SERVICE_REPRESENTATION_ENABLED", "false")],
        vec![
            ("DD_TRACE_REMOVE_INTEGRATION_SERVICE_NAMES_ENABLED", "true"),
            ("DD_SERVICE", "orders"),
        ],
    ] {
        let Some((drawn, _)) = compare_all(&env) else {
            return;
        };
        assert!(drawn >= 60, "{env:?}: only {drawn} fixtures drew spans");
    }
}

#[test]
fn authorizer_decoding_off_agrees_with_datadog_lambda() {
    let Some(_) = compare_all(&[("DD_DECODE_AUTHORIZER_CONTEXT", "false")]) else {
        return;
    };
}

/// The fixtures this comparison rests on still say what they are meant to: the authorizer
/// chains (fresh, cached, late finish, legacy float ms) and the span-less cases.
#[test]
fn authorizer_fixtures_draw_the_expected_chains() {
    let config = Config::default();
    let chain = Chain::new();
    let events = events();
    let chain_of = |name: &str| {
        let answer = ours(&events[name], &config, &chain);
        answer
            .spans
            .map(|spans| {
                spans
                    .iter()
                    .map(|s| json!([s.name, s.start_ns, s.duration_ns, s.parent]))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // Authorizer finished at ...093.512345 ms; the request came at ...120 ms with 87 ms of
    // integration latency: the authorizer span lasts until ...207 ms, where the API span starts.
    assert_eq!(
        chain_of("authorizer-request-rest.json"),
        [
            json!([
                "aws.apigateway.authorizer",
                1_795_464_698_093_512_345_i64,
                113_487_655,
                "context"
            ]),
            json!([
                "aws.apigateway",
                1_795_464_698_207_000_000_i64,
                null,
                "span 0"
            ]),
        ]
    );
    // Finished after request time + latency: a zero-length authorizer span.
    assert_eq!(
        chain_of("authorizer-request-rest-late-finish.json"),
        [
            json!([
                "aws.apigateway.authorizer",
                1_795_464_698_931_000_000_i64,
                0,
                "context"
            ]),
            json!([
                "aws.apigateway",
                1_795_464_698_931_000_000_i64,
                null,
                "span 0"
            ]),
        ]
    );
    for cached in [
        "authorizer-request-rest-cached.json",
        "authorizer-token-rest-cached.json",
        "authorizer-websocket-message.json",
        "authorizer-request-rest-no-finish.json",
    ] {
        let spans = chain_of(cached);
        assert_eq!(spans.len(), 1, "{cached}: {spans:?}");
        assert_eq!(spans[0][1], 1_795_464_698_120_000_000_i64, "{cached}");
    }
    assert_eq!(
        chain_of("authorizer-http-api.json"),
        [json!([
            "aws.httpapi",
            1_795_464_698_093_512_345_i64,
            null,
            "context"
        ])]
    );
    let websocket = chain_of("authorizer-websocket-connect.json");
    assert_eq!(websocket[0][0], "aws.apigateway.authorizer");
    assert_eq!(websocket[1][0], "aws.apigateway.websocket");
}
