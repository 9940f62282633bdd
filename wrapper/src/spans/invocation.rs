//! One invocation's spans, from the event to the transport.
//!
//! [`Invocation::start`] runs before the handler: trigger detection, the extraction decision
//! (which parents the trace), the inferred spans and `aws.lambda`'s ids, the data-streams
//! consume checkpoints; it announces the invocation to the extension off the response path.
//! The handler's outcome is recorded with [`Invocation::fail`] / [`Invocation::end`];
//! [`Invocation::finish`] completes the trace and hands it to the transport (a channel push).

use std::sync::{Arc, Mutex, OnceLock, Weak};

use ddlambda_wire::invocation::InvocationStart;
use ddlambda_wire::{Span, SpanContext};
use serde_json::Value;

use super::aws_lambda::{self, ErrorInfo, Function};
use super::ids::{new_trace_id, now_ns, random_id};
use super::inferred::{self, InferContext, Inferred};
use super::links::link_to;
use super::pointers::{self, SpanPointer};
use super::status::Status;
use crate::extract::{InvocationInfo, PendingLinks, Source};
use crate::tracer::Tracer;
use crate::transport::Flushed;
use crate::trigger::{self, EventSource};

/// The trace ids an invocation's spans carry, for log correlation and outgoing headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    /// Low 64 bits of the trace id (what `dd.trace_id` shows).
    pub trace_id: u64,
    /// High 64 bits, for a 128-bit trace id.
    pub trace_id_high: Option<u64>,
    /// The `aws.lambda` span id.
    pub span_id: u64,
    /// The trace's sampling priority.
    pub sampling_priority: i32,
}

impl TraceIds {
    /// Writes the Datadog propagation headers that continue this trace from `aws.lambda` into
    /// `carrier` (e.g. the `_datadog` message attribute of an outgoing SQS message):
    /// `x-datadog-trace-id`, `x-datadog-parent-id`, `x-datadog-sampling-priority` and, for a
    /// 128-bit trace, `x-datadog-tags` with `_dd.p.tid`.
    pub fn inject(&self, carrier: &mut serde_json::Map<String, Value>) {
        carrier.insert(
            "x-datadog-trace-id".into(),
            self.trace_id.to_string().into(),
        );
        carrier.insert(
            "x-datadog-parent-id".into(),
            self.span_id.to_string().into(),
        );
        carrier.insert(
            "x-datadog-sampling-priority".into(),
            self.sampling_priority.to_string().into(),
        );
        if let Some(high) = self.trace_id_high.filter(|h| *h != 0) {
            carrier.insert(
                "x-datadog-tags".into(),
                format!("_dd.p.tid={high:016x}").into(),
            );
        }
    }
}

/// A running invocation. Clones share it; [`Invocation::finish`] sends it once.
#[derive(Clone)]
pub struct Invocation {
    shared: Arc<Shared>,
}

struct Shared {
    tracer: Tracer,
    request_id: String,
    /// The `aws.lambda` span id, chosen at once (children and logs need it).
    span_id: u64,
    start_ns: i64,
    cold_start: bool,
    /// What the resolution consumes.
    input: Mutex<Option<(EventInput, OwnedRuntime)>>,
    resolved: OnceLock<TraceIds>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `aws.lambda` and the inferred spans, once resolved.
    lambda: Option<Span>,
    inferred: Option<Inferred>,
    children: Vec<Span>,
    error: Option<ErrorInfo>,
    /// The status of the handler's response, when it returned one the wrapper could read.
    response: Option<Status>,
    end_ns: Option<i64>,
    /// The handler's `tracing` span, waiting for its `dd.trace_id`.
    log_span: Option<tracing::Span>,
    /// The trace id, set under this lock when resolved: [`Invocation::correlate`] checks it
    /// here, not in `Shared::resolved` (set only after the resolution returns), so a span
    /// handed over meanwhile is not missed.
    trace_id: Option<u64>,
    /// Data-streams state (consume checkpoints, produces), once resolved.
    streams: Option<crate::streams::Invocation>,
    /// A batch event whose other records are read for `aws.lambda`'s span links when it is
    /// finished: nothing before needs them, so resolving does not wait for them.
    pending_links: Option<(Value, PendingLinks)>,
    /// The delayed background resolution, cancelled when no longer needed.
    resolver: Option<tokio::task::AbortHandle>,
    sent: bool,
}

