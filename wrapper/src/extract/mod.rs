//! Finding the parent trace context of an invocation.
//!
//! [`Chain::decide`] is the one place that chooses what parents `aws.lambda`: a custom extractor
//! (`DD_TRACE_EXTRACTOR`: a name registered in a [`Registry`] or a [declarative](declarative)
//! path), then the built-in carriers in datadog-lambda's order (AppSync → HTTP → SQS / SNS →
//! EventBridge → Kinesis → Step Functions, each falling back to the Lambda client context),
//! then X-Ray, merged according to `DD_MERGE_XRAY_TRACES`. `ddlambda extract` calls it; the
//! wrapper calls [`Chain::decide_parent`], the same decision without the span links of a
//! batch's other records, which it reads with [`Chain::read_links`] only when it finishes
//! `aws.lambda` (nothing earlier needs them).
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
mod flat_object;
mod http;
mod kinesis;
pub mod propagation;
mod sns;
mod sqs;
mod sqs_body;
mod step_functions;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ddlambda_wire::SpanContext;
use serde_json::Value;

pub use declarative::{Declarative, DeclarativeError};
pub(crate) use http::authorizer_data;
pub use http::resolve_headers;
pub use propagation::Propagator;

use crate::trigger::{EventSource, Shape};
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
            "sqs" => sqs::extract(&env),
            "sns" => sns::extract(&env),
            "eventbridge" => eventbridge::extract(event, &env),
            "kinesis" => kinesis::extract(&env),
            "step-functions" => step_functions::from_context(event),
            _ => client_context::extract(&env),
        }?;
        let links = distinct_links(
            Some(link_key(&context)),
            batch_links(event, env.shape.source, &env),
        );
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
    pub extractor: Option<Cow<'static, str>>,
    /// The context that parents `aws.lambda` (merged with X-Ray's parent id if configured).
    pub context: Option<SpanContext>,
    /// The context as found in the event, before any X-Ray merge.
    pub extracted: Option<SpanContext>,
    /// Other producers' contexts, to attach as span links on `aws.lambda`. After
    /// [`Chain::decide_parent`], only those a custom extractor returned: the batch's are in
    /// `pending_links` until [`Chain::read_links`] reads them.
    pub links: Vec<SpanContext>,
    /// The batch records [`Chain::decide_parent`] left unread for links.
    pub pending_links: Option<PendingLinks>,
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

/// The span links of a batch event still to read: the contexts of records 1.. of an SQS, SNS
/// or Kinesis batch (record 0 parents the trace). Nothing in the parent decision depends on
/// them, and `aws.lambda` needs them only when it is finished, so [`Chain::decide_parent`]
/// leaves them to [`Chain::read_links`], given the same event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLinks {
    /// The batch's source: which record carrier to read.
    source: EventSource,
    /// The event context's identity: a link to the parent's own span is dropped.
    parent: Option<LinkKey>,
}

/// What makes two links the same: trace id (both halves) and span id.
type LinkKey = (u64, Option<u64>, u64);

