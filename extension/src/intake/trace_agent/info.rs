//! `/info`: what this agent serves, in the shape tracers parse (the agent's and bottlecap's).

use ddlambda_wire::invocation::CHECKPOINTS_PATH;

use crate::event::PROXY_ROUTES;

/// The `/info` body. Tracers read `endpoints` to pick a protocol and `client_drop_p0s` to
/// decide whether to compute APM stats themselves (libdatadog, under ddtrace 4.x, computes them
/// only when it is true and `/v0.6/stats` is listed) and then drop unsampled traces. Both ways
/// count every span once: a tracer that computes stats says so
/// (`Datadog-Client-Computed-Stats`), its traces are marked `_dd.compute_stats: 0` and its stats
/// are forwarded; the others' traces ask the backend to compute (`_dd.compute_stats: 1`).
pub(super) fn body(checkpoints: bool, max_body_bytes: usize) -> String {
    let mut endpoints = vec![
        "/v0.4/traces",
        "/v0.5/traces",
        "/v0.6/stats",
        "/v0.1/pipeline_stats",
        "/telemetry/proxy/",
        "/info",
    ];
    // Tracers look here before they send: ddtrace's LLMObs goes agentless unless an entry
    // contains `/evp_proxy/v2`, its debugger uploads only when `/debugger/v2/input` (or the
    // `/debugger/v1/diagnostics` fallback) is listed.
    endpoints.extend(PROXY_ROUTES.iter().map(|r| r.local_path));
    if checkpoints {
        endpoints.push(CHECKPOINTS_PATH);
    }
    serde_json::json!({
        "version": concat!("ddlambda-extension/", env!("CARGO_PKG_VERSION")),
        "endpoints": endpoints,
        "client_drop_p0s": true,
        // Spans' `meta_struct` is kept and sent on (ddtrace's LLMObs events ride there); a
        // tracer told otherwise strips it before sending.
        "span_meta_structs": true,
        "long_running_spans": false,
        "config": {
            "default_env": "none",
            "max_request_bytes": max_body_bytes,
        },
    })
    .to_string()
}