/// What the runtime tells about the invocation, without a `lambda_runtime::Context` (the
/// local platform, tests and benches build one by hand).
#[derive(Debug, Clone, Default)]
pub struct RuntimeInfo<'a> {
    pub request_id: &'a str,
    pub invoked_function_arn: &'a str,
    /// The function name, when the runtime knows it (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: Option<&'a str>,
    /// `Lambda-Runtime-Trace-Id`.
    pub xray_trace_id: Option<&'a str>,
    /// The decoded client context, if any.
    pub client_context: Option<Value>,
}

impl<'a> RuntimeInfo<'a> {
    /// From the runtime's context.
    pub fn from_context(ctx: &'a lambda_runtime::Context) -> Self {
        Self {
            request_id: &ctx.request_id,
            invoked_function_arn: &ctx.invoked_function_arn,
            function_name: Some(ctx.env_config.function_name.as_str()).filter(|n| !n.is_empty()),
            xray_trace_id: ctx.xray_trace_id.as_deref(),
            client_context: ctx
                .client_context
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
        }
    }
}

/// The event as the wrapper received it.
#[derive(Debug, Clone, Default)]
pub enum EventInput {
    /// The raw bytes the runtime received (the layer): parsed off the response path.
    Raw(bytes::Bytes),
    /// Already JSON (the handler re-serialized its payload, or a test).
    Json(Value),
    /// Not visible: only the client context and X-Ray can parent the trace.
    #[default]
    None,
}

impl From<Option<&Value>> for EventInput {
    fn from(event: Option<&Value>) -> Self {
        event.map_or(Self::None, |e| Self::Json(e.clone()))
    }
}

impl From<Option<Value>> for EventInput {
    fn from(event: Option<Value>) -> Self {
        event.map_or(Self::None, Self::Json)
    }
}

impl From<bytes::Bytes> for EventInput {
    fn from(raw: bytes::Bytes) -> Self {
        Self::Raw(raw)
    }
}

/// [`RuntimeInfo`] but the request id ([`Shared`] has it), owned, for the resolution that
/// may run on another thread.
#[derive(Default)]
struct OwnedRuntime {
    invoked_function_arn: String,
    function_name: Option<String>,
    xray_trace_id: Option<String>,
    client_context: Option<Value>,
}

/// The invocation started last, for code that runs outside the handler's task (a task it
/// spawned): one invocation runs at a time per sandbox.
static LATEST: Mutex<Weak<Shared>> = Mutex::new(Weak::new());

