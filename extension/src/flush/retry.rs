//! Sending one item with retries inside a flush's budget.
//!
//! Backoff grows ×4 from [`RetryPolicy::first_backoff`]; every attempt's timeout is cut to what
//! is left of the budget, and no attempt starts with less than [`MIN_ATTEMPT`] left. What is
//! still failing when attempts or budget run out is handed back for carry-over.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::stats::Counters;
use crate::event::Outgoing;
use crate::sinks::{Route, SendError, Sink};

/// No attempt starts with less than this left in the budget.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per item per flush.
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Cap on one attempt (`DD_FLUSH_TIMEOUT`).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Wait before attempt `n` (1-based; attempt 1 waits nothing).
    pub fn backoff(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let factor = 4u32.saturating_pow(attempt - 2);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// How sending one item ended.
#[derive(Debug)]
pub enum Outcome {
    Sent,
    /// Refused for good by the destination.
    Rejected(SendError),
    /// Still failing (retryably) when attempts or budget ran out.
    Failed(SendError),
}

/// Sends `item` until it succeeds, is refused, or attempts/budget run out. The budget ends at
/// `deadline`, or earlier if `cap` (SHUTDOWN's deadline, set while this runs) says so: an
/// attempt in flight is cut when the cap arrives.
pub async fn send<S: Sink>(
    sink: &S,
    item: &Outgoing,
    deadline: Instant,
    cap: watch::Receiver<Option<Instant>>,
    policy: &RetryPolicy,
    counters: &Counters,
) -> Outcome {
    send_to(sink, 0, item, deadline, cap, policy, counters).await
}

/// [`send`] to one of the sink's destinations ([`Sink::routes`]).
pub async fn send_to<S: Sink>(
    sink: &S,
    route: Route,
    item: &Outgoing,
    deadline: Instant,
    mut cap: watch::Receiver<Option<Instant>>,
    policy: &RetryPolicy,
    counters: &Counters,
) -> Outcome {
    let effective = |cap: &watch::Receiver<Option<Instant>>| match *cap.borrow() {
        Some(c) => c.min(deadline),
        None => deadline,
    };
    let mut last = SendError::Retryable("no time left in the flush budget".to_owned());
    for attempt in 1..=policy.max_attempts {
        // The destination's `Retry-After` is a floor under the backoff; one beyond the budget
        // ends this flush's attempts and the item is carried over.
        let wait = match &last {
            SendError::RetryAfter { after, .. } => policy.backoff(attempt).max(*after),
            _ => policy.backoff(attempt),
        };
        if Instant::now() + wait + MIN_ATTEMPT > effective(&cap) {
            break;
        }
        if attempt > 1 {
            Counters::add(&counters.retries, 1);
            tokio::time::sleep(wait).await;
        }
        let started = Instant::now();
        let timeout = effective(&cap)
            .saturating_duration_since(started)
            .min(policy.attempt_timeout);
        let request = sink.send_to(route, item, timeout);
        tokio::pin!(request);
        let mut cap_open = true;
        // The sink's own timeout covers the request; this also covers a sink that ignores it,
        // and a cap that arrives mid-request.
        let result = loop {
            let until = (started + timeout).min(effective(&cap));
            tokio::select! {
                r = &mut request => break r,
                _ = tokio::time::sleep_until(until) => {
                    break Err(SendError::Retryable(format!(
                        "no answer within {} ms",
                        until.saturating_duration_since(started).as_millis()
                    )));
                }
                changed = cap.changed(), if cap_open => cap_open = changed.is_ok(),
            }
        };
        match result {
            Ok(()) => return Outcome::Sent,
            Err(e @ SendError::Rejected(_)) => return Outcome::Rejected(e),
            Err(e @ (SendError::Retryable(_) | SendError::RetryAfter { .. })) => {
                tracing::debug!(attempt, kind = item.kind_name(), "send failed: {e}");
                last = e;
            }
        }
    }
    Outcome::Failed(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TraceBatch;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails retryably `failures` times, then succeeds; or refuses when `reject`.
    struct Flaky {
        failures: u32,
        reject: bool,
        calls: AtomicU32,
    }

    impl Sink for Flaky {
        async fn send(&self, _: &Outgoing, _: Duration) -> Result<(), SendError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if self.reject {
                Err(SendError::Rejected("400".into()))
            } else if n < self.failures {
                Err(SendError::Retryable("503".into()))
            } else {
                Ok(())
            }
        }
    }

    fn no_cap() -> watch::Receiver<Option<Instant>> {
        watch::Sender::new(None).subscribe()
    }

    fn item() -> Outgoing {
        Outgoing::Traces(TraceBatch::default())
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            first_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        }
    }

    /// Answers "retry after `after`" once, then accepts; records when each call came.
    struct Throttling {
        after: Duration,
        calls: std::sync::Mutex<Vec<Instant>>,
    }

    impl Sink for Throttling {
        async fn send(&self, _: &Outgoing, _: Duration) -> Result<(), SendError> {
            let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
            calls.push(Instant::now());
            if calls.len() == 1 {
                Err(SendError::RetryAfter {
                    message: "429".into(),
                    after: self.after,
                })
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_is_waited_for_when_it_fits_and_carried_over_when_not() {
        let c = Counters::default();
        let sink = Throttling {
            after: Duration::from_secs(3),
            calls: Default::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(matches!(
            send(&sink, &item(), deadline, no_cap(), &fast(), &c).await,
            Outcome::Sent
        ));
        let calls = sink.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2);
        // Paused time: the gap is exactly the wait chosen, not the 1 ms backoff.
        assert_eq!(calls[1] - calls[0], Duration::from_secs(3));

        let sink = Throttling {
            after: Duration::from_secs(60),
            calls: Default::default(),
        };
        let outcome = send(&sink, &item(), deadline, no_cap(), &fast(), &c).await;
        assert!(
            matches!(outcome, Outcome::Failed(SendError::RetryAfter { .. })),
            "{outcome:?}"
        );
        assert_eq!(
            sink.calls.lock().unwrap().len(),
            1,
            "no attempt inside the wait"
        );
    }

    #[tokio::test]
    async fn retries_until_success() {
        let sink = Flaky {
            failures: 2,
            reject: false,
            calls: AtomicU32::new(0),
        };
        let c = Counters::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(matches!(
            send(&sink, &item(), deadline, no_cap(), &fast(), &c).await,
            Outcome::Sent
        ));
        assert_eq!(sink.calls.load(Ordering::SeqCst), 3);
        assert_eq!(c.snapshot().retries, 2);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_never_retries_a_refusal() {
        let c = Counters::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        let down = Flaky {
            failures: u32::MAX,
            reject: false,
            calls: AtomicU32::new(0),
        };
        assert!(matches!(
            send(&down, &item(), deadline, no_cap(), &fast(), &c).await,
            Outcome::Failed(_)
        ));
        assert_eq!(down.calls.load(Ordering::SeqCst), 4);
        let refusing = Flaky {
            failures: 0,
            reject: true,
            calls: AtomicU32::new(0),
        };
        assert!(matches!(
            send(&refusing, &item(), deadline, no_cap(), &fast(), &c).await,
            Outcome::Rejected(_)
        ));
        assert_eq!(refusing.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stays_inside_the_budget() {
        struct Hung;
        impl Sink for Hung {
            async fn send(&self, _: &Outgoing, _: Duration) -> Result<(), SendError> {
                std::future::pending().await
            }
        }
        let c = Counters::default();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(300);
        let outcome = send(
            &Hung,
            &item(),
            deadline,
            no_cap(),
            &RetryPolicy::default(),
            &c,
        )
        .await;
        assert!(matches!(outcome, Outcome::Failed(_)));
        // Bounded by the deadline, not by the policy's 30 s attempt timeout.
        assert!(Instant::now() < start + Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_cap_cuts_an_attempt_in_flight() {
        struct Hung;
        impl Sink for Hung {
            async fn send(&self, _: &Outgoing, _: Duration) -> Result<(), SendError> {
                std::future::pending().await
            }
        }
        let c = Counters::default();
        let cap = watch::Sender::new(None);
        let rx = cap.subscribe();
        let far = Instant::now() + Duration::from_secs(3600);
        let task = tokio::spawn(async move {
            send(&Hung, &item(), far, rx, &RetryPolicy::default(), &c).await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        cap.send_replace(Some(Instant::now()));
        let outcome = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the cap ends the send")
            .unwrap();
        assert!(matches!(outcome, Outcome::Failed(_)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::ZERO);
        assert_eq!(p.backoff(2), Duration::from_millis(50));
        assert_eq!(p.backoff(3), Duration::from_millis(200));
        assert_eq!(p.backoff(4), Duration::from_millis(800));
        assert_eq!(p.backoff(9), Duration::from_secs(2));
    }
}
