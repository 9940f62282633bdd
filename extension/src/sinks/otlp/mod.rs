//! The OTLP sink: traces and metrics over OTLP/HTTP with protobuf bodies, configured by the
//! standard `OTEL_EXPORTER_OTLP_*` variables (`config`).
//!
//! Encodings are written directly (`proto`, `traces`, `metrics`, `resource`), not through
//! generated types: the layer's size budget has no room for a second protobuf model, and the
//! tests decode every body with the OpenTelemetry project's own `opentelemetry-proto` types.
//! What OTLP cannot carry (data-streams pipeline stats, forwarded tracer stats and telemetry)
//! is not this sink's: `AnySink`'s routing sends it to the Datadog or the local sink.

pub mod config;
mod http;
pub mod metrics;
mod proto;
pub mod resource;
pub mod traces;

use std::time::Duration;

use super::{SendError, Sink};
use crate::event::Outgoing;
pub use config::{OtlpConfig, OtlpConfigError};

/// Exports traces and metrics to an OTLP/HTTP receiver.
pub struct OtlpSink {
    config: OtlpConfig,
    client: http::Client,
}

impl OtlpSink {
    pub fn new(config: OtlpConfig) -> Self {
        Self {
            config,
            client: http::Client::default(),
        }
    }

    /// Whether `item` is one this sink exports: traces, or metrics, with an endpoint for them.
    pub fn carries(&self, item: &Outgoing) -> bool {
        match item {
            Outgoing::Traces(_) => self.config.traces.is_some(),
            Outgoing::Series(_) | Outgoing::Sketches(_) => self.config.metrics.is_some(),
            Outgoing::Forward(_) | Outgoing::PipelineStats(_) => false,
        }
    }

    /// One line for the start-up log: where each signal goes.
    pub fn describe(&self) -> String {
        let url = |s: &Option<config::SignalConfig>| {
            s.as_ref()
                .map_or("not exported".to_owned(), |s| s.url.clone())
        };
        format!(
            "OTLP/HTTP traces → {}, metrics → {}",
            url(&self.config.traces),
            url(&self.config.metrics)
        )
    }
}

impl Sink for OtlpSink {
    async fn send(&self, item: &Outgoing, timeout: Duration) -> Result<(), SendError> {
        let unsupported = || {
            SendError::Rejected(format!(
                "the OTLP sink is not configured for {}",
                item.kind_name()
            ))
        };
        match item {
            Outgoing::Traces(batch) => {
                let signal = self.config.traces.as_ref().ok_or_else(unsupported)?;
                let body = traces::encode(batch);
                self.client.export(signal, body, timeout, "spans").await
            }
            Outgoing::Series(batch) => {
                let signal = self.config.metrics.as_ref().ok_or_else(unsupported)?;
                let body = metrics::encode_series(batch);
                self.client
                    .export(signal, body, timeout, "data points")
                    .await
            }
            Outgoing::Sketches(batch) => {
                let signal = self.config.metrics.as_ref().ok_or_else(unsupported)?;
                let body = metrics::encode_sketches(batch);
                self.client
                    .export(signal, body, timeout, "data points")
                    .await
            }
            Outgoing::Forward(_) | Outgoing::PipelineStats(_) => Err(unsupported()),
        }
    }

    fn warm_up(&self) {
        self.client.warm_up();
    }
}
