//! The lifecycle: the Extensions API loop that drives everything else.
//!
//! Per INVOKE: open the invocation, wait (bounded) until its runtime is done, flush as the
//! strategy says, then call `/next`. The caller already has its response by then, so a flush
//! here costs no caller latency. At SHUTDOWN: one final flush inside the deadline, then the
//! caller exits the process.

pub mod extensions_api;
pub mod invocation;
pub mod telemetry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::buffer::{Buffer, Scope};
use crate::config::Config;
use crate::flush::strategy::{Decision, InvocationHistory};
use crate::flush::{Flusher, Trigger};
use crate::secrets::ApiKeyResolver;
use crate::sinks::Sink;
use extensions_api::{ExtensionsApi, NextEvent};
use invocation::{GiveUpReason, Invocation, Known, Phase, Verdict};
use telemetry::{Record, TelemetryObserver};

/// How long a background ticker waits when disabled before checking again (it also wakes on
/// every change).
const PARKED: Duration = Duration::from_secs(3600);

/// Why the loop ended.
#[derive(Debug)]
pub enum Exit {
    /// SHUTDOWN handled; the process should exit 0.
    Shutdown,
    /// The Extensions API failed; nothing more can be done.
    ApiError(extensions_api::ApiError),
}

/// Everything the loop needs.
pub struct Lifecycle<S: Sink> {
    pub api: ExtensionsApi,
    pub extension_id: String,
    pub config: Arc<Config>,
    pub buffer: Arc<Buffer>,
    pub flusher: Arc<Flusher<S>>,
    pub records: mpsc::UnboundedReceiver<Record>,
    pub observers: Vec<Arc<dyn TelemetryObserver>>,
    /// The API key's reader when it comes from Secrets Manager: SHUTDOWN ends its backoff so a
    /// recent failure does not skip the last chance to deliver.
    pub api_key_resolver: Option<Arc<ApiKeyResolver>>,
}

struct State {
    history: InvocationHistory,
    telemetry_live: bool,
    /// `platform.runtimeDone` arrival times by request id (pruned at every INVOKE).
    runtime_done: HashMap<String, Instant>,
    current: Option<Invocation>,
    /// The background ticker's interval (`None`: off).
    ticker: watch::Sender<Option<Duration>>,
}

impl<S: Sink> Lifecycle<S> {
    /// Runs until SHUTDOWN (or an Extensions API failure). `on_first_next` runs once the
    /// first `/next` is in flight: the place for work that must stay off the init path.
    pub async fn run(mut self, on_first_next: impl FnOnce()) -> Exit {
        let (ticker, ticker_rx) = watch::channel(None);
        tokio::spawn(background_ticker(
            self.flusher.clone(),
            ticker_rx,
            self.config.flush_timeout,
        ));
        let mut state = State {
            history: InvocationHistory::default(),
            telemetry_live: false,
            runtime_done: HashMap::new(),
            current: None,
            ticker,
        };
        let mut on_first_next = Some(on_first_next);
        loop {
            let event = {
                let queued = on_first_next.take();
                let next = self.api.next_then(&self.extension_id, move || {
                    if let Some(f) = queued {
                        f();
                    }
                });
                tokio::pin!(next);
                // Platform records keep flowing while `/next` long-polls.
                loop {
                    tokio::select! {
                        event = &mut next => break event,
                        Some(record) = self.records.recv() => {
                            on_record(&self.buffer, &self.observers, &mut state, record);
                        }
                    }
                }
            };
            match event {
                Ok(NextEvent::Invoke {
                    request_id,
                    deadline_ms,
                    ..
                }) => self.on_invoke(&mut state, request_id, deadline_ms).await,
                Ok(NextEvent::Shutdown {
                    shutdown_reason,
                    deadline_ms,
                }) => {
                    self.on_shutdown(&mut state, &shutdown_reason, deadline_ms)
                        .await;
                    return Exit::Shutdown;
                }
                Err(e) => return Exit::ApiError(e),
            }
        }
    }

