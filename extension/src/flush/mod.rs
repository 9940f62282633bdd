//! Flushing: take what is ready (buffer, aggregators, last flush's failures), cut it into
//! requests, send them concurrently with retries inside the budget, carry what still
//! failed to the next flush, and count everything that could not be delivered.

pub mod enrich;
pub mod retry;
pub mod stats;
pub mod strategy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::aggregate::metrics::MetricsAggregator;
use crate::buffer::{Buffer, HeldItem, Scope};
use crate::event::{Drain, Outgoing, TraceBatch};
use crate::sinks::{Route, Sink};
use enrich::FunctionTags;
use retry::{Outcome, RetryPolicy};
use stats::Counters;

/// Upper bound on one trace request, in estimated bytes (the intake takes 12 MB after
/// enrichment; this leaves room for the tags).
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Requests in flight at once during a flush.
const CONCURRENCY: usize = 8;

/// What a flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub sent_requests: u64,
    pub sent_spans: u64,
    pub carried_requests: u64,
    pub carried_spans: u64,
    pub rejected_requests: u64,
    pub lost_requests: u64,
    pub lost_spans: u64,
}

/// Why a flush runs, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    EndOfInvocation,
    Invoke,
    Background,
    Shutdown,
}

/// An item for one of the sink's destinations; kept when a flush could not deliver it.
struct Carried {
    item: Outgoing,
    bytes: usize,
    /// Which of the sink's destinations (`Sink::routes`) this copy is for.
    route: Route,
}

/// The flusher. One per extension; flushes never overlap.
pub struct Flusher<S: Sink> {
    buffer: Arc<Buffer>,
    sink: S,
    drains: Vec<Arc<dyn Drain>>,
    /// The function tags (`k:v,...`) of the extension's own metrics.
    metric_tags: String,
    counters: Arc<Counters>,
    policy: RetryPolicy,
    carry: Mutex<Vec<Carried>>,
    carry_cap: usize,
    last_flush: Mutex<Option<Instant>>,
    running: tokio::sync::Mutex<()>,
    /// SHUTDOWN's deadline once known: caps every flush, including one already running.
    cap: watch::Sender<Option<Instant>>,
    /// Where the counters go as extension metrics, and what was last reported.
    loss_metrics: Option<Arc<MetricsAggregator>>,
    reported: Mutex<(stats::Snapshot, stats::DogStatsdSnapshot)>,
}

impl<S: Sink> Flusher<S> {
    pub fn new(
        buffer: Arc<Buffer>,
        sink: S,
        tags: FunctionTags,
        counters: Arc<Counters>,
        policy: RetryPolicy,
    ) -> Self {
        let carry_cap = buffer.cap();
        let metric_tags: Vec<String> = tags
            .pairs()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        Self {
            buffer,
            sink,
            drains: Vec::new(),
            metric_tags: metric_tags.join(","),
            counters,
            policy,
            carry: Mutex::new(Vec::new()),
            carry_cap,
            last_flush: Mutex::new(None),
            running: tokio::sync::Mutex::new(()),
            cap: watch::Sender::new(None),
            loss_metrics: None,
            reported: Mutex::new(Default::default()),
        }
    }

    /// Reports the counters as `ddlambda.extension.*` counts through `metrics` at every flush
    /// (what changed since the previous one; a flush's own losses go with the next flush, and
    /// SHUTDOWN's are only logged).
    pub fn with_loss_metrics(mut self, metrics: Arc<MetricsAggregator>) -> Self {
        self.loss_metrics = Some(metrics);
        self
    }

