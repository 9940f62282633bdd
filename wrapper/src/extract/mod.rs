//! Finding the parent trace context of an invocation.
//!
//! [`Chain::decide`] is the one place that chooses what parents `aws.lambda`: a custom extractor
//! (`DD_TRACE_EXTRACTOR`: a name registered in a [`Registry`] or a [declarative](declarative)
//! path), then the built-in carriers in datadog-lambda's order (AppSync → HTTP → SQS / SNS →
//! EventBridge → Kinesis → Step Functions, each falling back to the Lambda client context),
//! then X-Ray, merged according to `DD_MERGE_XRAY_TRACES`. The wrapper and `ddlambda extract`
//! both call it.
//!
//! Deliberate differences from datadog-lambda (Python), which is otherwise matched answer for
//! answer (see `tests/e2e/extract_differential.rs`):
//! 1. X-Ray `Sampled=1` → priority 2, anything else → -1 (Python maps every header to 2).
//! 2. A context with trace and parent ids but no priority is used with priority 1 (Python drops
//!    it and falls back to X-Ray).
//! 3. Kinesis data is decoded as UTF-8 (Python's ASCII decode loses non-ASCII payloads).
//! 4. The X-Ray header is parsed by key, in any order (Python is positional).
//! 5. A custom extractor that finds nothing falls through to the built-ins (Python stops).
//! 6. The other records of a batch become span links on `aws.lambda` (Python ignores them).
//!
//! Bad input never fails an invocation: bad base64, bad JSON, wrong types and missing fields
//! skip that carrier with a debug log, and the chain goes on.

mod appsync;
mod attribute;
mod client_context;
pub mod declarative;
mod eventbridge;
mod http;
mod kinesis;
pub mod propagation;
mod sns;
mod sqs;
mod sqs_body;
mod step_functions;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ddlambda_wire::SpanContext;
use serde_json::Value;

pub use declarative::{Declarative, DeclarativeError};
pub use http::resolve_headers;
pub use propagation::Propagator;

use crate::trigger::{EventSource, Shape, first_record};
use crate::xray::{self, XrayHeader};

/// What an extractor may need besides the event: the parts of `lambda_runtime::Context` that
/// carry context, buildable without a runtime (the CLI does).
#[derive(Debug, Clone, Default)]
pub struct InvocationInfo {
    /// The invocation's request id.
    pub request_id: String,
    /// The invoked function's ARN (region, account, name, qualifier).
    pub invoked_function_arn: String,
    /// The decoded `Lambda-Runtime-Client-Context` JSON (`{"custom": {...}, ...}`).
    pub client_context: Option<Value>,
}

impl From<&lambda_runtime::Context> for InvocationInfo {
    fn from(ctx: &lambda_runtime::Context) -> Self {
        Self {
            request_id: ctx.request_id.clone(),
            invoked_function_arn: ctx.invoked_function_arn.clone(),
            client_context: ctx
                .client_context
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
        }
    }
}

/// A context found in an event, and the other producers' contexts to link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The context that parents `aws.lambda`.
    pub context: SpanContext,
    /// Other distinct contexts (e.g. other records of a batch), as span links.
    pub links: Vec<SpanContext>,
}

impl From<SpanContext> for Extracted {
    fn from(context: SpanContext) -> Self {
        Self {
            context,
            links: Vec::new(),
        }
    }
}

/// A source of trace context. Implement it to read a carrier the built-ins do not know, and
/// register it by name in a [`Registry`]; `DD_TRACE_EXTRACTOR=<name>` selects it.
pub trait Extractor: Send + Sync {
    /// The name it is registered and reported under.
    fn name(&self) -> &str;
    /// The context in this event, if any. A context without trace or parent id is ignored; one
    /// without a sampling priority gets priority 1.
    fn extract(&self, event: &Value, info: &InvocationInfo) -> Option<Extracted>;
}

/// A closure as an extractor.
struct FnExtractor<F> {
    name: String,
    f: F,
}

