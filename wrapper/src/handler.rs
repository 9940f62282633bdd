//! What `#[ddlambda::handler]` expands to, and the current invocation.
//!
//! # How the handler sees the event
//!
//! A macro only sees the typed payload `T`, but extraction wants the event as JSON. Three
//! cases, best first:
//!
//! 1. **`ddlambda::run(handler)`** (or `Runtime::new(..).layer(ddlambda::DatadogLayer::..)`):
//!    the [layer](crate::layer) parses the raw event bytes once, starts the invocation and
//!    makes it current (a task-local) before lambda_runtime deserializes `T`; the handler
//!    finds it and only records its outcome. The layer sends the spans after the runtime has
//!    posted the response.
//! 2. **Plain `lambda_runtime::run(service_fn(handler))`, or a direct call in a test**, with
//!    `T: Serialize`: the handler re-serializes the payload to JSON and starts the invocation
//!    itself; the spans are handed to the transport as the handler returns (a channel push —
//!    the transport sends them off the response path).
//! 3. The same with a `T` that is not `Serialize`: the event is not visible, the invocation
//!    still is. `aws.lambda` is a new root unless the Lambda `Context` parents it (X-Ray with
//!    `DD_MERGE_XRAY_TRACES`, or the client context); [`current_ids`] works; the produce hooks
//!    inject the context of `aws.lambda` and set produce checkpoints. Only what needs the
//!    event is missing: extraction from it, inferred spans, trigger tags, consume checkpoints.
//!    Derive `Serialize`, or better use case 1, to get them.
//!
//! The choice between 2 and 3 is made at compile time by autoref specialization on the
//! concrete payload type, so no bound is imposed on `T`. Errors are described the same way:
//! `Display`/`Debug` when the error type has them, its type name otherwise; and responses:
//! a `Serialize` response is read for its top-level `statusCode` only (nothing else is
//! serialized), which becomes `http.status_code` for HTTP triggers
//! ([`Invocation::respond`]).
//!
//! # Panics
//!
//! A panic inside the handler is caught, recorded on `aws.lambda` (`error.type` `panic`,
//! the message, and the location and backtrace captured by a chained panic hook), the spans
//! are handed over, and the panic is resumed: the runtime reports it as before.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::RefCell;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use futures_util::FutureExt as _;
use serde_json::Value;
use tracing::Instrument as _;

use crate::spans::status::{Status, status_of};
use crate::spans::{ErrorInfo, Invocation, RuntimeInfo, TraceIds};
use crate::tracer::Tracer;

tokio::task_local! {
    static CURRENT: Invocation;
}

/// The invocation running in this task, if any.
pub fn current() -> Option<Invocation> {
    CURRENT.try_with(Invocation::clone).ok()
}

/// The trace and span ids of the running invocation's `aws.lambda` span, for log correlation
/// (`dd.trace_id`, `dd.span_id`) and for injecting context into outgoing messages.
pub fn current_ids() -> Option<TraceIds> {
    CURRENT.try_with(Invocation::ids).ok()
}

/// Runs `fut` with `invocation` as the current one.
pub async fn scope<F: Future>(invocation: Invocation, fut: F) -> F::Output {
    CURRENT.scope(invocation, fut).await
}

/// `fut` with `invocation` current, as a nameable future (for the layer's future type).
pub(crate) fn scoped<F: Future>(
    invocation: Invocation,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Invocation, F> {
    CURRENT.scope(invocation, fut)
}

/// Calls `f` with `invocation` current (for the synchronous part of a service call).
pub(crate) fn sync_scope<R>(invocation: Invocation, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(invocation, f)
}

thread_local! {
    /// Where and how the last panic on this thread happened, for `error.stack`.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Chains a panic hook that remembers the location and backtrace of a panic (the payload
/// caught by `catch_unwind` has neither). The previous hook still runs. Installed once.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let backtrace = Backtrace::capture();
            let mut text = match info.location() {
                Some(l) => format!("panicked at {}:{}:{}", l.file(), l.line(), l.column()),
                None => "panicked".to_owned(),
            };
            if backtrace.status() == BacktraceStatus::Captured {
                text.push_str(&format!("\n{backtrace}"));
            }
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            previous(info);
        }));
    });
}