impl Invocation {
    /// Starts the invocation. Only what the handler needs at once happens here: the start
    /// time, the cold-start flag and the `aws.lambda` span id. Parsing the event, extraction,
    /// the inferred spans and the `invocation/start` message are [resolved](Self::ids) off the
    /// response path: on another runtime thread when there is one, else when first needed
    /// (the ids asked for inside the handler, or the finish after the response).
    pub fn start(tracer: &Tracer, event: impl Into<EventInput>, runtime: RuntimeInfo<'_>) -> Self {
        let shared = Arc::new(Shared {
            tracer: tracer.clone(),
            request_id: runtime.request_id.to_owned(),
            span_id: random_id(),
            start_ns: now_ns(),
            cold_start: aws_lambda::take_cold_start(),
            input: Mutex::new(Some((
                event.into(),
                OwnedRuntime {
                    invoked_function_arn: runtime.invoked_function_arn.to_owned(),
                    function_name: runtime.function_name.map(str::to_owned),
                    xray_trace_id: runtime.xray_trace_id.map(str::to_owned),
                    client_context: runtime.client_context,
                },
            ))),
            resolved: OnceLock::new(),
            state: Mutex::new(State::default()),
        });
        *LATEST.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(&shared);
        if let Some(delay) = tracer.config().resolve_after
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let background = Arc::downgrade(&shared);
            let task = handle.spawn(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if let Some(shared) = background.upgrade() {
                    shared.resolve();
                }
            });
            shared.lock().resolver = Some(task.abort_handle());
        }
        Self { shared }
    }

    /// The ids of `aws.lambda` (resolving the invocation now if that has not happened yet).
    pub fn ids(&self) -> TraceIds {
        *self.shared.resolve()
    }

    /// The invocation started last, if it has not been sent yet.
    pub(crate) fn latest() -> Option<Self> {
        let shared = LATEST.lock().unwrap_or_else(|p| p.into_inner()).upgrade()?;
        let sent = shared.lock().sent;
        (!sent).then_some(Self { shared })
    }

    /// Runs `f` on the invocation's data-streams state (resolving the invocation first if
    /// needed); `None` once the invocation has been sent.
    pub(crate) fn with_streams<R>(
        &self,
        f: impl FnOnce(&mut crate::streams::Invocation) -> R,
    ) -> Option<R> {
        self.shared.resolve();
        self.lock().streams.as_mut().map(f)
    }

    /// Whether extraction has run (the trace id is known).
    pub fn is_resolved(&self) -> bool {
        self.shared.resolved.get().is_some()
    }

    /// The `aws.lambda` span id, known from the start.
    pub fn span_id(&self) -> u64 {
        self.shared.span_id
    }

    /// The invocation's request id.
    pub fn request_id(&self) -> &str {
        &self.shared.request_id
    }

    /// Records `dd.trace_id` on the handler's `tracing` span once the trace id is known (at
    /// once if it is), for log correlation.
    pub fn correlate(&self, span: tracing::Span) {
        let mut state = self.lock();
        match state.trace_id {
            Some(trace_id) => {
                span.record("dd.trace_id", trace_id);
            }
            None => state.log_span = Some(span),
        }
    }

    /// Marks `aws.lambda` as failed.
    pub fn fail(&self, error: &ErrorInfo) {
        self.lock().error = Some(error.clone());
    }

    /// Records the status of the handler's response ([`super::status::status_of`]): for an
    /// API Gateway, ALB or function URL trigger it becomes `http.status_code` (200 for a
    /// response without one), and a 5xx marks `aws.lambda` as an error.
    pub fn respond(&self, status: Status) {
        self.lock().response = Some(status);
    }

    /// Ends `aws.lambda` now (the handler produced its result); later calls change nothing.
    pub fn end(&self) {
        self.lock().end_ns.get_or_insert_with(now_ns);
    }

    /// Adds a finished span of the function's own (from the `tracing` bridge).
    pub fn add_span(&self, span: Span) {
        let mut state = self.lock();
        if !state.sent {
            state.children.push(span);
        }
    }

    /// Ends the invocation (if [`Invocation::end`] was not called) and hands the trace to the
    /// transport. Only the first call sends.
    pub fn finish(&self) {
        self.shared.finish();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self) {
        let ids = *self.resolve();
        let flushed = {
            let mut state = self.lock();
            if state.sent {
                return;
            }
            state.sent = true;
            if let Some(resolver) = state.resolver.take() {
                resolver.abort();
            }
            let end = *state.end_ns.get_or_insert_with(now_ns);
            state.assemble(&self.tracer, ids, self.start_ns, end, &self.request_id)
        };
        self.tracer.transport().finish(flushed);
    }

    /// Parses and extracts once, whoever asks first; later callers get the same ids.
    fn resolve(&self) -> &TraceIds {
        self.resolved.get_or_init(|| {
            let input = self.input.lock().unwrap_or_else(|p| p.into_inner()).take();
            let (event, runtime) = input.unwrap_or_default();
            let event = match event {
                EventInput::Raw(raw) => serde_json::from_slice(&raw)
                    .inspect_err(|e| tracing::debug!("ddlambda: event is not JSON ({e})"))
                    .unwrap_or(Value::Null),
                EventInput::Json(value) => value,
                EventInput::None => Value::Null,
            };
            let (ids, lambda, inferred, streams, links) = self.build(&event, runtime);
            let mut state = self.lock();
            state.pending_links = links.map(|pending| (event, pending));
            state.lambda = Some(lambda);
            state.inferred = inferred;
            state.streams = Some(streams);
            state.trace_id = Some(ids.trace_id);
            if let Some(span) = state.log_span.take() {
                span.record("dd.trace_id", ids.trace_id);
            }
            ids
        })
    }

    /// Extraction, trigger tags, inferred spans, the trace-level tags, the data-streams
    /// consume checkpoints and the `invocation/start` message; the batch links left to read.
    fn build(
        &self,
        event: &Value,
        runtime: OwnedRuntime,
    ) -> (
        TraceIds,
        Span,
        Option<Inferred>,
        crate::streams::Invocation,
        Option<PendingLinks>,
    ) {
        let tracer = &self.tracer;
        let config = tracer.config();
        let source = EventSource::detect(event);
        let arn = runtime.invoked_function_arn;
        let info = InvocationInfo {
            request_id: self.request_id.clone(),
            invoked_function_arn: arn.clone(),
            client_context: runtime.client_context,
        };
        let decision = tracer
            .chain()
            .decide_parent(event, &info, runtime.xray_trace_id.as_deref());

        let function_name = runtime
            .function_name
            .or_else(|| config.function_name.clone())
            .or_else(|| arn.split(':').nth(6).map(str::to_owned))
            .unwrap_or_default();
        let function = Function {
            name: &function_name,
            invoked_arn: &arn,
            request_id: &self.request_id,
        };
        let mut lambda = aws_lambda::start_span(config, &function, self.cold_start, self.start_ns);
        for (key, value) in trigger::trigger_tags(event, source, &arn) {
            lambda.meta.insert(key.to_owned(), value);
        }
        if decision.source == Source::Xray {
            lambda
                .meta
                .insert("_dd.parent_source".into(), "xray".into());
        }
        lambda.span_links = decision.links.iter().map(link_to).collect();

        let mut inferred = inferred::infer(
            event,
            source,
            &InferContext {
                config,
                request_id: &self.request_id,
                now_ns: self.start_ns,
                decode_authorizer_context: tracer.chain().decodes_authorizer_context(),
            },
        );
        // Span pointers go where datadog-lambda puts them: on the inferred span that parents
        // aws.lambda (aws.s3, aws.dynamodb) when there is one, else on aws.lambda.
        if config.add_span_pointers {
            let links = pointers::for_event(event, source)
                .into_iter()
                .map(SpanPointer::into_link);
            match inferred.as_mut().and_then(|i| i.spans.last_mut()) {
                Some(entry) => entry.span_links.extend(links),
                None => lambda.span_links.extend(links),
            }
        }

        // Ids: the extracted context continues its trace; otherwise a new 128-bit root.
        let context = decision.context.clone();
        let (trace_id_high, trace_id) = match &context {
            Some(ctx) => (ctx.trace_id_high, ctx.trace_id),
            None => {
                let (high, low) = new_trace_id();
                (Some(high), low)
            }
        };
        let mut parent = context.as_ref().map_or(0, |c| c.parent_id);
        for span in inferred.iter_mut().flat_map(|i| i.spans.iter_mut()) {
            span.span_id = random_id();
            span.parent_id = parent;
            parent = span.span_id;
            if span.service.is_empty() {
                span.service.clone_from(&lambda.service);
            }
        }
        lambda.span_id = self.span_id;
        lambda.parent_id = parent;

        let priority = context
            .as_ref()
            .and_then(|c| c.sampling_priority)
            .unwrap_or(1);
        let ids = TraceIds {
            trace_id,
            trace_id_high,
            span_id: self.span_id,
            sampling_priority: priority,
        };
        // Data-streams: a consume checkpoint per record (no-op unless DSM is on), and the
        // context produces continue.
        let streams = crate::streams::new_invocation(
            tracer.streams(),
            event,
            Some(SpanContext {
                trace_id,
                trace_id_high,
                parent_id: self.span_id,
                sampling_priority: Some(priority),
                ..SpanContext::default()
            }),
        );
        tracer.transport().start(
            InvocationStart {
                request_id: self.request_id.clone(),
                trace_id,
                trace_id_high,
                span_id: self.span_id,
                parent_id: lambda.parent_id,
                sampling_priority: Some(priority),
                start_ns: self.start_ns,
                cold_start: self.cold_start,
            },
            decision.metadata_datagram(),
        );
        tag_trace(
            tracer,
            &mut lambda,
            inferred.as_mut(),
            context.as_ref(),
            trace_id_high,
            priority,
        );
        (ids, lambda, inferred, streams, decision.pending_links)
    }
}