impl<F> Extractor for FnExtractor<F>
where
    F: Fn(&Value, &InvocationInfo) -> Option<SpanContext> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn extract(&self, event: &Value, info: &InvocationInfo) -> Option<Extracted> {
        (self.f)(event, info).map(Extracted::from)
    }
}

/// Built-in carrier names, in chain order (`DD_TRACE_EXTRACTOR` may select one alone).
pub const BUILTIN_NAMES: [&str; 8] = [
    "appsync",
    "http",
    "sqs",
    "sns",
    "eventbridge",
    "kinesis",
    "step-functions",
    "client-context",
];

/// A built-in carrier selected by name: it reads only its own carrier.
struct Builtin {
    name: &'static str,
    propagator: Propagator,
    decode_authorizer_context: bool,
}

impl Extractor for Builtin {
    fn name(&self) -> &str {
        self.name
    }
    fn extract(&self, event: &Value, info: &InvocationInfo) -> Option<Extracted> {
        let env = Env {
            propagator: &self.propagator,
            info,
            decode_authorizer_context: self.decode_authorizer_context,
            shape: Shape::of(event),
        };
        let context = match self.name {
            "appsync" => appsync::extract(event, &env),
            "http" => http::extract(&env),
            "sqs" => sqs::extract(event, &env),
            "sns" => sns::extract(event, &env),
            "eventbridge" => eventbridge::extract(event, &env),
            "kinesis" => kinesis::extract(event, &env),
            "step-functions" => step_functions::from_context(event),
            _ => client_context::extract(&env),
        }?;
        let links = distinct_links(Some(&context), batch_links(event, &env));
        Some(Extracted { context, links })
    }
}

/// Extractors by name. Starts with the built-in carriers ([`BUILTIN_NAMES`]).
#[derive(Clone)]
pub struct Registry {
    extractors: HashMap<String, Arc<dyn Extractor>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.extractors.keys().collect();
        names.sort();
        f.debug_struct("Registry").field("names", &names).finish()
    }
}

impl Registry {
    /// A registry holding the built-in carriers.
    pub fn new() -> Self {
        let mut registry = Self {
            extractors: HashMap::new(),
        };
        let propagator = Propagator::from_env();
        let decode_authorizer_context = decode_authorizer_context_from_env();
        for name in BUILTIN_NAMES {
            registry.register(Arc::new(Builtin {
                name,
                propagator: propagator.clone(),
                decode_authorizer_context,
            }));
        }
        registry
    }

    /// Registers an extractor under its name, replacing any previous one.
    pub fn register(&mut self, extractor: Arc<dyn Extractor>) -> &mut Self {
        self.extractors
            .insert(extractor.name().to_owned(), extractor);
        self
    }

    /// Registers a closure `(event, info) -> Option<SpanContext>` under `name`.
    pub fn register_fn<F>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(&Value, &InvocationInfo) -> Option<SpanContext> + Send + Sync + 'static,
    {
        self.register(Arc::new(FnExtractor {
            name: name.into(),
            f,
        }))
    }

    /// The extractor registered under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Extractor>> {
        self.extractors.get(name).cloned()
    }
}

/// A `DD_TRACE_EXTRACTOR` value that names nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a registered name (and not a declarative path, which starts with `/`).
    #[error(
        "DD_TRACE_EXTRACTOR={0:?} is not a registered extractor (built-ins: {builtins}) nor a declarative path (starting with '/')",
        builtins = BUILTIN_NAMES.join(", ")
    )]
    UnknownExtractor(String),
    /// A declarative path that does not parse.
    #[error("DD_TRACE_EXTRACTOR: {0}")]
    Declarative(#[from] DeclarativeError),
}

/// Where the context parenting `aws.lambda` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A built-in carrier in the event or client context.
    Event,
    /// X-Ray (only with `DD_MERGE_XRAY_TRACES`, as in every Datadog Lambda library).
    Xray,
    /// The `DD_TRACE_EXTRACTOR` extractor.
    Custom,
    /// Nothing: `aws.lambda` starts a new trace.
    None,
}

