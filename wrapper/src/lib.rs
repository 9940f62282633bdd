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
//!     ddlambda::tracing_bridge::init_default_subscriber(); // logs with dd ids, spans
//!     ddlambda::run(service_fn(handler)).await
//! }
//! ```
//!
//! Supported setups, best first:
//! 1. **[`handler`](macro@handler) + [`run`]** (above): the raw event bytes for extraction
//!    (no re-serialization, any payload type), spans sent after the response ([`transport`]).
//! 2. **[`handler`](macro@handler) + your own `lambda_runtime::Runtime`** with
//!    [`DatadogLayer`] as its outermost layer: the same, beside layers of your own.
//! 3. **[`handler`](macro@handler) alone** (`lambda_runtime::run`, or a direct call in a
//!    test): the payload is re-serialized for extraction when it is `Serialize`; otherwise
//!    only the Lambda context (X-Ray, client context) parents the trace ([details](mod@handler)).
//!
//! The macro gives `aws.lambda`, inferred spans, span links and error tags (on `Err` or
//! panic); [`tracing_bridge`] turns `tracing` spans into its children.

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
