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
    /// telemetry proxy, [`PROXY_ROUTES`]): the agent forwards these byte for byte.
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
    /// One of [`PROXY_ROUTES`]: passed through to its intake unchanged.
    Proxy(&'static ProxyRoute),
}

impl ForwardKind {
    /// A short name for logs, counters and the local sink.
    pub fn name(self) -> &'static str {
        match self {
            Self::TracerStats => "tracer_stats",
            Self::PipelineStats => "pipeline_stats",
            Self::Telemetry => "telemetry",
            Self::Proxy(route) => route.name,
        }
    }
}

/// A tracer route the agent passes through to a Datadog intake: the body and the tracer's
/// headers unchanged, `DD-API-KEY` added. The intake is `https://<subdomain>.<site><intake_path>`,
/// as bottlecap builds it (`traces/trace_agent.rs`, `handle_proxy`).
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyRoute {
    /// A short name for logs, counters and the local sink.
    pub name: &'static str,
    /// Where tracers post on the local agent (listed as such in `/info`).
    pub local_path: &'static str,
    /// The intake host's first labels, before `.<site>`.
    pub subdomain: &'static str,
    pub intake_path: &'static str,
    /// The largest body taken (413 above it); the agent-wide cap applies when lower.
    pub max_body_bytes: usize,
}

/// bottlecap's cap on every proxied route (`DEFAULT_REQUEST_BODY_LIMIT`).
const PROXY_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The EVP intake's payload limit, which ddtrace's LLMObs writer fills batches up to
/// (`DEFAULT_EVP_PAYLOAD_SIZE_LIMIT`, 5 MiB) and the Go agent's EVP proxy enforces.
const EVP_BODY_LIMIT: usize = 5 * 1024 * 1024;
/// Profiles: the agent-wide cap. bottlecap refuses profiles over 2 MiB; the Go agent streams
/// them uncapped. A multi-threaded function's profile can pass 2 MiB, and losing it helps no one.
const PROFILE_BODY_LIMIT: usize = 50 * 1024 * 1024;

/// The proxied routes, one line each: bottlecap's table (`traces/trace_agent.rs`).
pub const PROXY_ROUTES: &[ProxyRoute] = &[
    ProxyRoute {
        name: "profiling",
        local_path: "/profiling/v1/input",
        subdomain: "intake.profile",
        intake_path: "/api/v2/profile",
        max_body_bytes: PROFILE_BODY_LIMIT,
    },
    ProxyRoute {
        name: "llmobs_spans",
        local_path: "/evp_proxy/v2/api/v2/llmobs",
        subdomain: "llmobs-intake",
        intake_path: "/api/v2/llmobs",
        max_body_bytes: EVP_BODY_LIMIT,
    },
    ProxyRoute {
        name: "llmobs_eval_metric",
        local_path: "/evp_proxy/v2/api/intake/llm-obs/v1/eval-metric",
        subdomain: "api",
        intake_path: "/api/intake/llm-obs/v1/eval-metric",
        max_body_bytes: EVP_BODY_LIMIT,
    },
    ProxyRoute {
        name: "llmobs_eval_metric_v2",
        local_path: "/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric",
        subdomain: "api",
        intake_path: "/api/intake/llm-obs/v2/eval-metric",
        max_body_bytes: EVP_BODY_LIMIT,
    },
    // Exception Replay's snapshots in the v1 protocol go to the logs intake.
    ProxyRoute {
        name: "debugger_logs",
        local_path: "/debugger/v1/input",
        subdomain: "http-intake.logs",
        intake_path: "/api/v2/logs",
        max_body_bytes: PROXY_BODY_LIMIT,
    },
    ProxyRoute {
        name: "debugger",
        local_path: "/debugger/v2/input",
        subdomain: "debugger-intake",
        intake_path: "/api/v2/debugger",
        max_body_bytes: PROXY_BODY_LIMIT,
    },
    ProxyRoute {
        name: "debugger_diagnostics",
        local_path: "/debugger/v1/diagnostics",
        subdomain: "debugger-intake",
        intake_path: "/api/v2/debugger",
        max_body_bytes: PROXY_BODY_LIMIT,
    },
];

/// The proxied route served at `path`, if any.
pub fn proxy_route(path: &str) -> Option<&'static ProxyRoute> {
    PROXY_ROUTES.iter().find(|r| r.local_path == path)
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
            Self::Forward(f) => f.kind.name(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_is_bottlecaps() {
        let table: Vec<(&str, &str, &str)> = PROXY_ROUTES
            .iter()
            .map(|r| (r.local_path, r.subdomain, r.intake_path))
            .collect();
        assert_eq!(
            table,
            [
                ("/profiling/v1/input", "intake.profile", "/api/v2/profile"),
                (
                    "/evp_proxy/v2/api/v2/llmobs",
                    "llmobs-intake",
                    "/api/v2/llmobs"
                ),
                (
                    "/evp_proxy/v2/api/intake/llm-obs/v1/eval-metric",
                    "api",
                    "/api/intake/llm-obs/v1/eval-metric"
                ),
                (
                    "/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric",
                    "api",
                    "/api/intake/llm-obs/v2/eval-metric"
                ),
                ("/debugger/v1/input", "http-intake.logs", "/api/v2/logs"),
                ("/debugger/v2/input", "debugger-intake", "/api/v2/debugger"),
                (
                    "/debugger/v1/diagnostics",
                    "debugger-intake",
                    "/api/v2/debugger"
                ),
            ]
        );
    }

    #[test]
    fn routes_are_found_by_exact_path_and_named_uniquely() {
        for route in PROXY_ROUTES {
            assert_eq!(proxy_route(route.local_path), Some(route));
            assert_eq!(ForwardKind::Proxy(route).name(), route.name);
            assert_eq!(
                PROXY_ROUTES.iter().filter(|r| r.name == route.name).count(),
                1
            );
            assert!(route.max_body_bytes >= PROXY_BODY_LIMIT);
        }
        for path in [
            "/profiling/v1/input/",
            "/profiling/v1",
            "/evp_proxy/v2",
            "",
            "/",
        ] {
            assert_eq!(proxy_route(path), None, "{path}");
        }
        let names: Vec<&str> = [
            ForwardKind::TracerStats,
            ForwardKind::PipelineStats,
            ForwardKind::Telemetry,
        ]
        .into_iter()
        .map(ForwardKind::name)
        .collect();
        assert!(PROXY_ROUTES.iter().all(|r| !names.contains(&r.name)));
    }
}