fn link_key(c: &SpanContext) -> LinkKey {
    (c.trace_id, c.trace_id_high, c.parent_id)
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

    /// Whether API Gateway authorizer data is read (`DD_DECODE_AUTHORIZER_CONTEXT`): for the
    /// context, and for the inferred `aws.apigateway.authorizer` span.
    pub fn decodes_authorizer_context(&self) -> bool {
        self.decode_authorizer_context
    }

    /// Sets whether API Gateway authorizer data is read (`DD_DECODE_AUTHORIZER_CONTEXT`).
    pub fn with_decode_authorizer_context(mut self, decode: bool) -> Self {
        self.decode_authorizer_context = decode;
        self
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

    /// Decides what parents `aws.lambda` for this event, and its span links. `xray` is the
    /// runtime's trace header (`Lambda-Runtime-Trace-Id`, i.e. `_X_AMZN_TRACE_ID`).
    ///
    /// Event (or custom) context beats X-Ray. With `DD_MERGE_XRAY_TRACES`, it keeps its trace id
    /// and priority under X-Ray's parent id (dd-trace → X-Ray Lambda segment → `aws.lambda`),
    /// and X-Ray alone parents `aws.lambda` when the event has nothing. Without merging, X-Ray
    /// never parents `aws.lambda` (datadog-lambda-python, -js and -go agree), so a function
    /// without active tracing, whose header says `Sampled=0`, keeps its own sampling.
    pub fn decide(&self, event: &Value, info: &InvocationInfo, xray: Option<&str>) -> Decision {
        let mut decision = self.decide_parent(event, info, xray);
        if let Some(pending) = decision.pending_links.take() {
            decision.links = self.read_links(event, pending);
        }
        decision
    }

    /// [`Chain::decide`] without reading the rest of a batch for span links: the same source,
    /// extractor and contexts, with the batch's links left in `pending_links`. This is the
    /// work datadog-lambda does (it reads only `Records[0]`), and what must be known early;
    /// [`Chain::read_links`] reads the links when they are needed.
    pub fn decide_parent(
        &self,
        event: &Value,
        info: &InvocationInfo,
        xray: Option<&str>,
    ) -> Decision {
        // Filled in by reference rather than assembled from intermediate values: each move of
        // the 344-byte decision costs about a third of deciding on an event without a carrier.
        let mut decision = Decision {
            source: Source::None,
            extractor: None,
            context: None,
            extracted: None,
            links: Vec::new(),
            pending_links: None,
            xray: xray.and_then(XrayHeader::parse),
        };
        self.extract(event, info, &mut decision);
        let xray_context = match (self.merge_xray_traces, &decision.xray) {
            (true, Some(header)) => header.to_context(),
            _ => None,
        };
        match &decision.extracted {
            Some(found) => {
                let mut context = found.clone();
                if let Some(x) = xray_context {
                    context.parent_id = x.parent_id;
                }
                decision.context = Some(context);
            }
            None => {
                if xray_context.is_some() {
                    decision.source = Source::Xray;
                }
                decision.context = xray_context;
            }
        }
        decision
    }

    /// The span links `pending` stands for, read from the event [`Chain::decide_parent`]
    /// decided on: the distinct contexts of the batch's other records, none the parent's own.
    pub fn read_links(&self, event: &Value, pending: PendingLinks) -> Vec<SpanContext> {
        let info = InvocationInfo::default();
        let env = Env {
            propagator: &self.propagator,
            info: &info,
            decode_authorizer_context: self.decode_authorizer_context,
            shape: Shape::NONE,
        };
        distinct_links(pending.parent, batch_links(event, pending.source, &env))
    }

    /// Custom extractor, then built-ins: fills in `source`, `extractor`, `extracted` (the
    /// context found), `links` and `pending_links`. A batch's links are left pending even when
    /// record 0 has no context.
    fn extract(&self, event: &Value, info: &InvocationInfo, decision: &mut Decision) {
        if let Some(custom) = &self.custom {
            if let Some(found) = custom.extract(event, info)
                && let Some(context) = usable(Some(found.context))
            {
                decision.source = Source::Custom;
                decision.extractor = Some(Cow::Owned(custom.name().to_owned()));
                decision.links = distinct_links(Some(link_key(&context)), found.links);
                decision.extracted = Some(context);
                return;
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
        if context.is_some() {
            decision.source = Source::Event;
            decision.extractor = Some(Cow::Borrowed(name));
        }
        decision.pending_links = env.shape.is_batch().then(|| PendingLinks {
            source: env.shape.source,
            parent: context.as_ref().map(link_key),
        });
        decision.extracted = context;
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
            EventSource::Sqs => ("sqs", sqs::extract(env)),
            EventSource::Sns => ("sns", sns::extract(env)),
            EventSource::EventBridge => ("eventbridge", eventbridge::extract(event, env)),
            EventSource::Kinesis => ("kinesis", kinesis::extract(env)),
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
fn batch_links(event: &Value, source: EventSource, env: &Env<'_>) -> Vec<SpanContext> {
    let record_context: fn(&Value, &Env<'_>) -> Option<SpanContext> = match source {
        EventSource::Sqs => sqs::record_context,
        EventSource::Sns => sns::record_context,
        EventSource::Kinesis => kinesis::record_context,
        _ => return Vec::new(),
    };
    match event
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([_, rest @ ..]) => rest.iter().filter_map(|r| record_context(r, env)).collect(),
        _ => Vec::new(),
    }
}

/// Drops links to the parent's own span and duplicates, keeping the first occurrence.
fn distinct_links(parent: Option<LinkKey>, links: Vec<SpanContext>) -> Vec<SpanContext> {
    if links.is_empty() {
        return links;
    }
    let mut seen: Vec<LinkKey> = parent.into_iter().collect();
    let mut out = Vec::with_capacity(links.len());
    for link in links {
        let key = link_key(&link);
        if !seen.contains(&key) {
            seen.push(key);
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
    fn the_parent_decision_leaves_batch_links_for_later() {
        let record = |trace: &str, parent: &str| sqs_event(trace, parent)["Records"][0].clone();
        let batch = json!({"Records": [
            record("5", "6"), record("5", "6"), record("7", "8"), record("7", "8"), record("9", "x")
        ]});
        let (chain, info) = (Chain::new(), InvocationInfo::default());
        let full = chain.decide(&batch, &info, None);
        let parent = chain.decide_parent(&batch, &info, None);
        let pending = parent.pending_links.expect("a batch leaves links pending");
        assert!(parent.links.is_empty());
        // The same decision but for the links, which `read_links` then supplies.
        assert_eq!(
            Decision {
                links: full.links.clone(),
                pending_links: None,
                ..parent.clone()
            },
            full
        );
        let links: Vec<_> = chain
            .read_links(&batch, pending)
            .iter()
            .map(|c| (c.trace_id, c.parent_id))
            .collect();
        assert_eq!(links, [(7, 8)]);
        // Nothing is pending without other records, nor for a source without batch links.
        assert_eq!(
            chain
                .decide_parent(&sqs_event("5", "6"), &info, None)
                .pending_links,
            None
        );
        let s3 = json!({"Records": [{"eventSource": "aws:s3"}, {"eventSource": "aws:s3"}]});
        assert_eq!(chain.decide_parent(&s3, &info, None).pending_links, None);
        // A first record without a context still leaves the others' links.
        let first_empty = json!({"Records": [{"eventSource": "aws:sqs"}, record("7", "8")]});
        let decided = chain.decide(&first_empty, &info, None);
        assert_eq!((decided.source, decided.links.len()), (Source::None, 1));
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
        let got: Vec<_> = distinct_links(Some(link_key(&parent)), links)
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
