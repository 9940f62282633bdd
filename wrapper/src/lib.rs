//! ddlambda: Datadog tracing, X-Ray context and data streams for Rust Lambda handlers.
//!
//! ```no_run
//! use aws_lambda_events::event::sqs::SqsEvent;
//! use lambda_runtime::{Error, LambdaEvent, service_fn};
//!
//! #[ddlambda::handler]
//! async fn handler(event: LambdaEvent<SqsEvent>) -> Result<(), Error> {
//!     tracing::info!(records = event.payload.records.len(), "received");
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     ddlambda::run(service_fn(handler)).await
//! }
//! ```
//!
//! - [`handler`](macro@handler): `aws.lambda`, inferred spans for the trigger, span links for
//!   the rest of a batch, error tags on `Err` or panic; the signature is unchanged.
//! - [`run`] / [`DatadogLayer`]: the raw event bytes for extraction, spans sent after the
//!   response ([`transport`]).
//! - [`tracing_bridge::DatadogLayer`]: `tracing` spans become child spans of `aws.lambda`.

pub use ddlambda_macros::handler;
pub use ddlambda_wire as wire;
pub use lambda_runtime;

#[cfg(feature = "aws-sdk")]
pub mod aws;
pub mod config;
pub mod extract;
pub mod handler;
pub mod layer;
pub mod metrics;
pub mod spans;
pub mod streams;
pub mod tracer;
pub mod tracing_bridge;
pub mod transport;
pub mod trigger;
pub mod xray;

#[doc(hidden)]
pub use handler::__private;
pub use handler::{current, current_ids};
pub use layer::{DatadogLayer, run};
pub use spans::{Invocation, RuntimeInfo, TraceIds};
pub use tracer::Tracer;
