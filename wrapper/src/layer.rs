//! The tower layer over `lambda_runtime`: it sees the raw event bytes and the invocation
//! headers before the payload is deserialized, starts the invocation, and sends its spans
//! after the runtime has posted the response.
//!
//! ```no_run
//! # async fn handler(e: lambda_runtime::LambdaEvent<serde_json::Value>) -> Result<(), lambda_runtime::Error> { Ok(()) }
//! # async fn example() -> Result<(), lambda_runtime::Error> {
//! use lambda_runtime::{Runtime, layers::TracingLayer, service_fn};
//! Runtime::new(service_fn(handler))
//!     .layer(TracingLayer::new())
//!     .layer(ddlambda::DatadogLayer::new(ddlambda::Tracer::global().clone()))
//!     .run()
//!     .await
//! # }
//! ```
//!
//! Without `#[ddlambda::handler]` on the handler, the layer cannot see its result: spans are
//! timed and parented, but an `Err` is not tagged on `aws.lambda`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use lambda_runtime::{
    Diagnostic, IntoFunctionResponse, LambdaEvent, LambdaInvocation, Runtime, Service,
};
use serde::{Deserialize, Serialize};
use tokio::task::futures::TaskLocalFuture;

use crate::spans::{Invocation, RuntimeInfo};
use crate::tracer::Tracer;

/// Wraps a `lambda_runtime` service with Datadog tracing.
#[derive(Clone)]
pub struct DatadogLayer {
    tracer: Tracer,
}

impl DatadogLayer {
    pub fn new(tracer: Tracer) -> Self {
        Self { tracer }
    }
}

impl<S> tower::Layer<S> for DatadogLayer {
    type Service = DatadogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DatadogService {
            inner,
            tracer: self.tracer.clone(),
        }
    }
}

/// The service [`DatadogLayer`] makes.
#[derive(Clone)]
pub struct DatadogService<S> {
    inner: S,
    tracer: Tracer,
}

impl<S> Service<LambdaInvocation> for DatadogService<S>
where
    S: Service<LambdaInvocation, Response = ()>,
{
    type Response = ();
    type Error = S::Error;
    type Future = DatadogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: LambdaInvocation) -> Self::Future {
        // The bytes are shared, not copied; they are parsed off the response path.
        let invocation = Invocation::start(
            &self.tracer,
            request.body.clone(),
            RuntimeInfo::from_context(&request.context),
        );
        let inner = &mut self.inner;
        let fut = crate::handler::sync_scope(invocation.clone(), || inner.call(request));
        DatadogFuture {
            inner: Box::pin(crate::handler::scoped(invocation.clone(), fut)),
            invocation: Some(invocation),
        }
    }
}

/// The future of [`DatadogService`]: the inner service's, with the invocation current; when
/// it completes (the response is posted), the spans leave.
pub struct DatadogFuture<F: Future> {
    inner: Pin<Box<TaskLocalFuture<Invocation, F>>>,
    invocation: Option<Invocation>,
}

impl<F: Future> Future for DatadogFuture<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let output = std::task::ready!(self.inner.as_mut().poll(cx));
        if let Some(invocation) = self.invocation.take() {
            invocation.finish();
        }
        Poll::Ready(output)
    }
}

/// Runs `handler` on `lambda_runtime` with Datadog tracing: like `lambda_runtime::run`, plus
/// the [`DatadogLayer`] (outermost, so it sees the raw event) and the wrapper's hello to the
/// extension before the first invocation.
pub async fn run<A, F, R, B, S, D, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + std::fmt::Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S>,
    B: Serialize,
    S: futures_util::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<lambda_runtime::Error> + Send + std::fmt::Debug,
{
    let tracer = Tracer::global().clone();
    tracer.transport().ready().await;
    Runtime::new(handler)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(DatadogLayer::new(tracer))
        .run()
        .await
}
