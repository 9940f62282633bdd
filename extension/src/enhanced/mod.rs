//! What the platform's telemetry says about each invocation, turned into enhanced metrics
//! (`aws.lambda.enhanced.*` distributions), process metrics sampled from `/proc`, and the spans
//! a runtime cannot report itself (datadog-agent-protocol.md §14).
//!
//! [`InvocationTelemetry`] is fed by the lifecycle: INVOKE ([`InvocationTelemetry::invoke`])
//! and every Telemetry record ([`TelemetryObserver`]); `function` records (the function's log
//! lines, reduced by `lifecycle::telemetry::parse_batch` to those reporting an out-of-memory
//! failure) feed [`InvocationTelemetry::on_function_log`]. Metrics go to the metrics aggregator; spans
//! go into the buffer under the invocation's request id, so they are enriched and flushed with
//! it.
//!
//! | metric | from |
//! |---|---|
//! | `invocations` | INVOKE (or `platform.start` if INVOKE was not seen) |
//! | `errors`, `timeouts` | `runtimeDone.status` ≠ success / = timeout (`report.status` if no runtimeDone came) |
//! | `out_of_memory` | once per request: `errorType` Runtime.OutOfMemory, max memory used = memory size, or an OOM line in function logs |
//! | `runtime_duration` (ms), `produced_bytes` | `runtimeDone.metrics` |
//! | `duration`, `billed_duration` (s), `max_memory_used`, `memorysize` (MB), `estimated_cost` (USD) | `platform.report` ([`cost`]) |
//! | `post_runtime_duration` (ms) | `report.durationMs − runtimeDone.durationMs` |
//! | `init_duration` (s) | `initReport.metrics.durationMs`, else `report.initDurationMs` |
//! | process metrics | [`process`], between INVOKE and runtimeDone |
//!
//! Tags: the function tags, `cold_start:true|false`, `proactive_initialization:true` when the
//! first invocation came more than 10 s after the extension started, `init_type` on
//! `init_duration`.
//!
//! The `aws.lambda.cold_start` span (init's `platform.initStart` + `initReport` duration) is a
//! child of the FIRST invocation's `aws.lambda` span, whichever of init's records, that
//! invocation's telemetry, the wrapper's announcement of it and later INVOKEs arrives first
//! (the buffer keeps the first announcement for this). Without a wrapper, a tracer's
//! `aws.lambda` span carrying the first `request_id` is the parent, as with bottlecap; with
//! neither, it is the root of a trace of its own, written when the first invocation is over
//! (next INVOKE or SHUTDOWN). Bottlecap makes the `aws.lambda` span itself for the tracers
//! that do not, so it always has a parent to give.

pub mod cost;
pub mod oom;
pub mod process;
pub mod spans;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ddlambda_wire::Span;
use serde_json::Value;

use crate::aggregate::metrics::MetricsAggregator;
use crate::buffer::{Buffer, Inbox};
use crate::event::{Event, TracePayload};
use crate::lifecycle::telemetry::TelemetryObserver;
use process::{ProcScope, Sampler};
use spans::{FailedInvocation, Failure, Parent};

/// Prefix of every enhanced metric.
pub const PREFIX: &str = "aws.lambda.enhanced.";
/// A first invocation later than this after start-up was a proactive initialisation, not a
/// cold start (bottlecap's rule).
const PROACTIVE_AFTER: Duration = Duration::from_secs(10);
/// Requests whose telemetry is still expected; older ones are forgotten.
const MAX_TRACKED: usize = 64;

/// Settings, from the extension's configuration.
#[derive(Debug, Clone)]
pub struct EnhancedConfig {
    /// `DD_ENHANCED_METRICS` (default true).
    pub metrics: bool,
    /// `DD_LAMBDA_PROC_ENHANCED_METRICS` (default true).
    pub process_metrics: bool,
    /// `AWS_LAMBDA_FUNCTION_NAME`, the resource of the spans written here.
    pub function_name: String,
    /// `x86_64` or `arm64`, for the cost.
    pub architecture: String,
    /// The function tags (`key:value`), on every metric.
    pub tags: Vec<String>,
    pub proc_scope: ProcScope,
}