impl Source {
    /// `event`, `xray`, `custom` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Xray => "xray",
            Self::Custom => "custom",
            Self::None => "none",
        }
    }
}

/// The extraction decision for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Where `context` came from.
    pub source: Source,
    /// The extractor that found the event context (`sqs`, `http`, a custom name, …).
    pub extractor: Option<String>,
    /// The context that parents `aws.lambda` (merged with X-Ray's parent id if configured).
    pub context: Option<SpanContext>,
    /// The context as found in the event, before any X-Ray merge.
    pub extracted: Option<SpanContext>,
    /// Other producers' contexts, to attach as span links on `aws.lambda`.
    pub links: Vec<SpanContext>,
    /// The runtime's X-Ray header, if any.
    pub xray: Option<XrayHeader>,
}

impl Decision {
    /// The "datadog-metadata" subsegment to send to the X-Ray daemon: only for a context found
    /// in the event (or by the custom extractor) and a sampled X-Ray trace, as datadog-lambda.
    pub fn metadata_datagram(&self) -> Option<String> {
        if !matches!(self.source, Source::Event | Source::Custom) {
            return None;
        }
        xray::metadata_datagram(self.xray.as_ref()?, self.extracted.as_ref()?)
    }
}

/// Per-invocation inputs of the built-in carriers.
pub(crate) struct Env<'a> {
    pub(crate) propagator: &'a Propagator,
    pub(crate) info: &'a InvocationInfo,
    pub(crate) decode_authorizer_context: bool,
    /// The event's source and the top-level fields carriers start from.
    pub(crate) shape: Shape<'a>,
}

/// A context that can parent a span: both ids set; a missing priority becomes 1 (AUTO_KEEP),
/// as datadog-lambda-js and -go do (deliberate difference 2).
pub(crate) fn usable(ctx: Option<SpanContext>) -> Option<SpanContext> {
    let mut ctx = ctx?;
    if !ctx.is_valid() {
        tracing::debug!(
            trace_id = ctx.trace_id,
            parent_id = ctx.parent_id,
            "context lacks a trace or parent id"
        );
        return None;
    }
    ctx.sampling_priority.get_or_insert(1);
    Some(ctx)
}

/// The configured extraction: custom extractor, built-ins, X-Ray merging.
#[derive(Clone)]
pub struct Chain {
    custom: Option<Arc<dyn Extractor>>,
    propagator: Propagator,
    decode_authorizer_context: bool,
    merge_xray_traces: bool,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("custom", &self.custom.as_ref().map(|c| c.name().to_owned()))
            .field("propagator", &self.propagator)
            .field("decode_authorizer_context", &self.decode_authorizer_context)
            .field("merge_xray_traces", &self.merge_xray_traces)
            .finish()
    }
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            custom: None,
            propagator: Propagator::default(),
            decode_authorizer_context: true,
            merge_xray_traces: false,
        }
    }
}

impl Chain {
    /// Built-ins only, ddtrace's default header styles, no X-Ray merging.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `DD_TRACE_EXTRACTOR`, `DD_MERGE_XRAY_TRACES`, `DD_DECODE_AUTHORIZER_CONTEXT` and
    /// the propagation styles.
    pub fn from_env(registry: &Registry) -> Result<Self, ConfigError> {
        let chain = Self::builtins_from_env();
        match std::env::var("DD_TRACE_EXTRACTOR") {
            Ok(spec) => chain.with_custom_spec(registry, &spec),
            Err(_) => Ok(chain),
        }
    }

    /// [`Chain::from_env`], logging a bad `DD_TRACE_EXTRACTOR` and going on without it: a
    /// configuration mistake must not fail invocations.
    pub fn from_env_or_log(registry: &Registry) -> Self {
        Self::from_env(registry).unwrap_or_else(|e| {
            tracing::warn!("{e}; using the built-in extractors");
            Self::builtins_from_env()
        })
    }