    async fn on_invoke(&mut self, state: &mut State, request_id: String, deadline_ms: u64) {
        let inv = Invocation::new(request_id, deadline_ms);
        let rid = inv.request_id.clone();
        state.history.record(inv.started.into_std());
        let decision = self.config.flush_strategy.decide(&state.history);
        state.runtime_done.retain(|id, _| *id == rid);
        self.buffer.open_invocation(&rid);
        for o in &self.observers {
            o.on_invoke(&rid);
        }
        state.current = Some(inv.clone());

        let interval = match decision {
            Decision::Background(d) | Decision::AtEndEvery(d) => Some(d),
            Decision::AtEnd | Decision::AtStartEvery(_) => None,
        };
        state.ticker.send_if_modified(|t| {
            let changed = *t != interval;
            *t = interval;
            changed
        });

        // What earlier invocations left (no runtime-done signal, a background strategy that
        // changed, carried failures) goes now, while this invocation runs.
        match decision {
            Decision::AtStartEvery(d) if self.due(d) => {
                self.flush(Trigger::Invoke, Scope::Settled, inv.deadline)
                    .await;
            }
            Decision::AtEnd | Decision::AtEndEvery(_) if self.pending() => {
                let flusher = self.flusher.clone();
                let budget = self.config.flush_timeout;
                tokio::spawn(async move {
                    flusher
                        .flush(
                            Trigger::Invoke,
                            Scope::Settled,
                            Instant::now() + budget,
                            false,
                        )
                        .await;
                });
            }
            _ => {}
        }

        let verdict = self.wait_runtime_done(state, &inv).await;
        for o in &self.observers {
            o.on_runtime_done(&rid);
        }
        let done_by = match verdict {
            Verdict::Done(by) => Some(by),
            Verdict::GiveUp(GiveUpReason::WrapperGraceOver) => {
                tracing::debug!(
                    request_id = %rid,
                    "a wrapper said hello but sent no end signal within {} ms of runtimeDone",
                    self.config.wrapper_grace.as_millis()
                );
                Some(invocation::DoneBy::Telemetry)
            }
            Verdict::GiveUp(reason) => {
                tracing::debug!(
                    request_id = %rid,
                    ?reason,
                    "no runtime-done signal; this invocation's data is flushed at the next INVOKE or at SHUTDOWN"
                );
                None
            }
            Verdict::WaitUntil(_) => None,
        };
        if let Some(cur) = state.current.as_mut() {
            cur.phase = Phase::RuntimeDone(done_by);
        }
        if done_by.is_none() {
            return;
        }
        self.buffer.runtime_done(&rid);
        let pressure = self.buffer.used() > self.buffer.cap() / 2;
        let flush = pressure
            || match decision {
                Decision::AtEnd => true,
                Decision::AtEndEvery(d) => self.due(d),
                Decision::AtStartEvery(_) | Decision::Background(_) => false,
            };
        if flush {
            self.flush(Trigger::EndOfInvocation, Scope::All, inv.deadline)
                .await;
            if let Some(cur) = state.current.as_mut() {
                cur.phase = Phase::Flushed;
            }
        }
    }