impl EnhancedConfig {
    /// From the extension's configuration and its function tags.
    pub fn from_config(
        config: &crate::config::Config,
        tags: &crate::flush::enrich::FunctionTags,
    ) -> Self {
        Self {
            metrics: config.enhanced_metrics,
            process_metrics: config.proc_enhanced_metrics,
            function_name: config.function.name.clone().unwrap_or_default(),
            architecture: config.function.architecture.clone(),
            tags: tags
                .pairs()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| format!("{k}:{v}"))
                .collect(),
            proc_scope: ProcScope::default(),
        }
    }
}

/// The per-invocation telemetry processor.
pub struct InvocationTelemetry {
    config: EnhancedConfig,
    metrics: Arc<MetricsAggregator>,
    buffer: Arc<Buffer>,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    invocations: u64,
    /// Whether the first invocation was a proactive initialisation.
    proactive: bool,
    first_request: Option<String>,
    init: Init,
    requests: HashMap<String, Request>,
    order: VecDeque<String>,
}

#[derive(Default)]
struct Init {
    start_ns: Option<i64>,
    init_type: Option<String>,
    duration_ms: Option<f64>,
    duration_emitted: bool,
    span_sent: bool,
}

#[derive(Default)]
struct Request {
    counted: bool,
    cold: bool,
    start_ns: Option<i64>,
    runtime_done: Option<RuntimeDone>,
    oom_counted: bool,
    /// The `aws.lambda` span written here for this request (its runtime died).
    error_span: Option<Parent>,
    sampler: Option<Sampler>,
}

#[derive(Debug, Clone)]
struct RuntimeDone {
    duration_ms: Option<f64>,
}

