//! The extension's data model: what listeners hand to the buffer ([`Event`]) and what the
//! flusher hands to sinks ([`Outgoing`]). Listeners know nothing of upstream formats; sinks
//! know nothing of listeners.

use std::time::SystemTime;

use bytes::Bytes;
use ddlambda_wire::Span;

/// Something a local listener received.
#[derive(Debug)]
pub enum Event {
    /// Decoded spans from `/v0.4/traces` or `/v0.5/traces` (a tracer or the wrapper).
    Traces(TracePayload),
    /// A tracer body passed upstream unchanged (`/v0.6/stats`, `/v0.1/pipeline_stats`, the
    /// telemetry proxy): the agent forwards these byte for byte.
    Forward(ForwardPayload),
    /// The wrapper's lifecycle signals (`wire::invocation`).
    Wrapper(WrapperSignal),
}

/// Decoded spans and who sent them.
#[derive(Debug, Default)]
pub struct TracePayload {
    /// `ddlambda-request-id`: hold these spans for that invocation's flush.
    pub request_id: Option<String>,
    /// `ddlambda-invocation-end`: nothing more will come for `request_id`.
    pub end_of_invocation: bool,
    pub traces: Vec<Vec<Span>>,
    /// `Datadog-Meta-Lang`, `-Lang-Version`, `-Tracer-Version` as sent.
    pub lang: String,
    pub lang_version: String,
    pub tracer_version: String,
    /// Size of the request body, what the buffer bound counts.
    pub body_bytes: usize,
}

/// Which upstream intake a forwarded body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardKind {
    /// `/v0.6/stats` → `trace.agent.<site>/api/v0.2/stats`.
    TracerStats,
    /// `/v0.1/pipeline_stats` → `trace.agent.<site>/api/v0.1/pipeline_stats`.
    PipelineStats,
    /// `/telemetry/proxy/…` → `instrumentation-telemetry-intake.<site>/…`.
    Telemetry,
}

/// A body forwarded unchanged, with the tracer's headers to pass along.
#[derive(Debug, Clone)]
pub struct ForwardPayload {
    pub kind: ForwardKind,
    /// The path the tracer used (below the proxy prefix for telemetry).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub request_id: Option<String>,
}

/// What the wrapper tells the extension about an invocation.
#[derive(Debug, Clone)]
pub enum WrapperSignal {
    Hello(ddlambda_wire::invocation::Hello),
    Start(ddlambda_wire::invocation::InvocationStart),
    End { request_id: String },
}

/// One unit of work for a sink, already cut to the sink-independent shape; each sink encodes
/// it in its own format (Datadog protobuf/msgpack, JSON lines, OTLP).
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Spans, enriched with the function tags, grouped by trace.
    Traces(TraceBatch),
    /// A tracer body forwarded unchanged.
    Forward(ForwardPayload),
    /// Finished data-streams buckets of one (service, env); the Datadog sink encodes them with
    /// `aggregate::streams::encode_pipeline_stats` for `/api/v0.1/pipeline_stats`.
    PipelineStats(crate::aggregate::streams::PipelineStats),
    /// Aggregated DogStatsD and enhanced-metric series, for `/api/v2/series`
    /// (`aggregate::metrics::series::series_json_body`).
    Series(crate::aggregate::metrics::series::SeriesBatch),
    /// Aggregated distributions as agent sketches, for `/api/beta/sketches`
    /// (`aggregate::metrics::sketches::sketch_payload_protobuf`).
    Sketches(crate::aggregate::metrics::sketches::SketchBatch),
}

/// Spans ready for upstream.
#[derive(Debug, Clone, Default)]
pub struct TraceBatch {
    pub traces: Vec<Vec<Span>>,
    pub lang: String,
    pub lang_version: String,
    pub tracer_version: String,
}

/// A source the flusher drains at each flush: the buffer, and every aggregator (data-streams
/// buckets, metrics) that keeps state across invocations.
pub trait Drain: Send + Sync {
    /// Takes what is ready to send. `force` (SHUTDOWN) takes everything, open buckets too.
    fn drain(&self, now: SystemTime, force: bool) -> Vec<Outgoing>;
}

impl Outgoing {
    /// A short name for logs and counters.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Traces(_) => "traces",
            Self::Forward(f) => match f.kind {
                ForwardKind::TracerStats => "tracer_stats",
                ForwardKind::PipelineStats => "pipeline_stats",
                ForwardKind::Telemetry => "telemetry",
            },
            Self::PipelineStats(_) => "dsm_pipeline_stats",
            Self::Series(_) => "series",
            Self::Sketches(_) => "sketches",
        }
    }

    /// Spans carried (0 for everything but traces).
    pub fn span_count(&self) -> u64 {
        match self {
            Self::Traces(b) => b.traces.iter().map(Vec::len).sum::<usize>() as u64,
            Self::Forward(_) | Self::PipelineStats(_) | Self::Series(_) | Self::Sketches(_) => 0,
        }
    }
}