    /// The built-ins configured from the environment, ignoring `DD_TRACE_EXTRACTOR`.
    pub fn builtins_from_env() -> Self {
        Self {
            custom: None,
            propagator: Propagator::from_env(),
            decode_authorizer_context: decode_authorizer_context_from_env(),
            merge_xray_traces: env_bool("DD_MERGE_XRAY_TRACES", false),
        }
    }

    /// Selects the custom extractor from a `DD_TRACE_EXTRACTOR` value: empty for none, a path
    /// starting with `/` for a [declarative](declarative) extractor, else a registered name.
    pub fn with_custom_spec(
        mut self,
        registry: &Registry,
        spec: &str,
    ) -> Result<Self, ConfigError> {
        let spec = spec.trim();
        self.custom = if spec.is_empty() {
            None
        } else if spec.starts_with('/') {
            Some(Arc::new(Declarative::parse(spec, self.propagator.clone())?))
        } else {
            Some(
                registry
                    .get(spec)
                    .ok_or_else(|| ConfigError::UnknownExtractor(spec.to_owned()))?,
            )
        };
        Ok(self)
    }

    /// Sets the custom extractor.
    pub fn with_custom(mut self, extractor: Arc<dyn Extractor>) -> Self {
        self.custom = Some(extractor);
        self
    }

    /// Sets `DD_MERGE_XRAY_TRACES`.
    pub fn with_merge_xray_traces(mut self, merge: bool) -> Self {
        self.merge_xray_traces = merge;
        self
    }

    /// Sets the header propagation styles.
    pub fn with_propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = propagator;
        self
    }

    /// Decides what parents `aws.lambda` for this event. `xray` is the runtime's trace header
    /// (`Lambda-Runtime-Trace-Id`, i.e. `_X_AMZN_TRACE_ID`).
    ///
    /// Event (or custom) context beats X-Ray. With `DD_MERGE_XRAY_TRACES`, it keeps its trace id
    /// and priority under X-Ray's parent id (dd-trace → X-Ray Lambda segment → `aws.lambda`),
    /// and X-Ray alone parents `aws.lambda` when the event has nothing. Without merging, X-Ray
    /// never parents `aws.lambda` (datadog-lambda-python, -js and -go agree), so a function
    /// without active tracing, whose header says `Sampled=0`, keeps its own sampling.
    pub fn decide(&self, event: &Value, info: &InvocationInfo, xray: Option<&str>) -> Decision {
        let xray = xray.and_then(XrayHeader::parse);
        let (source, extractor, extracted, links) = self.extract(event, info);
        let xray_context = xray.as_ref().and_then(XrayHeader::to_context);
        let (source, context) = match (extracted.clone(), self.merge_xray_traces) {
            (Some(mut ctx), merge) => {
                if merge && let Some(x) = &xray_context {
                    ctx.parent_id = x.parent_id;
                }
                (source, Some(ctx))
            }
            (None, true) if xray_context.is_some() => (Source::Xray, xray_context),
            (None, _) => (Source::None, None),
        };
        Decision {
            extractor: matches!(source, Source::Event | Source::Custom)
                .then_some(extractor)
                .flatten(),
            source,
            context,
            extracted,
            links,
            xray,
        }
    }

    /// Custom extractor, then built-ins. Links are kept even when record 0 has no context.
    fn extract(
        &self,
        event: &Value,
        info: &InvocationInfo,
    ) -> (
        Source,
        Option<String>,
        Option<SpanContext>,
        Vec<SpanContext>,
    ) {
        if let Some(custom) = &self.custom {
            if let Some(found) = custom.extract(event, info)
                && let Some(context) = usable(Some(found.context))
            {
                let links = distinct_links(Some(&context), found.links);
                return (
                    Source::Custom,
                    Some(custom.name().to_owned()),
                    Some(context),
                    links,
                );
            }
            tracing::debug!(
                extractor = custom.name(),
                "custom extractor found no context; trying the built-ins"
            );
        }
        let env = Env {
            propagator: &self.propagator,
            info,
            decode_authorizer_context: self.decode_authorizer_context,
            shape: Shape::of(event),
        };
        let (name, context) = builtin(event, &env);
        let links = distinct_links(context.as_ref(), batch_links(event, &env));
        match context {
            Some(context) => (Source::Event, Some(name.to_owned()), Some(context), links),
            None => (Source::None, None, None, links),
        }
    }
}

