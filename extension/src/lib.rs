//! The ddlambda Lambda extension as a library: the `datadog-agent` binary wires these parts,
//! and benches and tests drive them directly.
//!
//! Data flows one way: listeners (`intake`) → [`buffer`] / `aggregate` → [`flush`] → [`sinks`],
//! driven by the [`lifecycle`].

pub mod aggregate;
pub mod buffer;
pub mod config;
pub mod enhanced;
pub mod event;
pub mod flush;
pub mod intake;
pub mod lifecycle;
pub mod secrets;
pub mod sinks;

/// An error and its sources on one line: reqwest's own text ("error sending request") says
/// little without the cause beneath it.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
