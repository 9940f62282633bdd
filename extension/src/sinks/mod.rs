//! Destinations. A sink encodes an [`Outgoing`] in its own format and sends it; it knows
//! nothing of listeners or flush timing. Retries, budgets and carry-over belong to `flush`.
//!
//! A sink may have several destinations ([`Sink::routes`]): the OTLP fan-out sends traces and
//! metrics to an OTLP receiver and the rest (or everything, when a Datadog API key is set too)
//! to the Datadog or the local sink. The flusher sends, retries and carries an item once per
//! destination, so a failure at one never re-sends what another already accepted.

pub mod datadog;
pub mod local;
pub mod otlp;

use std::future::Future;
use std::time::Duration;

use crate::event::Outgoing;

/// Why one send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt: connection error, timeout, 408, 429, 5xx.
    #[error("{0}")]
    Retryable(String),
    /// Worth another attempt, but not before `after` (the destination's `Retry-After`); a
    /// wait longer than the flush's budget carries the item over to the next flush.
    #[error("{message} (retry after {} ms)", after.as_millis())]
    RetryAfter { message: String, after: Duration },
    /// The destination refused this item for good (other 4xx, an unencodable body).
    #[error("{0}")]
    Rejected(String),
}

/// One of a sink's destinations (0 for a sink with one).
pub type Route = u8;

/// The destinations an item goes to: a small set of [`Route`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes(u8);

impl Routes {
    /// The only destination of a plain sink.
    pub const ONE: Routes = Routes(1);

    /// A set of routes, each below 8.
    pub fn of(routes: &[Route]) -> Routes {
        Routes(routes.iter().fold(0, |set, r| set | 1 << r))
    }

    pub fn iter(self) -> impl Iterator<Item = Route> {
        (0..8).filter(move |r| self.0 & 1 << r != 0)
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl SendError {
    /// A retryable answer, held back by its `Retry-After` header when it has one.
    pub(crate) fn retryable(message: String, headers: &http::HeaderMap) -> Self {
        match retry_after(headers, std::time::SystemTime::now()) {
            Some(after) => Self::RetryAfter { message, after },
            None => Self::Retryable(message),
        }
    }

    /// A request that got no response. One that could not be built (e.g. a tracer header that
    /// is not a valid header value) is refused for good; anything else is worth another
    /// attempt. reqwest's error text names the URL, never the headers: no credential leaks.
    pub(crate) fn from_request(url: &str, e: &reqwest::Error) -> Self {
        let text = format!("POST {url}: {}", crate::error_chain(e));
        if e.is_builder() {
            Self::Rejected(text)
        } else {
            Self::Retryable(text)
        }
    }
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

    /// The destinations `item` goes to; the flusher sends it to each with [`Sink::send_to`],
    /// retrying and carrying each on its own. Never empty.
    fn routes(&self, _item: &Outgoing) -> Routes {
        Routes::ONE
    }

    /// Sends `item` to one destination of [`Sink::routes`].
    fn send_to(
        &self,
        _route: Route,
        item: &Outgoing,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), SendError>> + Send {
        self.send(item, timeout)
    }
}

/// The sink chosen by configuration.
pub enum AnySink {
    /// The Datadog or the local sink, alone.
    Alone(Beside),
    Otlp(OtlpFanOut),
}

/// A sink that is not OTLP: alone, or beside OTLP in an [`OtlpFanOut`].
pub enum Beside {
    Datadog(datadog::DatadogSink),
    Local(local::LocalSink),
}

impl Beside {
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

    fn name(&self) -> &'static str {
        match self {
            Self::Datadog(_) => "the Datadog intake",
            Self::Local(_) => "the local sink",
        }
    }
}

impl From<Beside> for AnySink {
    fn from(sink: Beside) -> Self {
        Self::Alone(sink)
    }
}

/// OTLP for traces and metrics beside the Datadog or the local sink (`rest`).
pub struct OtlpFanOut {
    otlp: otlp::OtlpSink,
    rest: Beside,
    /// `rest` gets traces and metrics too (it is the Datadog intake, not the local sink).
    mirror: bool,
}

impl OtlpFanOut {
    const OTLP: Route = 0;
    const REST: Route = 1;

    /// `rest` takes what OTLP cannot carry, and what it can too when it is the Datadog intake
    /// (both are configured: both get traces and metrics).
    pub fn new(otlp: otlp::OtlpSink, rest: Beside) -> Self {
        let mirror = matches!(rest, Beside::Datadog(_));
        Self { otlp, rest, mirror }
    }

    fn routes(&self, item: &Outgoing) -> Routes {
        match (self.otlp.carries(item), self.mirror) {
            (true, true) => Routes::of(&[Self::OTLP, Self::REST]),
            (true, false) => Routes::of(&[Self::OTLP]),
            (false, _) => Routes::of(&[Self::REST]),
        }
    }

