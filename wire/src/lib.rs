//! Every wire format that more than one ddlambda component speaks, defined once.
//!
//! - [`span`]: the Datadog span model and the v0.4 trace payload the wrapper sends to the
//!   extension (the same format real tracers send to `:8126`).
//! - [`context`]: the propagated trace context (what an extractor finds, what a span continues).
//! - [`trace`]: decoders for the v0.4 and v0.5 bodies tracers send to the trace agent.
//! - [`invocation`]: the small protocol between the wrapper and the extension
//!   (see `PROTOCOL.md` beside this crate).
//! - [`pathway`]: data-streams pathway hashing, the propagated pathway context, checkpoints.
//! - [`checkpoint`]: raw data-streams checkpoints the wrapper sends the extension.
//! - [`time`]: RFC 3339 timestamps (Telemetry API records, AWS events).

pub mod checkpoint;
pub mod context;
pub mod invocation;
pub mod pathway;
pub mod span;
pub mod time;
pub mod trace;

pub use context::SpanContext;
pub use span::{Span, SpanLink};
