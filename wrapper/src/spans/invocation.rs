//! One invocation's spans, from the event to the transport.
//!
//! [`Invocation::start`] runs before the handler: trigger detection, the extraction decision
//! (which parents the trace), the inferred spans and `aws.lambda`'s ids, the data-streams
//! consume checkpoints; it announces the invocation to the extension off the response path.
//! The handler's outcome is recorded with [`Invocation::fail`] / [`Invocation::end`];
//! [`Invocation::finish`] completes the trace and hands it to the transport (a channel push).

use std::sync::{Arc, Mutex};

use ddlambda_wire::invocation::InvocationStart;
use ddlambda_wire::{Span, SpanContext};
use serde_json::Value;

use super::aws_lambda::{self, ErrorInfo, Function};
use super::ids::{new_trace_id, now_ns, random_id};
use super::inferred::{self, InferContext, Inferred};
use super::links::link_to;
use crate::extract::{InvocationInfo, Source};
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
    ids: TraceIds,
    state: Mutex<State>,
}

struct State {
    lambda: Span,
    inferred: Option<Inferred>,
    children: Vec<Span>,
    end_ns: Option<i64>,
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

impl Invocation {
    /// Starts the invocation for `event` (`None` when the payload could not be seen: then
    /// only the client context and X-Ray can parent it).
    pub fn start(tracer: &Tracer, event: Option<&Value>, runtime: RuntimeInfo<'_>) -> Self {
        let start_ns = now_ns();
        let cold_start = aws_lambda::take_cold_start();
        let config = tracer.config();
        let null = Value::Null;
        let event = event.unwrap_or(&null);

        let source = EventSource::detect(event);
        let info = InvocationInfo {
            request_id: runtime.request_id.to_owned(),
            invoked_function_arn: runtime.invoked_function_arn.to_owned(),
            client_context: runtime.client_context,
        };
        let decision = tracer.chain().decide(event, &info, runtime.xray_trace_id);

        let function_name = runtime
            .function_name
            .map(str::to_owned)
            .or_else(|| config.function_name.clone())
            .or_else(|| {
                runtime
                    .invoked_function_arn
                    .split(':')
                    .nth(6)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let function = Function {
            name: &function_name,
            invoked_arn: runtime.invoked_function_arn,
            request_id: runtime.request_id,
        };
        let mut lambda = aws_lambda::start_span(config, &function, cold_start, start_ns);
        for (key, value) in trigger::trigger_tags(event, source, runtime.invoked_function_arn) {
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
                request_id: runtime.request_id,
                now_ns: start_ns,
            },
        );

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
            span.trace_id = trace_id;
            span.span_id = random_id();
            span.parent_id = parent;
            parent = span.span_id;
            if span.service.is_empty() {
                span.service.clone_from(&lambda.service);
            }
        }
        lambda.trace_id = trace_id;
        lambda.span_id = random_id();
        lambda.parent_id = parent;

        let priority = context
            .as_ref()
            .and_then(|c| c.sampling_priority)
            .unwrap_or(1);
        let ids = TraceIds {
            trace_id,
            trace_id_high,
            span_id: lambda.span_id,
            sampling_priority: priority,
        };
        // Data-streams hook: a consume checkpoint per record (no-op unless DSM is on), and the
        // context produces continue.
        crate::streams::begin_invocation(
            tracer.streams(),
            event,
            Some(SpanContext {
                trace_id,
                trace_id_high,
                parent_id: lambda.span_id,
                sampling_priority: Some(priority),
                ..SpanContext::default()
            }),
        );
        tracer.transport().start(
            InvocationStart {
                request_id: runtime.request_id.to_owned(),
                trace_id,
                trace_id_high,
                span_id: lambda.span_id,
                parent_id: lambda.parent_id,
                sampling_priority: Some(priority),
                start_ns,
                cold_start,
            },
            decision.metadata_datagram(),
        );

        let mut state = State {
            lambda,
            inferred,
            children: Vec::new(),
            end_ns: None,
            sent: false,
        };
        state.tag_trace(tracer, context.as_ref(), trace_id_high, priority);
        Self {
            shared: Arc::new(Shared {
                tracer: tracer.clone(),
                request_id: runtime.request_id.to_owned(),
                ids,
                state: Mutex::new(state),
            }),
        }
    }

    /// The ids of `aws.lambda`.
    pub fn ids(&self) -> TraceIds {
        self.shared.ids
    }

    /// The invocation's request id.
    pub fn request_id(&self) -> &str {
        &self.shared.request_id
    }

    /// Marks `aws.lambda` as failed.
    pub fn fail(&self, error: &ErrorInfo) {
        error.apply(&mut self.lock().lambda);
    }

    /// Ends `aws.lambda` now (the handler produced its result); later calls change nothing.
    pub fn end(&self) {
        self.lock().end_ns.get_or_insert_with(now_ns);
    }

    /// Adds a finished span of the function's own (from the `tracing` bridge).
    pub fn add_span(&self, mut span: Span) {
        let mut state = self.lock();
        if state.sent {
            return;
        }
        span.trace_id = self.shared.ids.trace_id;
        if span.service.is_empty() {
            span.service.clone_from(&state.lambda.service);
        }
        state.children.push(span);
    }

    /// Ends the invocation (if [`Invocation::end`] was not called) and hands the trace to the
    /// transport. Only the first call sends.
    pub fn finish(&self) {
        let flushed = {
            let mut state = self.lock();
            if state.sent {
                return;
            }
            state.sent = true;
            let end = *state.end_ns.get_or_insert_with(now_ns);
            state.assemble(&self.shared.tracer, end, &self.shared.request_id)
        };
        self.shared.tracer.transport().finish(flushed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Tags every span with the trace-level tags; the chunk root (the first inferred span, or
    /// `aws.lambda`) carries the sampling decision and propagation tags, as ddtrace writes them.
    fn tag_trace(
        &mut self,
        tracer: &Tracer,
        context: Option<&SpanContext>,
        high: Option<u64>,
        priority: i32,
    ) {
        let config = tracer.config();
        let origin = context
            .and_then(|c| c.origin.clone())
            .unwrap_or_else(|| "lambda".into());
        let spans = self
            .inferred
            .iter_mut()
            .flat_map(|i| i.spans.iter_mut())
            .chain(std::iter::once(&mut self.lambda));
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
                    Some(ctx) => span.meta.extend(ctx.propagation_tags.clone()),
                    None => {
                        span.meta.insert("_dd.p.dm".into(), "-0".into());
                    }
                }
            }
        }
    }

    /// The finished trace: durations, the inferred span's after-the-fact tags, children.
    fn assemble(&mut self, tracer: &Tracer, end: i64, request_id: &str) -> Flushed {
        let lambda_start = self.lambda.start;
        self.lambda.duration = (end - lambda_start).max(0);
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
                    if let Some(arn) = self.lambda.meta.get("function_trigger.event_source_arn") {
                        span.meta.insert("dd_resource_key".into(), arn.clone());
                    }
                }
                spans.push(span);
            }
        }
        spans.push(std::mem::take(&mut self.lambda));
        spans.append(&mut self.children);
        let checkpoints = crate::streams::finish_invocation();
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
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if !state.sent {
            state.sent = true;
            let end = *state.end_ns.get_or_insert_with(now_ns);
            let flushed = state.assemble(&self.tracer, end, &self.request_id);
            self.tracer.transport().finish(flushed);
        }
    }
}