impl InvocationTelemetry {
    pub fn new(
        config: EnhancedConfig,
        metrics: Arc<MetricsAggregator>,
        buffer: Arc<Buffer>,
    ) -> Self {
        Self {
            config,
            metrics,
            buffer,
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// INVOKE: counts the invocation and starts sampling `/proc` (needs a Tokio runtime).
    pub fn invoke(&self, request_id: &str) {
        let mut state = self.lock();
        // One invocation at a time per sandbox: a sampler still running belongs to an
        // invocation whose runtimeDone never came (no Telemetry API, as under the RIE).
        for (id, req) in state.requests.iter_mut() {
            if id != request_id
                && let Some(s) = req.sampler.take()
            {
                drop(s.finish());
            }
        }
        self.begin(&mut state, request_id, now_ns());
        let req = state.request(request_id);
        if self.config.metrics
            && self.config.process_metrics
            && req.sampler.is_none()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            req.sampler = Some(Sampler::start(self.config.proc_scope.clone()));
        }
        self.settle_cold_start(&mut state, false);
    }

    /// The lifecycle is done waiting for `request_id`, right before its flush: the
    /// cold-start span joins the first invocation's flush when it can.
    pub fn runtime_done(&self, _request_id: &str) {
        let mut state = self.lock();
        self.settle_cold_start(&mut state, false);
    }

    /// A line the function wrote (Telemetry `function` record); only OOM reports matter here.
    pub fn on_function_log(&self, request_id: Option<&str>, text: &str) {
        if !oom::is_oom_log(text) {
            return;
        }
        let mut state = self.lock();
        let Some(id) = request_id
            .map(str::to_owned)
            .or_else(|| state.order.back().cloned())
        else {
            return;
        };
        self.count_oom(&mut state, &id, now_ns());
    }

    /// SHUTDOWN: `shutdowns` (and `unused_init` for a sandbox that was never invoked), then
    /// stops every sampler still running (their invocations never finished).
    pub fn shutdown(&self) {
        let mut state = self.lock();
        let at_ns = now_ns();
        self.emit(&state, "shutdowns", 1.0, at_ns, false, None);
        if state.invocations == 0 {
            self.emit(&state, "unused_init", 1.0, at_ns, false, None);
        }
        self.settle_cold_start(&mut state, true);
        for req in state.requests.values_mut() {
            if let Some(s) = req.sampler.take() {
                drop(s.finish());
            }
        }
    }

    /// Counts an invocation once, deciding whether it was the cold start.
    fn begin(&self, state: &mut State, request_id: &str, at_ns: i64) {
        if state.request(request_id).counted {
            return;
        }
        state.invocations += 1;
        let first = state.invocations == 1;
        if first {
            state.first_request = Some(request_id.to_owned());
            state.proactive = self.started.elapsed() > PROACTIVE_AFTER;
        }
        let cold = first && !state.proactive;
        let req = state.request(request_id);
        req.counted = true;
        req.cold = cold;
        self.emit(state, "invocations", 1.0, at_ns, cold, None);
    }

    fn emit(
        &self,
        state: &State,
        name: &str,
        value: f64,
        at_ns: i64,
        cold: bool,
        extra: Option<String>,
    ) {
        if !self.config.metrics || !value.is_finite() {
            return;
        }
        let mut tags = Vec::with_capacity(self.config.tags.len() + 3);
        tags.extend(self.config.tags.iter().cloned());
        tags.push(format!("cold_start:{cold}"));
        if state.proactive && state.invocations <= 1 {
            tags.push("proactive_initialization:true".to_owned());
        }
        tags.extend(extra);
        self.metrics.insert_distribution(
            &format!("{PREFIX}{name}"),
            &tags,
            value,
            at_ns.div_euclid(1_000_000_000),
        );
    }

    fn count_oom(&self, state: &mut State, request_id: &str, at_ns: i64) {
        let req = state.request(request_id);
        if req.oom_counted {
            return;
        }
        req.oom_counted = true;
        let cold = req.cold;
        self.emit(state, "out_of_memory", 1.0, at_ns, cold, None);
    }

    fn on_init_start(&self, state: &mut State, at_ns: i64, record: &Value) {
        state.init.start_ns = Some(at_ns);
        state.init.init_type = record
            .get("initializationType")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }

    fn on_init_report(&self, state: &mut State, at_ns: i64, record: &Value) {
        let Some(ms) = record
            .get("metrics")
            .and_then(|m| m.get("durationMs"))
            .and_then(Value::as_f64)
        else {
            return;
        };
        state.init.duration_ms = Some(ms);
        self.emit_init_duration(state, ms, at_ns);
    }

    /// SnapStart: the restore phase replaces init (`platform.restoreReport`).
    fn on_restore_report(&self, state: &State, at_ns: i64, record: &Value) {
        if let Some(ms) = record
            .get("metrics")
            .and_then(|m| m.get("durationMs"))
            .and_then(Value::as_f64)
        {
            self.emit(
                state,
                "snapstart_restore_duration",
                ms / 1000.0,
                at_ns,
                true,
                None,
            );
        }
    }

    fn emit_init_duration(&self, state: &mut State, ms: f64, at_ns: i64) {
        if state.init.duration_emitted {
            return;
        }
        state.init.duration_emitted = true;
        let init_type = state
            .init
            .init_type
            .as_ref()
            .map(|t| format!("init_type:{t}"));
        self.emit(state, "init_duration", ms / 1000.0, at_ns, true, init_type);
    }

    fn on_runtime_done_record(
        &self,
        state: &mut State,
        request_id: &str,
        at_ns: i64,
        record: &Value,
    ) {
        // A platform.start may never have come (buffered away, or INVOKE was missed).
        self.begin(state, request_id, at_ns);
        let status = record.get("status").and_then(Value::as_str).unwrap_or("");
        let error_type = record.get("errorType").and_then(Value::as_str);
        let metrics = record.get("metrics");
        let duration_ms = metrics
            .and_then(|m| m.get("durationMs"))
            .and_then(Value::as_f64);
        let produced = metrics
            .and_then(|m| m.get("producedBytes"))
            .and_then(Value::as_f64);
        let req = state.request(request_id);
        if req.runtime_done.is_some() {
            return;
        }
        req.runtime_done = Some(RuntimeDone { duration_ms });
        let cold = req.cold;
        let sampler = req.sampler.take();

        if let Some(ms) = duration_ms {
            self.emit(state, "runtime_duration", ms, at_ns, cold, None);
        }
        if let Some(bytes) = produced {
            self.emit(state, "produced_bytes", bytes, at_ns, cold, None);
        }
        if let Some(sampler) = sampler {
            for (name, value) in sampler.finish() {
                self.emit(state, name, value, at_ns, cold, None);
            }
        }
        self.on_outcome(state, request_id, at_ns, status, error_type, duration_ms);
    }

    /// Errors, timeouts, OOM, and the error span, from a runtimeDone (or a report standing in
    /// for a missing one).
    fn on_outcome(
        &self,
        state: &mut State,
        request_id: &str,
        at_ns: i64,
        status: &str,
        error_type: Option<&str>,
        duration_ms: Option<f64>,
    ) {
        let cold = state.request(request_id).cold;
        if !status.is_empty() && status != "success" {
            self.emit(state, "errors", 1.0, at_ns, cold, None);
        }
        if status == "timeout" {
            self.emit(state, "timeouts", 1.0, at_ns, cold, None);
        }
        if error_type.is_some_and(oom::is_oom_error_type) {
            self.count_oom(state, request_id, at_ns);
        }

        // The runtime could not report this invocation: it timed out, was failed by the
        // platform, or its process died (`Runtime.*` error types). A handled error
        // (`Function.*`, or a runtime-specific type) is reported by the runtime itself.
        let died = match status {
            "timeout" | "failure" => true,
            "error" => error_type.is_none_or(|t| t.starts_with("Runtime.")),
            _ => false,
        };
        let announced = self.buffer.wrapper_start(request_id);
        let req = state.request(request_id);
        if died && req.error_span.is_none() && !self.buffer.ended(request_id) {
            let failure = if status == "timeout" {
                Failure::Timeout
            } else if req.oom_counted {
                Failure::OutOfMemory
            } else {
                Failure::Exit(error_type.unwrap_or("Runtime.ExitError").to_owned())
            };
            let span = spans::error_span(&FailedInvocation {
                request_id,
                function_name: &self.config.function_name,
                failure,
                platform_start_ns: req.start_ns,
                done_ns: at_ns,
                duration_ms,
                cold_start: req.cold,
                announced: announced.as_ref(),
            });
            req.error_span = Some(Parent::from(&span));
            // A runtime that died sends nothing more: nobody should wait for it.
            self.push_span(request_id, span, true);
        }
    }

    /// Writes the `aws.lambda.cold_start` span once init's telemetry is in and the span it
    /// hangs under is known: the first invocation's `aws.lambda` as the wrapper announced it,
    /// as a tracer sent it (with its `request_id`), or the error span written for it. Each of
    /// those can arrive before or after the other, and after later INVOKEs (telemetry comes
    /// in batches; the wrapper's end signal lets the lifecycle move on first), so this runs
    /// on every event that may complete it. Without any, it waits until the first invocation
    /// is over for good (`over`: SHUTDOWN; a later invocation; its end signal), then the span
    /// is the root of a trace of its own rather than be lost.
    fn settle_cold_start(&self, state: &mut State, over: bool) {
        if state.init.span_sent {
            return;
        }
        let (Some(start), Some(ms), Some(first)) = (
            state.init.start_ns,
            state.init.duration_ms,
            state.first_request.clone(),
        ) else {
            return;
        };
        let done = state.requests.get(&first);
        let parent = self
            .buffer
            .wrapper_start(&first)
            .as_ref()
            .map(Parent::from)
            .or_else(|| self.buffer.first_lambda_span(&first).map(Parent::from))
            .or_else(|| done.and_then(|r| r.error_span));
        // Without a wrapper, a tracer's spans may come until the next INVOKE.
        let over = over || state.invocations > 1 || self.buffer.ended(&first);
        if parent.is_none() && !over {
            return;
        }
        state.init.span_sent = true;
        let span = spans::cold_start_span(
            &self.config.function_name,
            start,
            ms,
            state.init.init_type.as_deref(),
            parent,
        );
        self.push_span(&first, span, false);
    }

    /// Holds one span of ours for `request_id`'s flush.
    fn push_span(&self, request_id: &str, span: Span, end_of_invocation: bool) {
        self.buffer.push(Event::Traces(TracePayload {
            request_id: Some(request_id.to_owned()),
            end_of_invocation,
            traces: vec![vec![span]],
            ..TracePayload::default()
        }));
    }

    fn on_report(&self, state: &mut State, request_id: &str, at_ns: i64, record: &Value) {
        let f = |k: &str| {
            record
                .get("metrics")
                .and_then(|m| m.get(k))
                .and_then(Value::as_f64)
        };
        self.begin(state, request_id, at_ns);
        if state.request(request_id).runtime_done.is_none() {
            // No runtimeDone came for this request: the report's status stands in for it.
            let status = record.get("status").and_then(Value::as_str).unwrap_or("");
            let error_type = record.get("errorType").and_then(Value::as_str);
            state.request(request_id).runtime_done = Some(RuntimeDone { duration_ms: None });
            if let Some(s) = state.request(request_id).sampler.take() {
                drop(s.finish());
            }
            self.on_outcome(
                state,
                request_id,
                at_ns,
                status,
                error_type,
                f("durationMs"),
            );
        }
        let req = state.request(request_id);
        let cold = req.cold;
        let runtime_ms = req.runtime_done.as_ref().and_then(|r| r.duration_ms);
        let duration = f("durationMs");
        let billed = f("billedDurationMs");
        let used = f("maxMemoryUsedMB");
        let size = f("memorySizeMB");
        if let Some(ms) = duration {
            self.emit(state, "duration", ms / 1000.0, at_ns, cold, None);
            if let Some(rt) = runtime_ms {
                self.emit(
                    state,
                    "post_runtime_duration",
                    (ms - rt).max(0.0),
                    at_ns,
                    cold,
                    None,
                );
            }
        }
        if let Some(ms) = billed {
            self.emit(state, "billed_duration", ms / 1000.0, at_ns, cold, None);
        }
        if let Some(mb) = used {
            self.emit(state, "max_memory_used", mb, at_ns, cold, None);
        }
        if let Some(mb) = size {
            self.emit(state, "memorysize", mb, at_ns, cold, None);
        }
        if let (Some(ms), Some(mb)) = (billed, size) {
            let cost = cost::estimated_cost(ms, mb, &self.config.architecture);
            self.emit(state, "estimated_cost", cost, at_ns, cold, None);
        }
        if let (Some(u), Some(s)) = (used, size)
            && oom::is_memory_exhausted(u, s)
        {
            self.count_oom(state, request_id, at_ns);
        }
        if let Some(ms) = f("initDurationMs") {
            self.emit_init_duration(state, ms, at_ns);
        }
        // The report is the last record for a request; its entry stays (bounded by
        // MAX_TRACKED) so that a late INVOKE or record for it is not counted again.
        if let Some(s) = state.request(request_id).sampler.take() {
            drop(s.finish());
        }
    }
}

impl State {
    /// The state of `request_id`, created on first sight; the oldest is forgotten beyond
    /// [`MAX_TRACKED`].
    fn request(&mut self, request_id: &str) -> &mut Request {
        if !self.requests.contains_key(request_id) {
            if self.order.len() >= MAX_TRACKED
                && let Some(old) = self.order.pop_front()
            {
                self.requests.remove(&old);
            }
            self.order.push_back(request_id.to_owned());
        }
        self.requests.entry(request_id.to_owned()).or_default()
    }
}

impl TelemetryObserver for InvocationTelemetry {
    fn on_invoke(&self, request_id: &str) {
        self.invoke(request_id);
    }