    /// Waits until the rule of [`invocation`] says the runtime is done or waiting is over.
    async fn wait_runtime_done(&mut self, state: &mut State, inv: &Invocation) -> Verdict {
        let mut signals = self.buffer.signals();
        loop {
            signals.borrow_and_update();
            let known = Known {
                now: Instant::now(),
                started: inv.started,
                deadline: inv.deadline,
                hello: self.buffer.hello().is_some(),
                telemetry_live: state.telemetry_live,
                runtime_done_at: state.runtime_done.get(&inv.request_id).copied(),
                wrapper_ended: self.buffer.ended(&inv.request_id),
                grace: self.config.wrapper_grace,
                probe: self.config.telemetry_probe,
            };
            let until = match invocation::decide(known) {
                Verdict::WaitUntil(until) => until,
                verdict => return verdict,
            };
            tokio::select! {
                Some(record) = self.records.recv() => {
                    on_record(&self.buffer, &self.observers, state, record);
                }
                _ = signals.changed() => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn on_shutdown(&mut self, state: &mut State, reason: &str, deadline_ms: u64) {
        let started = Instant::now();
        let hard = invocation::epoch_ms_to_instant(deadline_ms);
        let deadline = hard
            .checked_sub(self.config.shutdown_margin)
            .filter(|d| *d > started)
            .unwrap_or(started);
        self.flusher.cap_deadline(deadline);
        state.ticker.send_replace(None);

        // A wrapper that promised an end signal for the open invocation may still be sending.
        if let Some(cur) = &state.current
            && self.buffer.hello().is_some()
            && !self.buffer.ended(&cur.request_id)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            self.buffer
                .wait_end(&cur.request_id, self.config.wrapper_grace.min(left / 4))
                .await;
        }
        while let Ok(record) = self.records.try_recv() {
            on_record(&self.buffer, &self.observers, state, record);
        }
        before_final_flush(&self.observers, self.api_key_resolver.as_deref());
        let report = self
            .flusher
            .flush(Trigger::Shutdown, Scope::All, deadline, true)
            .await;
        let totals = self.flusher.counters().snapshot();
        let line = format!(
            "SHUTDOWN ({reason}): final flush sent {} requests ({} spans) in {} ms; lost {} requests ({} spans) to the deadline; totals: {} spans sent, {} dropped at the buffer bound, {} refused by the intake, {} lost at shutdown",
            report.sent_requests,
            report.sent_spans,
            started.elapsed().as_millis(),
            report.lost_requests,
            report.lost_spans,
            totals.sent_spans,
            totals.overflow_spans,
            totals.rejected_spans,
            totals.lost_at_shutdown_spans,
        );
        if totals.has_losses() {
            tracing::warn!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }

    fn due(&self, interval: Duration) -> bool {
        self.flusher
            .since_last_flush()
            .is_none_or(|since| since >= interval)
    }

    fn pending(&self) -> bool {
        self.buffer.used() > 0 || self.flusher.carried() > 0
    }

    /// A flush that holds `/next`: bounded by `DD_FLUSH_TIMEOUT` and by the invocation's own
    /// deadline (less the margin), since Lambda counts the extension's post-runtime time
    /// against the function timeout; what does not fit is carried to the next flush.
    async fn flush(&self, trigger: Trigger, scope: Scope, invocation_deadline: Instant) {
        let budget_end = Instant::now() + self.config.flush_timeout;
        let deadline = invocation_deadline
            .checked_sub(self.config.shutdown_margin)
            .map_or(budget_end, |d| d.min(budget_end));
        self.flusher.flush(trigger, scope, deadline, false).await;
    }
}

/// What SHUTDOWN does right before its final flush: observers finish (their last metrics
/// and spans join the flush), and a Secrets Manager read in backoff after a failure is tried
/// again at once.
fn before_final_flush(
    observers: &[Arc<dyn TelemetryObserver>],
    api_key_resolver: Option<&ApiKeyResolver>,
) {
    for o in observers {
        o.on_shutdown();
    }
    if let Some(r) = api_key_resolver {
        r.retry_now();
    }
}

/// Notes a platform record: telemetry is live, a runtime is done, observers see it.
fn on_record(
    buffer: &Buffer,
    observers: &[Arc<dyn TelemetryObserver>],
    state: &mut State,
    record: Record,
) {
    if !state.telemetry_live {
        tracing::debug!("first Telemetry record received ({})", record.kind);
        state.telemetry_live = true;
    }
    if record.is_runtime_done()
        && let Some(id) = &record.request_id
    {
        state.runtime_done.insert(id.clone(), Instant::now());
        if state.current.as_ref().map(|c| c.request_id.as_str()) == Some(id) {
            buffer.runtime_done(id);
        }
    }
    for o in observers {
        o.on_platform_record(&record.raw);
    }
}

/// Flushes every interval the lifecycle sets (`None`: parked). A flush is never cancelled
/// half-way: only the sleep between flushes is interrupted by a change.
async fn background_ticker<S: Sink>(
    flusher: Arc<Flusher<S>>,
    mut interval: watch::Receiver<Option<Duration>>,
    budget: Duration,
) {
    loop {
        let current = *interval.borrow_and_update();
        let sleep = tokio::time::sleep(current.unwrap_or(PARKED));
        tokio::select! {
            changed = interval.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = sleep => {
                if current.is_some() {
                    flusher
                        .flush(Trigger::Background, Scope::Settled, Instant::now() + budget, false)
                        .await;
                }
            }
        }
    }
}

/// The fallback when start-up failed: keep calling `/next` so the function is never blocked,
/// and exit at SHUTDOWN.
pub async fn idle(api: &ExtensionsApi, extension_id: &str) -> Exit {
    loop {
        match api.next(extension_id).await {
            Ok(NextEvent::Invoke { .. }) => continue,
            Ok(NextEvent::Shutdown { .. }) => return Exit::Shutdown,
            Err(e) => return Exit::ApiError(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Backoff;
    use crate::secrets::tests::{KEY, fake_aws, ok, resolver};
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn shutdown_ends_the_api_key_backoff_before_the_final_flush() {
        let denied = (
            400,
            r#"{"__type":"ThrottlingException","Message":"slow down"}"#.to_owned(),
        );
        let aws = fake_aws(vec![denied, ok(KEY)]).await;
        let hour = Duration::from_secs(3600);
        let r = resolver(
            &aws.endpoint,
            Backoff {
                first: hour,
                max: hour,
            },
        );
        let wait = Duration::from_secs(30);
        assert!(r.key(wait).await.is_err());
        assert!(r.key(wait).await.is_err(), "inside the backoff");
        before_final_flush(&[], Some(&r));
        assert_eq!(&*r.key(wait).await.unwrap(), KEY);
        assert_eq!(aws.calls.load(Ordering::SeqCst), 2);
    }
}