/// Tags every span with the trace-level tags; the chunk root (the first inferred span, or
/// `aws.lambda`) carries the sampling decision and propagation tags, as ddtrace writes them.
fn tag_trace(
    tracer: &Tracer,
    lambda: &mut Span,
    inferred: Option<&mut Inferred>,
    context: Option<&SpanContext>,
    high: Option<u64>,
    priority: i32,
) {
    let config = tracer.config();
    let origin = context
        .and_then(|c| c.origin.clone())
        .unwrap_or_else(|| "lambda".into());
    let spans = inferred
        .into_iter()
        .flat_map(|i| i.spans.iter_mut())
        .chain(std::iter::once(lambda));
    let mut root_done = false;
    for span in spans {
        span.meta.insert("_dd.origin".into(), origin.clone());
        if let Some(env) = &config.env {
            span.meta.insert("env".into(), env.clone());
        }
        if let Some(version) = &config.version {
            span.meta.insert("version".into(), version.clone());
        }
        if !root_done {
            root_done = true;
            span.metrics
                .insert("_sampling_priority_v1".into(), f64::from(priority));
            if let Some(high) = high.filter(|h| *h != 0) {
                span.meta.insert("_dd.p.tid".into(), format!("{high:016x}"));
            }
            match context {
                Some(ctx) => {
                    span.meta.extend(ctx.propagation_tags.clone());
                    // `_dd.parent_id`, `_dd.propagation_error`, `baggage.*`: ddtrace's
                    // chunk-root meta.
                    span.meta.extend(ctx.span_tags.clone());
                }
                None => {
                    span.meta.insert("_dd.p.dm".into(), "-0".into());
                }
            }
        }
    }
}

