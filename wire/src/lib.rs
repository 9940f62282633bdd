//! Every wire format that more than one ddlambda component speaks, defined once.
//!
//! - [`span`]: the Datadog span model and the v0.4 trace payload the wrapper sends to the
//!   extension (the same format real tracers send to `:8126`).
//! - [`context`]: the propagated trace context (what an extractor finds, what a span continues).
//! - [`invocation`]: the small protocol between the wrapper and the extension
//!   (see `PROTOCOL.md` beside this crate).

pub mod context;
pub mod invocation;
pub mod span;

pub use context::SpanContext;
pub use span::{Span, SpanLink};
