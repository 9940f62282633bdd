//! Reading what the extension's local sink (`DDLAMBDA_LOCAL_OUTPUT`) wrote: one JSON object per
//! line, `{"ddlambda": "traces", "traces": [[span, …], …]}` for span batches.

use std::path::Path;

use serde_json::Value;

/// Every span the local sink wrote to `file`, in the order written; none when the file is
/// absent.
pub fn spans(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
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
        .collect()
}

/// The ids of every span the local sink wrote to `file`, sorted, leaving out the spans the
/// extension made from the Telemetry API; none when the file is absent.
pub fn span_ids(file: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = spans(file)
        .iter()
        .filter(|s| s["meta"]["_dd.ddlambda.source"] != "telemetry")
        .filter_map(|s| s["span_id"].as_u64())
        .collect();
    ids.sort_unstable();
    ids
}

/// An id field of a written span as a number, whether written as a JSON number or a string;
/// 0 when it is neither.
pub fn id(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}