    /// Adds an aggregator drained at every flush.
    pub fn with_drain(mut self, drain: Arc<dyn Drain>) -> Self {
        self.drains.push(drain);
        self
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// From now on no flush runs past `deadline` (SHUTDOWN); a flush in progress is cut short
    /// and carries what it could not send to the final flush.
    pub fn cap_deadline(&self, deadline: Instant) {
        self.cap.send_replace(Some(deadline));
    }

    /// Time since the last flush finished (`None` before the first).
    pub fn since_last_flush(&self) -> Option<Duration> {
        lock(&self.last_flush).map(|t| t.elapsed())
    }

    /// Items waiting from failed flushes.
    pub fn carried(&self) -> usize {
        lock(&self.carry).len()
    }

    /// Flushes what `scope` allows, inside `deadline`. With `final_flush` (SHUTDOWN) the
    /// aggregators give up their open buckets and whatever fails is counted as lost.
    pub async fn flush(
        &self,
        trigger: Trigger,
        scope: Scope,
        deadline: Instant,
        final_flush: bool,
    ) -> FlushReport {
        let _one_at_a_time = self.running.lock().await;
        let started = Instant::now();
        let items = self.collect(scope, final_flush);
        if items.is_empty() {
            *lock(&self.last_flush) = Some(Instant::now());
            return FlushReport::default();
        }

        let policy = self.policy;
        let counters = &self.counters;
        let sink = &self.sink;
        let cap = &self.cap;
        let outcomes: Vec<(Carried, Outcome)> = futures_util::stream::iter(items)
            .map(|c| async move {
                let outcome = retry::send_to(
                    sink,
                    c.route,
                    &c.item,
                    deadline,
                    cap.subscribe(),
                    &policy,
                    counters,
                )
                .await;
                (c, outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;

        let mut report = FlushReport::default();
        let mut failed = Vec::new();
        for (c, outcome) in outcomes {
            let spans = c.item.span_count();
            match outcome {
                Outcome::Sent => {
                    report.sent_requests += 1;
                    report.sent_spans += spans;
                }
                Outcome::Rejected(e) => {
                    report.rejected_requests += 1;
                    Counters::add(&counters.rejected_requests, 1);
                    Counters::add(&counters.rejected_spans, spans);
                    tracing::warn!(
                        kind = c.item.kind_name(),
                        spans,
                        "intake refused a request, dropped: {e}"
                    );
                }
                Outcome::Failed(e) if final_flush => {
                    report.lost_requests += 1;
                    report.lost_spans += spans;
                    Counters::add(&counters.lost_at_shutdown_requests, 1);
                    Counters::add(&counters.lost_at_shutdown_spans, spans);
                    tracing::warn!(
                        kind = c.item.kind_name(),
                        spans,
                        "could not deliver before the shutdown deadline, dropped: {e}"
                    );
                }
                Outcome::Failed(e) => {
                    tracing::info!(
                        kind = c.item.kind_name(),
                        spans,
                        "delivery failed, carried to the next flush: {e}"
                    );
                    failed.push(c);
                }
            }
        }
        Counters::add(&counters.sent_requests, report.sent_requests);
        Counters::add(&counters.sent_spans, report.sent_spans);
        self.carry_over(failed, &mut report);
        *lock(&self.last_flush) = Some(Instant::now());

        let totals = counters.snapshot();
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if report.lost_requests + report.rejected_requests + report.carried_requests > 0
            || totals.has_losses()
        {
            tracing::warn!(
                ?trigger,
                "flush in {ms:.1} ms: sent {} requests ({} spans), carried {} ({} spans), \
                 refused {}, lost {} ({} spans); totals {totals:?}",
                report.sent_requests,
                report.sent_spans,
                report.carried_requests,
                report.carried_spans,
                report.rejected_requests,
                report.lost_requests,
                report.lost_spans,
            );
        } else {
            tracing::debug!(
                ?trigger,
                "flush in {ms:.1} ms: sent {} requests ({} spans)",
                report.sent_requests,
                report.sent_spans
            );
        }
        report
    }

    /// Carried items first (oldest data), then the buffer, then the aggregators; each new
    /// item once per destination the sink routes it to.
    fn collect(&self, scope: Scope, final_flush: bool) -> Vec<Carried> {
        self.report_counters();
        let mut items: Vec<Carried> = std::mem::take(&mut *lock(&self.carry));
        // New items (and their size), before routing.
        let mut fresh: Vec<(Outgoing, usize)> = Vec::new();
        let held = self.buffer.take(scope);

        // Group spans by tracer identity, cutting batches at MAX_BATCH_BYTES.
        let mut open: HashMap<(String, String, String), (TraceBatch, usize)> = HashMap::new();
        for h in held {
            match h.item {
                HeldItem::Forward(f) => fresh.push((Outgoing::Forward(f), h.bytes)),
                HeldItem::Traces(p) => {
                    let entry = open
                        .entry((p.lang, p.lang_version, p.tracer_version))
                        .or_insert_with_key(|(lang, lang_version, tracer_version)| {
                            let batch = TraceBatch {
                                lang: lang.clone(),
                                lang_version: lang_version.clone(),
                                tracer_version: tracer_version.clone(),
                                traces: Vec::new(),
                            };
                            (batch, 0)
                        });
                    if entry.1 > 0 && entry.1 + h.bytes > MAX_BATCH_BYTES {
                        let full = take_traces(&mut entry.0);
                        fresh.push((Outgoing::Traces(full), std::mem::take(&mut entry.1)));
                    }
                    entry.0.traces.extend(p.traces);
                    entry.1 += h.bytes;
                }
            }
        }
        fresh.extend(
            open.into_values()
                .map(|(batch, bytes)| (Outgoing::Traces(batch), bytes)),
        );

        let now = SystemTime::now();
        for drain in &self.drains {
            fresh.extend(drain.drain(now, final_flush).into_iter().map(|item| {
                let bytes = approx_bytes(&item);
                (item, bytes)
            }));
        }
        // One copy per destination: each is retried and carried on its own.
        for (item, bytes) in fresh {
            let mut routes: Vec<Route> = self.sink.routes(&item).iter().collect();
            if routes.is_empty() {
                routes.push(0);
            }
            let last = routes.len() - 1;
            for &route in &routes[..last] {
                items.push(Carried {
                    item: item.clone(),
                    bytes,
                    route,
                });
            }
            items.push(Carried {
                item,
                bytes,
                route: routes[last],
            });
        }
        items
    }

    /// Sends what the counters gained since the previous flush as `ddlambda.extension.*`
    /// counts, and logs the DogStatsD listener's losses (the flush's own are logged with it).
    fn report_counters(&self) {
        let Some(metrics) = &self.loss_metrics else {
            return;
        };
        let now = (self.counters.snapshot(), metrics.counters.dropped());
        let before = std::mem::replace(&mut *lock(&self.reported), now);
        if let Some(line) = now.1.log_line(&before.1) {
            tracing::warn!("{line}");
        }
        let ts = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let tags = &self.metric_tags;
        let lines = now.0.metric_lines(&before.0, tags);
        for line in lines.iter().chain(&now.1.metric_lines(&before.1, tags)) {
            metrics.insert_datagram(line.as_bytes(), ts);
        }
    }

    fn carry_over(&self, failed: Vec<Carried>, report: &mut FlushReport) {
        let mut carry = lock(&self.carry);
        let mut used: usize = carry.iter().map(|c| c.bytes).sum();
        for c in failed {
            let spans = c.item.span_count();
            if used + c.bytes > self.carry_cap {
                Counters::add(&self.counters.carry_overflow_requests, 1);
                Counters::add(&self.counters.carry_overflow_spans, spans);
                tracing::warn!(
                    kind = c.item.kind_name(),
                    spans,
                    "carry-over store full, dropped an undelivered request"
                );
                continue;
            }
            used += c.bytes;
            report.carried_requests += 1;
            report.carried_spans += spans;
            Counters::add(&self.counters.carried, 1);
            carry.push(c);
        }
    }
}

/// Moves `batch`'s traces into a new batch from the same tracer, leaving `batch` empty.
fn take_traces(batch: &mut TraceBatch) -> TraceBatch {
    TraceBatch {
        traces: std::mem::take(&mut batch.traces),
        lang: batch.lang.clone(),
        lang_version: batch.lang_version.clone(),
        tracer_version: batch.tracer_version.clone(),
    }
}

/// Size estimate for items that did not come through the buffer.
fn approx_bytes(item: &Outgoing) -> usize {
    match item {
        Outgoing::Traces(b) => b
            .traces
            .iter()
            .flatten()
            .map(crate::buffer::span_bytes)
            .sum(),
        Outgoing::Forward(f) => f.body.len() + 256,
        // Aggregated payloads are small and bounded by their aggregator.
        _ => 4096,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Inbox;
    use crate::event::{Event, TracePayload};
    use crate::sinks::SendError;
    use ddlambda_wire::Span;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Records what it gets; fails retryably while `down`.
    #[derive(Default)]
    struct Recorder {
        down: AtomicBool,
        got: Mutex<Vec<Outgoing>>,
    }

    impl Sink for Arc<Recorder> {
        async fn send(&self, item: &Outgoing, _: Duration) -> Result<(), SendError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(SendError::Retryable("503".into()));
            }
            lock(&self.got).push(item.clone());
            Ok(())
        }
    }

    fn traces(lang: &str, request_id: Option<&str>, n: usize) -> Event {
        Event::Traces(TracePayload {
            request_id: request_id.map(str::to_owned),
            traces: vec![(0..n).map(|_| Span::default()).collect()],
            lang: lang.into(),
            ..TracePayload::default()
        })
    }

    fn setup() -> (Arc<Buffer>, Arc<Recorder>, Flusher<Arc<Recorder>>) {
        let rec = Arc::new(Recorder::default());
        let (buffer, f) = flusher_over(rec.clone());
        (buffer, rec, f)
    }

    /// A flusher over `sink` with fast retries (two attempts).
    fn flusher_over<S: Sink>(sink: S) -> (Arc<Buffer>, Flusher<S>) {
        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(1 << 24, true, counters.clone()));
        let policy = RetryPolicy {
            first_backoff: Duration::from_millis(1),
            max_attempts: 2,
            ..RetryPolicy::default()
        };
        let f = Flusher::new(
            buffer.clone(),
            sink,
            FunctionTags::default(),
            counters,
            policy,
        );
        (buffer, f)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn groups_by_tracer_and_tags_cold_start() {
        let (buffer, rec, f) = setup();
        buffer.set_function_tags(FunctionTags::default());
        buffer.push(traces("python", None, 2));
        buffer.open_invocation("r1");
        buffer.push(traces("nodejs", None, 1));
        buffer.open_invocation("r2");
        buffer.push(traces("python", Some("r2"), 3));
        let report = f
            .flush(Trigger::EndOfInvocation, Scope::All, soon(), false)
            .await;
        assert_eq!(report.sent_requests, 2);
        assert_eq!(report.sent_spans, 6);
        let got = lock(&rec.got);
        let python = got
            .iter()
            .find_map(|o| match o {
                Outgoing::Traces(b) if b.lang == "python" => Some(b),
                _ => None,
            })
            .unwrap();
        let colds: Vec<&str> = python
            .traces
            .iter()
            .flatten()
            .map(|s| s.meta["cold_start"].as_str())
            .collect();
        assert_eq!(colds, ["true", "true", "false", "false", "false"]);
        assert!(
            python
                .traces
                .iter()
                .flatten()
                .all(|s| s.meta["_dd.origin"] == "lambda")
        );
    }

    #[tokio::test]
    async fn failures_are_carried_until_the_intake_recovers() {
        let (buffer, rec, f) = setup();
        rec.down.store(true, Ordering::SeqCst);
        for i in 0..3 {
            buffer.push(traces(&format!("lang{i}"), None, 2));
            let r = f
                .flush(Trigger::EndOfInvocation, Scope::All, soon(), false)
                .await;
            assert_eq!(r.sent_requests, 0);
            assert_eq!(f.carried(), i + 1);
        }
        rec.down.store(false, Ordering::SeqCst);
        let r = f
            .flush(Trigger::EndOfInvocation, Scope::All, soon(), false)
            .await;
        assert_eq!(r.sent_spans, 6);
        assert_eq!(f.carried(), 0);
        assert_eq!(f.counters().snapshot().carried, 1 + 2 + 3);
    }

    #[tokio::test]
    async fn final_flush_counts_what_it_could_not_send() {
        let (buffer, rec, f) = setup();
        rec.down.store(true, Ordering::SeqCst);
        buffer.push(traces("python", None, 4));
        let r = f.flush(Trigger::Shutdown, Scope::All, soon(), true).await;
        assert_eq!((r.lost_requests, r.lost_spans), (1, 4));
        let s = f.counters().snapshot();
        assert_eq!(s.lost_at_shutdown_spans, 4);
        assert_eq!(f.carried(), 0);
    }

    #[tokio::test]
    async fn dogstatsd_losses_are_reported_as_extension_metrics() {
        let (_buffer, rec, f) = setup();
        let metrics = Arc::new(MetricsAggregator::default());
        let f = f
            .with_drain(metrics.clone())
            .with_loss_metrics(metrics.clone());
        metrics.insert_datagram(b"ok:1|c\nnot a metric\n_e{1,1}:a|b\n_sc|x|0", 1_700_000_000);
        f.flush(Trigger::EndOfInvocation, Scope::All, soon(), false)
            .await;
        // The counts go out with the next flush (this one's drain ran before them).
        f.flush(Trigger::EndOfInvocation, Scope::All, soon(), false)
            .await;
        let got = lock(&rec.got);
        let names: Vec<&str> = got
            .iter()
            .filter_map(|o| match o {
                Outgoing::Series(b) => Some(b),
                _ => None,
            })
            .flat_map(|b| b.series.iter().map(|s| s.metric.as_str()))
            .collect();
        for name in [
            "ddlambda.extension.dogstatsd_lines_malformed",
            "ddlambda.extension.dogstatsd_events_dropped",
            "ddlambda.extension.dogstatsd_service_checks_dropped",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(!names.contains(&"ddlambda.extension.dogstatsd_samples_dropped_contexts"));
    }

    /// Two destinations; the second fails retryably while `down`.
    #[derive(Default)]
    struct TwoWay {
        down: AtomicBool,
        got: Mutex<Vec<Route>>,
    }

    impl Sink for Arc<TwoWay> {
        async fn send(&self, _: &Outgoing, _: Duration) -> Result<(), SendError> {
            unreachable!("the flusher sends through routes")
        }
        fn routes(&self, _: &Outgoing) -> crate::sinks::Routes {
            crate::sinks::Routes::of(&[0, 1])
        }
        async fn send_to(&self, route: Route, _: &Outgoing, _: Duration) -> Result<(), SendError> {
            if route == 1 && self.down.load(Ordering::SeqCst) {
                return Err(SendError::Retryable("503".into()));
            }
            lock(&self.got).push(route);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_destination_never_causes_a_resend_to_another() {
        let sink = Arc::new(TwoWay::default());
        let (buffer, f) = flusher_over(sink.clone());
        sink.down.store(true, Ordering::SeqCst);
        buffer.push(traces("python", None, 2));
        f.flush(Trigger::EndOfInvocation, Scope::All, soon(), false)
            .await;
        assert_eq!(*lock(&sink.got), [0]);
        assert_eq!(f.carried(), 1, "only the failed destination's copy is kept");
        sink.down.store(false, Ordering::SeqCst);
        f.flush(Trigger::EndOfInvocation, Scope::All, soon(), false)
            .await;
        assert_eq!(*lock(&sink.got), [0, 1]);
        assert_eq!(f.carried(), 0);
    }

    #[tokio::test]
    async fn drains_aggregators() {
        struct Agg(AtomicBool);
        impl Drain for Agg {
            fn drain(&self, _: SystemTime, force: bool) -> Vec<Outgoing> {
                self.0.store(force, Ordering::SeqCst);
                vec![Outgoing::Traces(TraceBatch::default())]
            }
        }
        let (_buffer, rec, f) = setup();
        let agg = Arc::new(Agg(AtomicBool::new(false)));
        let f = f.with_drain(agg.clone());
        f.flush(Trigger::Shutdown, Scope::All, soon(), true).await;
        assert!(
            agg.0.load(Ordering::SeqCst),
            "SHUTDOWN forces open buckets out"
        );
        assert_eq!(lock(&rec.got).len(), 1);
    }
}
