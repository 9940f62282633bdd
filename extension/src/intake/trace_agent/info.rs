//! `/info`: what this agent serves, in the shape tracers parse (the agent's and bottlecap's).

use ddlambda_wire::invocation::CHECKPOINTS_PATH;

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
    if checkpoints {
        endpoints.push(CHECKPOINTS_PATH);
    }
    serde_json::json!({
        "version": concat!("ddlambda-extension/", env!("CARGO_PKG_VERSION")),
        "endpoints": endpoints,
        "client_drop_p0s": true,
        "span_meta_structs": false,
        "long_running_spans": false,
        "config": {
            "default_env": "none",
            "max_request_bytes": max_body_bytes,
        },
    })
    .to_string()
}
