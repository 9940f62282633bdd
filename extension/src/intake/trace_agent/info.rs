//! `/info`: what this agent serves, in the shape tracers parse (the agent's and bottlecap's).

use ddlambda_wire::invocation::CHECKPOINTS_PATH;

/// The `/info` body. Tracers read `endpoints` to pick a protocol (ddtrace computes client
/// stats only once `/v0.6/stats` is listed) and `client_drop_p0s` to decide whether they may
/// drop unsampled traces themselves: false here, because the backend computes APM stats from
/// the spans this agent forwards (`_dd.compute_stats`), unsampled ones included; a tracer that
/// dropped them would make those stats undercount.
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
        "client_drop_p0s": false,
        "span_meta_structs": false,
        "long_running_spans": false,
        "config": {
            "default_env": "none",
            "max_request_bytes": max_body_bytes,
        },
    })
    .to_string()
}
