//! The spans the wrapper writes: `aws.lambda`, the inferred spans of the trigger, span links
//! to the other producers of a batch, and the invocation that ties them together.

pub mod aws_lambda;
pub mod ids;
pub mod inferred;
pub mod invocation;
pub mod links;
pub mod pointers;
pub mod status;

pub use aws_lambda::ErrorInfo;
pub use invocation::{EventInput, Invocation, RuntimeInfo, TraceIds};
