//! Counters of everything that did not go upstream as planned: dropped at the buffer's bound,
//! retried, carried to a later flush, refused by the intake, given up at SHUTDOWN. Logged at
//! each flush; readable by anyone holding the [`Counters`] (the extension-metrics path).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Running totals since start. Every field only grows.
#[derive(Debug, Default)]
pub struct Counters {
    /// Payloads refused because the buffer was full (the newest data is the one dropped).
    pub overflow_payloads: AtomicU64,
    pub overflow_spans: AtomicU64,
    pub overflow_bytes: AtomicU64,
    /// Spans received while `DD_TRACE_ENABLED=false`.
    pub disabled_spans: AtomicU64,
    /// Upstream requests that succeeded.
    pub sent_requests: AtomicU64,
    pub sent_spans: AtomicU64,
    /// Attempts repeated after a retryable failure.
    pub retries: AtomicU64,
    /// Items a flush could not deliver and handed to the next one.
    pub carried: AtomicU64,
    /// Items the intake refused for good (4xx other than 408 and 429).
    pub rejected_requests: AtomicU64,
    pub rejected_spans: AtomicU64,
    /// Items still undelivered when the extension exited (SHUTDOWN budget spent).
    pub lost_at_shutdown_requests: AtomicU64,
    pub lost_at_shutdown_spans: AtomicU64,
    /// Carried items dropped because the carry-over store was full.
    pub carry_overflow_requests: AtomicU64,
    pub carry_overflow_spans: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub overflow_payloads: u64,
    pub overflow_spans: u64,
    pub overflow_bytes: u64,
    pub disabled_spans: u64,
    pub sent_requests: u64,
    pub sent_spans: u64,
    pub retries: u64,
    pub carried: u64,
    pub rejected_requests: u64,
    pub rejected_spans: u64,
    pub lost_at_shutdown_requests: u64,
    pub lost_at_shutdown_spans: u64,
    pub carry_overflow_requests: u64,
    pub carry_overflow_spans: u64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            overflow_payloads: self.overflow_payloads.load(Relaxed),
            overflow_spans: self.overflow_spans.load(Relaxed),
            overflow_bytes: self.overflow_bytes.load(Relaxed),
            disabled_spans: self.disabled_spans.load(Relaxed),
            sent_requests: self.sent_requests.load(Relaxed),
            sent_spans: self.sent_spans.load(Relaxed),
            retries: self.retries.load(Relaxed),
            carried: self.carried.load(Relaxed),
            rejected_requests: self.rejected_requests.load(Relaxed),
            rejected_spans: self.rejected_spans.load(Relaxed),
            lost_at_shutdown_requests: self.lost_at_shutdown_requests.load(Relaxed),
            lost_at_shutdown_spans: self.lost_at_shutdown_spans.load(Relaxed),
            carry_overflow_requests: self.carry_overflow_requests.load(Relaxed),
            carry_overflow_spans: self.carry_overflow_spans.load(Relaxed),
        }
    }
}

impl Snapshot {
    /// DogStatsD lines counting what changed since `before`, one per non-zero delta, named
    /// `ddlambda.extension.<counter>` and tagged with `tags` (`key:value`).
    pub fn metric_lines(&self, before: &Snapshot, tags: &str) -> Vec<String> {
        let pairs = [
            (
                "payloads_dropped_overflow",
                self.overflow_payloads,
                before.overflow_payloads,
            ),
            (
                "spans_dropped_overflow",
                self.overflow_spans,
                before.overflow_spans,
            ),
            ("spans_disabled", self.disabled_spans, before.disabled_spans),
            ("requests_sent", self.sent_requests, before.sent_requests),
            ("spans_sent", self.sent_spans, before.sent_spans),
            ("requests_retried", self.retries, before.retries),
            ("requests_carried", self.carried, before.carried),
            (
                "requests_rejected",
                self.rejected_requests,
                before.rejected_requests,
            ),
            ("spans_rejected", self.rejected_spans, before.rejected_spans),
            (
                "spans_lost_at_shutdown",
                self.lost_at_shutdown_spans,
                before.lost_at_shutdown_spans,
            ),
            (
                "spans_dropped_carry_overflow",
                self.carry_overflow_spans,
                before.carry_overflow_spans,
            ),
        ];
        delta_lines(&pairs, tags)
    }

    /// Whether anything was lost or refused (what deserves a warning rather than a debug line).
    pub fn has_losses(&self) -> bool {
        self.overflow_payloads
            + self.rejected_requests
            + self.lost_at_shutdown_requests
            + self.carry_overflow_requests
            > 0
    }
}

/// The DogStatsD listener's counters of what it could not aggregate (from
/// `aggregate::metrics::MetricsCounters`), as the flusher reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DogStatsdSnapshot {
    /// Lines that did not parse (skipped; the rest of their datagram is kept).
    pub malformed_lines: u64,
    /// Samples for a new context beyond the context cap.
    pub dropped_contexts: u64,
    /// Events and service checks: parsed but not forwarded (no intake for them here).
    pub dropped_events: u64,
    pub dropped_service_checks: u64,
}

impl DogStatsdSnapshot {
    /// DogStatsD lines for what changed since `before`, as [`Snapshot::metric_lines`].
    pub fn metric_lines(&self, before: &DogStatsdSnapshot, tags: &str) -> Vec<String> {
        let pairs = [
            (
                "dogstatsd_lines_malformed",
                self.malformed_lines,
                before.malformed_lines,
            ),
            (
                "dogstatsd_samples_dropped_contexts",
                self.dropped_contexts,
                before.dropped_contexts,
            ),
            (
                "dogstatsd_events_dropped",
                self.dropped_events,
                before.dropped_events,
            ),
            (
                "dogstatsd_service_checks_dropped",
                self.dropped_service_checks,
                before.dropped_service_checks,
            ),
        ];
        delta_lines(&pairs, tags)
    }

    /// One log line for what changed since `before`; `None` when nothing did.
    pub fn log_line(&self, before: &DogStatsdSnapshot) -> Option<String> {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        let malformed = d(self.malformed_lines, before.malformed_lines);
        let contexts = d(self.dropped_contexts, before.dropped_contexts);
        let events = d(self.dropped_events, before.dropped_events);
        let checks = d(self.dropped_service_checks, before.dropped_service_checks);
        (malformed + contexts + events + checks > 0).then(|| {
            format!(
                "dogstatsd since the last flush: {malformed} malformed lines skipped, \
                 {contexts} samples dropped over the context cap, {events} events and \
                 {checks} service checks dropped (not forwarded); totals {self:?}"
            )
        })
    }
}

/// `ddlambda.extension.<name>:<delta>|c|#<tags>` for every `(name, now, before)` that grew.
fn delta_lines(pairs: &[(&str, u64, u64)], tags: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(_, now, then)| now > then)
        .map(|(name, now, then)| {
            let mut line = format!("ddlambda.extension.{name}:{}|c", now - then);
            if !tags.is_empty() {
                line.push_str("|#");
                line.push_str(tags);
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_carry_only_deltas() {
        let before = Snapshot {
            overflow_spans: 5,
            sent_spans: 10,
            ..Snapshot::default()
        };
        let now = Snapshot {
            overflow_spans: 7,
            sent_spans: 10,
            retries: 1,
            ..Snapshot::default()
        };
        assert_eq!(
            now.metric_lines(&before, "functionname:f"),
            [
                "ddlambda.extension.spans_dropped_overflow:2|c|#functionname:f",
                "ddlambda.extension.requests_retried:1|c|#functionname:f",
            ]
        );
        assert!(now.metric_lines(&now, "").is_empty());
    }
}