    fn on_runtime_done(&self, request_id: &str) {
        self.runtime_done(request_id);
    }

    fn on_shutdown(&self) {
        self.shutdown();
    }

    fn on_platform_record(&self, item: &Value) {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(record) = item.get("record") else {
            return;
        };
        let at_ns = item
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339_ns)
            .unwrap_or_else(now_ns);
        let request_id = record.get("requestId").and_then(Value::as_str);
        if kind == "function" {
            // Text format: the record is the line; JSON format: an object with `message`.
            let text = record
                .as_str()
                .or_else(|| record.get("message").and_then(Value::as_str))
                .unwrap_or_default();
            self.on_function_log(request_id, text);
            return;
        }
        let mut state = self.lock();
        match (kind, request_id) {
            ("platform.initStart", _) => self.on_init_start(&mut state, at_ns, record),
            ("platform.initReport", _) => self.on_init_report(&mut state, at_ns, record),
            ("platform.restoreReport", _) => self.on_restore_report(&state, at_ns, record),
            ("platform.start", Some(id)) => {
                self.begin(&mut state, id, at_ns);
                state.request(id).start_ns = Some(at_ns);
            }
            ("platform.runtimeDone", Some(id)) => {
                self.on_runtime_done_record(&mut state, id, at_ns, record)
            }
            ("platform.report", Some(id)) => self.on_report(&mut state, id, at_ns, record),
            _ => return,
        }
        self.settle_cold_start(&mut state, false);
    }
}

/// Spans and metrics written here, as the tests and the local sink see them.
pub fn is_telemetry_span(span: &Span) -> bool {
    span.meta.get("_dd.ddlambda.source").map(String::as_str) == Some("telemetry")
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub use ddlambda_wire::time::parse_rfc3339_ns;

#[cfg(test)]
mod tests;
