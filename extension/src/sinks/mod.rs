//! Destinations. A sink encodes an [`Outgoing`] in its own format and sends it; it knows
//! nothing of listeners or flush timing. Retries, budgets and carry-over belong to `flush`.

pub mod datadog;
pub mod local;

use std::future::Future;
use std::time::Duration;

use crate::event::Outgoing;

/// Why one send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt: connection error, timeout, 408, 429, 5xx.
    #[error("{0}")]
    Retryable(String),
    /// The destination refused this item for good (other 4xx, an unencodable body).
    #[error("{0}")]
    Rejected(String),
}

/// A destination for flushed items.
pub trait Sink: Send + Sync + 'static {
    /// Sends one item, giving up after `timeout`.
    fn send(
        &self,
        item: &Outgoing,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), SendError>> + Send;

    /// Prepares what the first send would otherwise pay for (TLS roots, client). Called off
    /// the init critical path.
    fn warm_up(&self) {}
}

/// The sink chosen by configuration.
pub enum AnySink {
    Datadog(datadog::DatadogSink),
    Local(local::LocalSink),
}

impl Sink for AnySink {
    async fn send(&self, item: &Outgoing, timeout: Duration) -> Result<(), SendError> {
        match self {
            Self::Datadog(s) => s.send(item, timeout).await,
            Self::Local(s) => s.send(item, timeout).await,
        }
    }

    fn warm_up(&self) {
        match self {
            Self::Datadog(s) => s.warm_up(),
            Self::Local(s) => s.warm_up(),
        }
    }
}
