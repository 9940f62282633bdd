//! The wrapper ↔ extension protocol: what the wrapper adds on top of the trace agent's own
//! language. `PROTOCOL.md` beside this crate is the prose contract; this module is its code.

use serde::{Deserialize, Serialize};

/// Default address of the extension's trace agent, where every route below is served.
pub const DEFAULT_AGENT_ADDR: &str = "127.0.0.1:8126";

/// `POST`, once at wrapper init: "this runtime sends an end-of-invocation signal for every
/// request". Body: [`Hello`].
pub const HELLO_PATH: &str = "/ddlambda/v1/hello";
/// `POST`, once per invocation, off the response path. Body: [`InvocationStart`].
pub const START_PATH: &str = "/ddlambda/v1/invocation/start";
/// `POST`, raw data-streams checkpoints for one request (msgpack, see the checkpoint format).
pub const CHECKPOINTS_PATH: &str = "/ddlambda/v1/checkpoints";
/// `POST`, an end-of-invocation signal with nothing else to carry. Body: [`InvocationEnd`].
pub const END_PATH: &str = "/ddlambda/v1/invocation/end";

/// The request id the payload belongs to. On `/v0.4/traces` it makes the extension hold the
/// spans for that invocation's flush.
pub const REQUEST_ID_HEADER: &str = "ddlambda-request-id";
/// Present (value `1`) on the last request the wrapper sends for a request id: the runtime is
/// done with that invocation and nothing more will come for it.
pub const INVOCATION_END_HEADER: &str = "ddlambda-invocation-end";

/// Body of [`HELLO_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Who is speaking, e.g. `ddlambda-rust`.
    pub runtime: String,
    /// The wrapper's version.
    pub version: String,
}

/// Body of [`START_PATH`]: the context the wrapper's `aws.lambda` span has, so that the
/// extension can still produce a correctly parented span if the runtime dies (timeout, crash,
/// out of memory) before sending its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationStart {
    pub request_id: String,
    /// Low 64 bits of the trace id of `aws.lambda`.
    pub trace_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id_high: Option<u64>,
    /// The span id of `aws.lambda`.
    pub span_id: u64,
    /// The parent of `aws.lambda` (0 for a root).
    #[serde(default)]
    pub parent_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_priority: Option<i32>,
    /// Start of `aws.lambda`, nanoseconds since the Unix epoch.
    pub start_ns: i64,
    #[serde(default)]
    pub cold_start: bool,
}

/// Body of [`END_PATH`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationEnd {
    pub request_id: String,
}
