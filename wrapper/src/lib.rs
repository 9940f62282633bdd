//! ddlambda: Datadog tracing, X-Ray context and data streams for Rust Lambda handlers.

pub use ddlambda_macros::handler;
pub use ddlambda_wire as wire;
