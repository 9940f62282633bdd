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
