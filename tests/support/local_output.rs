//! Reading what the extension's local sink (`DDLAMBDA_LOCAL_OUTPUT`) wrote: one JSON object per
//! line, `{"ddlambda": "traces", "traces": [[span, …], …]}` for span batches.

use std::path::Path;

use serde_json::Value;

/// The ids of every span the local sink wrote to `file`, sorted, leaving out the spans the
/// extension made from the Telemetry API; none when the file is absent.
pub fn span_ids(file: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut ids: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["ddlambda"] == "traces")
        .flat_map(|v| {
            v["traces"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .flat_map(|t| t.as_array().cloned().unwrap_or_default())
        })
        .filter(|s| s["meta"]["_dd.ddlambda.source"] != "telemetry")
        .filter_map(|s| s["span_id"].as_u64())
        .collect();
    ids.sort_unstable();
    ids
}
