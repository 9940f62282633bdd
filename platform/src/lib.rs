//! A local AWS Lambda platform: runs a function executable and extension executables as
//! child processes exactly as Lambda would, serving the Runtime, Extensions and Telemetry APIs
//! on one loopback port.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ddlambda_platform::PlatformError> {
//! use ddlambda_platform::{InvokeOptions, Platform};
//! let platform = Platform::builder()
//!     .function("target/debug/my-function")
//!     .extension("target/debug/datadog-agent")
//!     .memory_mb(128)
//!     .timeout(std::time::Duration::from_secs(3))
//!     .build()
//!     .await?;
//! let result = platform.invoke(&b"{}"[..], InvokeOptions::default()).await?;
//! println!("{}", result.report);
//! platform.shutdown(ddlambda_platform::ShutdownReason::Spindown).await;
//! # Ok(()) }
//! ```
//!
//! Rules followed (see `lambda-platform.md` and AWS's Extensions API documentation): init ends
//! when the runtime and every extension have called `/next`; an invocation ends when the runtime
//! has answered and every INVOKE extension has called `/next` again; the function timeout covers
//! both; a timeout, crash or out-of-memory kill resets the sandbox (SHUTDOWN with reason
//! `timeout` or `failure`, then a cold start); SHUTDOWN gives extensions a 2000 ms budget, after
//! which whatever is still alive is killed.

mod api;
mod config;
mod error;
mod ids;
mod platform;
mod process;
mod result;
mod sandbox;
mod telemetry;
mod timeline;

pub use config::{
    Config, Echo, Faults, PlatformBuilder, ShutdownPoint, ShutdownReason, TelemetryFaults,
};
pub use error::PlatformError;
pub use platform::Platform;
pub use result::{FunctionError, InitReport, InvokeOptions, InvokeResult, Outcome, Report, Status};
pub use timeline::{Actor, EventKind, ExtensionEventKind, Timeline, TimelineEvent};