impl State {
    /// `http.status_code` for an HTTP trigger, as datadog-lambda's
    /// `extract_http_status_code_tag`: the response's `statusCode`, 200 for a response without
    /// one, 502 when the handler failed. Nothing when the response was not seen (no
    /// `#[ddlambda::handler]`, or a response type that is not `Serialize`).
    fn http_status(&self, lambda: &Span) -> Option<u16> {
        let source = lambda.meta.get("function_trigger.event_source")?;
        if !matches!(
            source.as_str(),
            "api-gateway" | "application-load-balancer" | "lambda-function-url"
        ) {
            return None;
        }
        if self.error.is_some() {
            return Some(502);
        }
        match self.response? {
            Status::Code(code) => Some(code),
            // datadog-lambda writes the string "None" for an object without `statusCode`;
            // API Gateway answers such a response with 200.
            Status::Unknown => Some(200),
        }
    }

    /// The finished trace: durations, the outcome, the inferred span's after-the-fact tags,
    /// the children, every span in the trace.
    fn assemble(
        &mut self,
        tracer: &Tracer,
        ids: TraceIds,
        lambda_start: i64,
        end: i64,
        request_id: &str,
    ) -> Flushed {
        let mut lambda = self.lambda.take().unwrap_or_default();
        if let Some((event, pending)) = self.pending_links.take() {
            let links = tracer.chain().read_links(&event, pending);
            lambda.span_links.extend(links.iter().map(link_to));
        }
        lambda.duration = (end - lambda_start).max(0);
        if let Some(error) = &self.error {
            error.apply(&mut lambda);
        }
        let status = self.http_status(&lambda);
        if let Some(code) = status {
            lambda
                .meta
                .insert("http.status_code".into(), code.to_string());
            // bottlecap's end-invocation rule: a 5xx response is an error.
            if code >= 500 {
                lambda.error = 1;
            }
        }
        let mut spans = Vec::with_capacity(3 + self.children.len());
        if let Some(inferred) = self.inferred.take() {
            let synchronous = inferred.synchronous;
            let count = inferred.spans.len();
            for (i, mut span) in inferred.spans.into_iter().enumerate() {
                if i + 1 == count {
                    let finish = if synchronous { end } else { lambda_start };
                    span.duration = (finish - span.start).max(0);
                    if let Some(service) = &tracer.config().service {
                        span.meta.insert("peer.service".into(), service.clone());
                    }
                    if let Some(arn) = lambda.meta.get("function_trigger.event_source_arn") {
                        span.meta.insert("dd_resource_key".into(), arn.clone());
                    }
                    if let Some(code) = status {
                        span.meta
                            .insert("http.status_code".into(), code.to_string());
                    }
                }
                spans.push(span);
            }
        }
        for child in &mut self.children {
            if child.service.is_empty() {
                child.service.clone_from(&lambda.service);
            }
        }
        spans.push(lambda);
        spans.append(&mut self.children);
        for span in &mut spans {
            span.trace_id = ids.trace_id;
        }
        let checkpoints = self
            .streams
            .take()
            .map(crate::streams::Invocation::finish)
            .unwrap_or_default();
        Flushed {
            request_id: request_id.to_owned(),
            spans,
            checkpoints: (!checkpoints.is_empty()).then(|| checkpoints.encode()),
        }
    }
}

impl Drop for Shared {
    /// An invocation dropped without [`Invocation::finish`] (its future was cancelled) still
    /// reports what it has.
    fn drop(&mut self) {
        if !self.lock().sent {
            self.finish();
        }
    }
}