/// datadog-lambda's dispatch: the event's shape picks exactly one carrier, whose only fallback
/// is the client context.
fn builtin(event: &Value, env: &Env<'_>) -> (&'static str, Option<SpanContext>) {
    let shape = &env.shape;
    // AppSync owns every event with a top-level `request` key.
    let (name, ctx) = if shape.has_request {
        ("appsync", appsync::extract(event, env))
    } else if shape.headers.is_some() || shape.multi_value_headers.is_some() {
        ("http", http::extract(env))
    } else {
        match shape.source {
            EventSource::Sqs => ("sqs", sqs::extract(event, env)),
            EventSource::Sns => ("sns", sns::extract(event, env)),
            EventSource::EventBridge => ("eventbridge", eventbridge::extract(event, env)),
            EventSource::Kinesis => ("kinesis", kinesis::extract(event, env)),
            EventSource::StepFunctions => ("step-functions", step_functions::from_context(event)),
            _ => ("client-context", None),
        }
    };
    match ctx {
        Some(ctx) => (name, Some(ctx)),
        None => ("client-context", client_context::extract(env)),
    }
}

/// The contexts of records 1.. of an SQS, SNS or Kinesis batch (record 0 parents the trace).
fn batch_links(event: &Value, env: &Env<'_>) -> Vec<SpanContext> {
    let record_context: fn(&Value, &Env<'_>) -> Option<SpanContext> = match env.shape.source {
        EventSource::Sqs => sqs::record_context,
        EventSource::Sns => sns::record_context,
        EventSource::Kinesis => kinesis::record_context,
        _ => return Vec::new(),
    };
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return Vec::new();
    };
    if first_record(event).is_none() {
        return Vec::new();
    }
    records[1..]
        .iter()
        .filter_map(|r| record_context(r, env))
        .collect()
}

/// Drops links to the parent's own span and duplicates, keeping the first occurrence.
fn distinct_links(parent: Option<&SpanContext>, links: Vec<SpanContext>) -> Vec<SpanContext> {
    if links.is_empty() {
        return links;
    }
    let key = |c: &SpanContext| (c.trace_id, c.trace_id_high, c.parent_id);
    let mut seen: Vec<_> = parent.map(key).into_iter().collect();
    let mut out = Vec::with_capacity(links.len());
    for link in links {
        if !seen.contains(&key(&link)) {
            seen.push(key(&link));
            out.push(link);
        }
    }
    out
}

fn decode_authorizer_context_from_env() -> bool {
    env_bool("DD_DECODE_AUTHORIZER_CONTEXT", true)
}