/// `error.*` tags for a caught panic payload.
pub fn panic_info(payload: &(dyn Any + Send)) -> ErrorInfo {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned());
    let location = LAST_PANIC.with(|p| p.borrow_mut().take());
    ErrorInfo {
        r#type: "panic".to_owned(),
        stack: Some(match location {
            Some(location) => format!("{location}:\n{message}"),
            None => message.clone(),
        }),
        message,
    }
}

/// A type name without module paths: `Box<dyn Error + Send + Sync>`, not
/// `alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>`.
pub fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

/// Support for the `#[ddlambda::handler]` expansion. Not a public API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub use lambda_runtime::{Context, LambdaEvent};

    /// The argument of a `#[ddlambda::handler]` function.
    #[diagnostic::on_unimplemented(
        message = "a `#[ddlambda::handler]` function takes a `lambda_runtime::LambdaEvent<T>`, not `{Self}`",
        label = "expected `LambdaEvent<T>`"
    )]
    pub trait HandlerEvent {
        type Payload;
        fn context(&self) -> &Context;
        fn payload(&self) -> &Self::Payload;
    }

    impl<T> HandlerEvent for LambdaEvent<T> {
        type Payload = T;
        fn context(&self) -> &Context {
            &self.context
        }
        fn payload(&self) -> &T {
            &self.payload
        }
    }

    /// The return type of a `#[ddlambda::handler]` function.
    #[diagnostic::on_unimplemented(
        message = "a `#[ddlambda::handler]` function returns a `Result<_, _>`, not `{Self}`",
        label = "expected `Result<_, _>`"
    )]
    pub trait HandlerResult: Sized {
        type Ok;
        type Err;
        fn into_result(self) -> Result<Self::Ok, Self::Err>;
        fn from_result(result: Result<Self::Ok, Self::Err>) -> Self;
    }
    impl<R, E> HandlerResult for Result<R, E> {
        type Ok = R;
        type Err = E;
        fn into_result(self) -> Self {
            self
        }
        fn from_result(result: Self) -> Self {
            result
        }
    }

    /// Checks the argument type where it is written, for a precise error.
    pub fn assert_event<E: HandlerEvent>() {}

    /// Pins the body's output type so `?` and `return` infer as in the original function.
    pub fn typed<R: HandlerResult, F: Future<Output = R>>(fut: F) -> F {
        fut
    }

    pub struct Payload<'a, T>(pub &'a T);

    pub trait PayloadJson {
        fn __ddlambda_json(&self) -> Option<Value>;
    }
    impl<T: serde::Serialize> PayloadJson for &Payload<'_, T> {
        fn __ddlambda_json(&self) -> Option<Value> {
            serde_json::to_value(self.0).ok()
        }
    }

    pub trait PayloadOpaque {
        fn __ddlambda_json(&self) -> Option<Value>;
    }
    impl<T> PayloadOpaque for Payload<'_, T> {
        fn __ddlambda_json(&self) -> Option<Value> {
            None
        }
    }

    pub struct Response<'a, R>(pub &'a R);

    pub trait ResponseStatus {
        fn __ddlambda_status(&self) -> Option<Status>;
    }
    impl<R: serde::Serialize> ResponseStatus for &Response<'_, R> {
        fn __ddlambda_status(&self) -> Option<Status> {
            Some(status_of(self.0))
        }
    }

    pub trait ResponseOpaque {
        fn __ddlambda_status(&self) -> Option<Status>;
    }
    impl<R> ResponseOpaque for Response<'_, R> {
        fn __ddlambda_status(&self) -> Option<Status> {
            None
        }
    }

    pub struct ErrorRef<'a, E>(pub &'a E);

    pub trait DescribeDisplay {
        fn __ddlambda_describe(&self) -> ErrorInfo;
    }
    impl<E: Display + Debug> DescribeDisplay for &ErrorRef<'_, E> {
        fn __ddlambda_describe(&self) -> ErrorInfo {
            let message = self.0.to_string();
            let debug = format!("{:?}", self.0);
            // Debug adds something (a source chain, a backtrace) only when it differs from
            // the message, plain or quoted.
            let informative = debug != message && debug != format!("{message:?}");
            ErrorInfo {
                r#type: short_type_name::<E>(),
                message,
                stack: informative.then_some(debug),
            }
        }
    }

    pub trait DescribeAny {
        fn __ddlambda_describe(&self) -> ErrorInfo;
    }
    impl<E> DescribeAny for ErrorRef<'_, E> {
        fn __ddlambda_describe(&self) -> ErrorInfo {
            ErrorInfo {
                r#type: short_type_name::<E>(),
                message: short_type_name::<E>(),
                stack: None,
            }
        }
    }

    /// One call of a decorated handler.
    pub struct Call {
        invocation: Invocation,
        /// Started here (no layer): this call also finishes it.
        owned: bool,
    }

    impl Call {
        /// Joins the invocation the layer started, or starts one from `payload`'s JSON.
        pub fn begin<E: HandlerEvent>(event: &E, payload: impl FnOnce() -> Option<Value>) -> Self {
            if let Some(invocation) = current() {
                return Self {
                    invocation,
                    owned: false,
                };
            }
            let invocation = Invocation::start(
                Tracer::global(),
                payload(),
                RuntimeInfo::from_context(event.context()),
            );
            Self {
                invocation,
                owned: true,
            }
        }

        /// Runs the handler's body inside the invocation, catching a panic.
        pub async fn run<F: Future>(&self, body: F) -> Result<F::Output, Box<dyn Any + Send>> {
            let invocation = self.invocation.clone();
            let traced = async move {
                // Created with the invocation current, so the bridge ties it to it.
                let span = tracing::info_span!(
                    target: crate::tracing_bridge::ROOT_TARGET,
                    "aws.lambda",
                    dd.trace_id = tracing::field::Empty,
                    dd.span_id = invocation.span_id(),
                );
                if !span.is_disabled() {
                    // The trace id is filled in as soon as extraction has run.
                    invocation.correlate(span.clone());
                }
                AssertUnwindSafe(body).catch_unwind().instrument(span).await
            };
            if self.owned {
                scope(self.invocation.clone(), traced).await
            } else {
                traced.await
            }
        }

        /// The handler returned `Ok` with a response of this status, if it could be read.
        pub fn ok(self, status: Option<Status>) {
            self.invocation.end();
            if let Some(status) = status {
                self.invocation.respond(status);
            }
            self.done();
        }

        /// The handler returned `Err`.
        pub fn err(self, error: ErrorInfo) {
            self.invocation.end();
            self.invocation.fail(&error);
            self.done();
        }

        /// The handler panicked: report, hand the spans over, and resume the panic.
        pub fn panicked(self, payload: Box<dyn Any + Send>) -> ! {
            self.invocation.end();
            self.invocation.fail(&panic_info(payload.as_ref()));
            self.done();
            std::panic::resume_unwind(payload)
        }

        fn done(self) {
            if !self.owned {
                return; // the layer finishes after the response is posted
            }
            // Without the layer the response is not posted yet: finish beside it rather than
            // before it (the extension waits for the end signal, so nothing is lost).
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    let invocation = self.invocation;
                    handle.spawn(async move { invocation.finish() });
                }
                Err(_) => self.invocation.finish(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_type_names() {
        assert_eq!(
            short_type_name::<Box<dyn std::error::Error + Send + Sync>>(),
            "Box<dyn Error + Send + Sync>"
        );
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(short_type_name::<Vec<String>>(), "Vec<String>");
    }

    #[test]
    #[allow(clippy::needless_borrow)] // autoref specialization needs the `&&`
    fn errors_are_described_by_what_they_implement() {
        use __private::*;
        struct Opaque;
        let e = std::io::Error::other("disk full");
        let info = (&&ErrorRef(&e)).__ddlambda_describe();
        assert_eq!(info.r#type, "Error");
        assert_eq!(info.message, "disk full");
        assert!(info.stack.is_some_and(|s| s.contains("Other")));
        let info = (&&ErrorRef(&"plain".to_owned())).__ddlambda_describe();
        assert_eq!((info.message.as_str(), info.stack), ("plain", None));
        let info = (&&ErrorRef(&Opaque)).__ddlambda_describe();
        assert_eq!(info.message, "Opaque");
    }

    #[test]
    #[allow(clippy::needless_borrow)]
    fn payloads_serialize_when_they_can() {
        use __private::*;
        struct Opaque;
        assert_eq!(
            (&&Payload(&vec![1])).__ddlambda_json(),
            Some(serde_json::json!([1]))
        );
        assert_eq!((&&Payload(&Opaque)).__ddlambda_json(), None);
    }
}