    async fn send_to(
        &self,
        route: Route,
        item: &Outgoing,
        timeout: Duration,
    ) -> Result<(), SendError> {
        if route == Self::OTLP {
            self.otlp.send(item, timeout).await
        } else {
            self.rest.send(item, timeout).await
        }
    }
}

impl AnySink {
    /// What goes where, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Self::Alone(Beside::Datadog(_)) => "Datadog".to_owned(),
            Self::Alone(Beside::Local(_)) => "local".to_owned(),
            Self::Otlp(f) => format!(
                "{}; {} {}",
                f.otlp.describe(),
                if f.mirror {
                    "everything, traces and metrics too, to"
                } else {
                    "what OTLP cannot carry (data-streams stats, tracer stats, tracer telemetry) to"
                },
                f.rest.name()
            ),
        }
    }
}

impl Sink for AnySink {
    async fn send(&self, item: &Outgoing, timeout: Duration) -> Result<(), SendError> {
        match self {
            Self::Alone(s) => s.send(item, timeout).await,
            // Not through the flusher (which routes): every destination in turn.
            Self::Otlp(f) => {
                for route in f.routes(item).iter() {
                    f.send_to(route, item, timeout).await?;
                }
                Ok(())
            }
        }
    }

    fn warm_up(&self) {
        match self {
            Self::Alone(s) => s.warm_up(),
            Self::Otlp(f) => {
                f.otlp.warm_up();
                f.rest.warm_up();
            }
        }
    }

    fn routes(&self, item: &Outgoing) -> Routes {
        match self {
            Self::Otlp(f) => f.routes(item),
            Self::Alone(_) => Routes::ONE,
        }
    }

    async fn send_to(
        &self,
        route: Route,
        item: &Outgoing,
        timeout: Duration,
    ) -> Result<(), SendError> {
        match self {
            Self::Otlp(f) => f.send_to(route, item, timeout).await,
            Self::Alone(s) => s.send(item, timeout).await,
        }
    }
}

/// A `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, which is read
/// against `now` (a date already past means no wait). `None` when absent or malformed.
pub(crate) fn retry_after(
    headers: &http::HeaderMap,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ForwardKind, ForwardPayload, TraceBatch};
    use otlp::{OtlpConfig, OtlpSink, config::SignalConfig};

    fn otlp(traces: bool, metrics: bool) -> OtlpSink {
        let signal = |on: bool| {
            on.then(|| SignalConfig {
                url: "http://127.0.0.1:9/v1/x".into(),
                headers: Vec::new(),
                gzip: false,
                timeout: Duration::from_secs(1),
            })
        };
        OtlpSink::new(OtlpConfig {
            traces: signal(traces),
            metrics: signal(metrics),
        })
    }

    fn datadog() -> Beside {
        Beside::Datadog(datadog::DatadogSink::new(datadog::DatadogConfig {
            api_key: "k".into(),
            trace_base: "http://127.0.0.1:9".into(),
            telemetry_base: "http://127.0.0.1:9".into(),
            metrics_base: "http://127.0.0.1:9".into(),
            env: String::new(),
        }))
    }

    fn items() -> [Outgoing; 3] {
        [
            Outgoing::Traces(TraceBatch::default()),
            Outgoing::Series(Default::default()),
            Outgoing::Forward(ForwardPayload {
                kind: ForwardKind::TracerStats,
                path: "/v0.6/stats".into(),
                headers: Vec::new(),
                body: bytes::Bytes::new(),
                request_id: None,
            }),
        ]
    }

    fn routes_of(sink: &AnySink) -> Vec<Vec<Route>> {
        items()
            .iter()
            .map(|i| sink.routes(i).iter().collect())
            .collect()
    }

    #[test]
    fn otlp_beside_datadog_mirrors_and_beside_local_takes_only_the_rest() {
        let both = AnySink::Otlp(OtlpFanOut::new(otlp(true, true), datadog()));
        // Traces and series to both; a forwarded body only to Datadog.
        assert_eq!(routes_of(&both), [vec![0, 1], vec![0, 1], vec![1]]);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let local = Beside::Local(local::LocalSink::new(path.to_str()).unwrap());
        let alone = AnySink::Otlp(OtlpFanOut::new(otlp(true, false), local));
        // No metrics endpoint: series go where they would without OTLP.
        assert_eq!(routes_of(&alone), [vec![0], vec![1], vec![1]]);
        assert!(
            alone.describe().contains("local sink"),
            "{}",
            alone.describe()
        );

        let plain: AnySink = datadog().into();
        assert_eq!(routes_of(&plain), [vec![0], vec![0], vec![0]]);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        use std::time::{Duration, UNIX_EPOCH};
        let now = UNIX_EPOCH + Duration::from_secs(1_784_000_000);
        let header = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::RETRY_AFTER, v.parse().expect("header value"));
            h
        };
        assert_eq!(
            retry_after(&header("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_after(&header(" 0 "), now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&header(&later), now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&header(&past), now), Some(Duration::ZERO));
        for bad in ["-1", "soon", "1.5"] {
            assert_eq!(retry_after(&header(bad), now), None, "{bad}");
        }
        assert_eq!(retry_after(&http::HeaderMap::new(), now), None);
    }
}