/// datadog-lambda's boolean parsing: `true` / `1` (any case) are true.
fn env_bool(name: &str, default: bool) -> bool {
    match std::env::var(name) {
        Ok(v) => v.eq_ignore_ascii_case("true") || v == "1",
        Err(_) => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const XRAY: &str = "Root=1-5e272390-8c398be037738dc042009320;Parent=94ae789b969f1cc5;Sampled=1";

    fn sqs_event(trace: &str, parent: &str) -> Value {
        let attr = json!({"x-datadog-trace-id": trace, "x-datadog-parent-id": parent}).to_string();
        json!({"Records": [{
            "eventSource": "aws:sqs",
            "messageAttributes": {"_datadog": {"dataType": "String", "stringValue": attr}}
        }]})
    }

    #[test]
    fn registered_closure_runs_first_and_falls_through() {
        let mut registry = Registry::new();
        registry.register_fn("order-header", |event, _| {
            let id = event.get("order_trace")?.as_u64()?;
            Some(SpanContext::new(id, id + 1))
        });
        let chain = Chain::new()
            .with_custom_spec(&registry, "order-header")
            .unwrap();
        let info = InvocationInfo::default();
        let found = chain.decide(&json!({"order_trace": 7}), &info, None);
        assert_eq!(found.source, Source::Custom);
        assert_eq!(found.extractor.as_deref(), Some("order-header"));
        let ctx = found.context.unwrap();
        assert_eq!(
            (ctx.trace_id, ctx.parent_id, ctx.sampling_priority),
            (7, 8, Some(1))
        );
        // Nothing for the custom extractor: the built-ins still run (deliberate difference 5).
        let fallback = chain.decide(&sqs_event("5", "6"), &info, None);
        assert_eq!(fallback.source, Source::Event);
        assert_eq!(fallback.extractor.as_deref(), Some("sqs"));
    }

    #[test]
    fn unknown_names_and_bad_paths_are_errors() {
        let registry = Registry::new();
        assert!(matches!(
            Chain::new().with_custom_spec(&registry, "pkg.module.fn"),
            Err(ConfigError::UnknownExtractor(_))
        ));
        assert!(matches!(
            Chain::new().with_custom_spec(&registry, "/a|zip"),
            Err(ConfigError::Declarative(_))
        ));
        assert!(Chain::new().with_custom_spec(&registry, "  ").is_ok());
        assert!(Chain::new().with_custom_spec(&registry, "kinesis").is_ok());
    }

    #[test]
    fn xray_parents_only_when_merging() {
        let info = InvocationInfo::default();
        let empty = json!({});
        let plain = Chain::new().decide(&empty, &info, Some(XRAY));
        assert_eq!((plain.source, &plain.context), (Source::None, &None));
        assert!(plain.metadata_datagram().is_none());
        let merged = Chain::new()
            .with_merge_xray_traces(true)
            .decide(&empty, &info, Some(XRAY));
        assert_eq!(merged.source, Source::Xray);
        assert_eq!(merged.context.unwrap().trace_id, 3995693151288333088);

        let event = sqs_event("5", "6");
        let merged = Chain::new()
            .with_merge_xray_traces(true)
            .decide(&event, &info, Some(XRAY));
        let ctx = merged.context.clone().unwrap();
        assert_eq!((ctx.trace_id, ctx.parent_id), (5, 10713633173203262661));
        // The subsegment carries the event's own parent, not X-Ray's.
        let datagram = merged.metadata_datagram().unwrap();
        assert!(datagram.contains(r#""parent-id":"6""#), "{datagram}");
    }

    #[test]
    fn links_are_distinct_and_exclude_the_parent() {
        let parent = SpanContext::new(1, 2);
        let links = vec![
            SpanContext::new(1, 2),
            SpanContext::new(3, 4),
            SpanContext::new(3, 4),
            SpanContext::new(3, 5),
        ];
        let got: Vec<_> = distinct_links(Some(&parent), links)
            .into_iter()
            .map(|c| (c.trace_id, c.parent_id))
            .collect();
        assert_eq!(got, [(3, 4), (3, 5)]);
    }

    #[test]
    fn propagation_styles_are_honoured() {
        let event = json!({"headers": {
            "traceparent": "00-0000000000000000000000000000007b-00000000000001c8-01",
            "x-datadog-trace-id": "9", "x-datadog-parent-id": "10"
        }});
        let info = InvocationInfo::default();
        let w3c_first = Chain::new()
            .with_propagator(Propagator::parse("tracecontext,datadog"))
            .decide(&event, &info, None);
        assert_eq!(w3c_first.context.unwrap().trace_id, 123);
        let none = Chain::new()
            .with_propagator(Propagator::parse(""))
            .decide(&event, &info, None);
        assert_eq!(none.source, Source::None);
    }
}
