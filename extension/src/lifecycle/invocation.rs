//! Per-invocation state: INVOKE → runtime done → flushed, and the rule for "runtime done".
//!
//! An invocation's runtime is done when `platform.runtimeDone` for it arrives or the wrapper's
//! end signal for it arrives, whichever comes first. If a wrapper said hello, the extension
//! still waits up to `DDLAMBDA_WRAPPER_GRACE_MS` after `runtimeDone` for the end signal (the
//! wrapper's spans follow the response). If neither can come — the platform delivers no
//! Telemetry records (the AWS RIE, cargo-lambda: concluded after `DDLAMBDA_TELEMETRY_PROBE_MS`
//! without a single record) and no wrapper said hello — the extension does not hold `/next`;
//! what the invocation produced is flushed at the next INVOKE or at SHUTDOWN. Every wait is
//! also bounded by the invocation's deadline plus [`DEADLINE_SLACK`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// How long past the invocation's deadline a `runtimeDone` is still awaited (Lambda reports
/// a timeout shortly after the deadline). Short: a timeout resets the sandbox, and the
/// SHUTDOWN budget that follows is what the final flush needs.
pub const DEADLINE_SLACK: Duration = Duration::from_millis(300);

/// What said the runtime was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneBy {
    /// `platform.runtimeDone`.
    Telemetry,
    /// The wrapper's end-of-invocation signal.
    Wrapper,
}

/// Where an invocation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// The runtime is done; `None` when no signal could tell (see the module doc).
    RuntimeDone(Option<DoneBy>),
    Flushed,
}

/// One invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub started: Instant,
    pub deadline: Instant,
    pub phase: Phase,
}

impl Invocation {
    pub fn new(request_id: String, deadline_ms: u64) -> Self {
        Self {
            request_id,
            started: Instant::now(),
            deadline: epoch_ms_to_instant(deadline_ms),
            phase: Phase::Running,
        }
    }
}

/// What the waiting loop should do next, given what is known; pure, so the rule is testable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Done(DoneBy),
    /// Stop waiting without a signal.
    GiveUp(GiveUpReason),
    /// Wait until this instant (or until something arrives).
    WaitUntil(Instant),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// No Telemetry records ever arrived and no wrapper said hello.
    NoSignals,
    /// The runtime said hello but sent no end signal within the grace period.
    WrapperGraceOver,
    /// The deadline (plus slack) passed.
    Deadline,
}

/// Inputs to [`decide`].
#[derive(Debug, Clone, Copy)]
pub struct Known {
    pub now: Instant,
    pub started: Instant,
    pub deadline: Instant,
    /// A wrapper said hello.
    pub hello: bool,
    /// At least one Telemetry record has ever arrived.
    pub telemetry_live: bool,
    /// When `platform.runtimeDone` for this request arrived.
    pub runtime_done_at: Option<Instant>,
    /// The wrapper's end signal for this request arrived.
    pub wrapper_ended: bool,
    pub grace: Duration,
    pub probe: Duration,
}

/// The rule of the module documentation.
pub fn decide(k: Known) -> Verdict {
    if k.wrapper_ended {
        return Verdict::Done(DoneBy::Wrapper);
    }
    if let Some(at) = k.runtime_done_at {
        if !k.hello {
            return Verdict::Done(DoneBy::Telemetry);
        }
        let until = at + k.grace;
        return if k.now >= until {
            Verdict::GiveUp(GiveUpReason::WrapperGraceOver)
        } else {
            Verdict::WaitUntil(until)
        };
    }
    let hard = k.deadline + DEADLINE_SLACK;
    if k.now >= hard {
        return Verdict::GiveUp(GiveUpReason::Deadline);
    }
    if !k.telemetry_live && !k.hello {
        let probe_end = k.started + k.probe;
        return if k.now >= probe_end {
            Verdict::GiveUp(GiveUpReason::NoSignals)
        } else {
            Verdict::WaitUntil(probe_end.min(hard))
        };
    }
    Verdict::WaitUntil(hard)
}

/// Converts Lambda's epoch-millisecond deadline to a monotonic instant (now, if past).
pub fn epoch_ms_to_instant(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(now_ms: u64) -> Known {
        let t0 = Instant::now();
        Known {
            now: t0 + Duration::from_millis(now_ms),
            started: t0,
            deadline: t0 + Duration::from_secs(3),
            hello: false,
            telemetry_live: false,
            runtime_done_at: None,
            wrapper_ended: false,
            grace: Duration::from_millis(200),
            probe: Duration::from_millis(150),
        }
    }

    #[test]
    fn without_any_signal_source_the_invocation_is_not_held() {
        let k = known(0);
        assert_eq!(decide(k), Verdict::WaitUntil(k.started + k.probe));
        assert_eq!(decide(known(150)), Verdict::GiveUp(GiveUpReason::NoSignals));
    }

    #[test]
    fn runtime_done_ends_the_wait_unless_a_wrapper_is_expected() {
        let mut k = known(10);
        k.telemetry_live = true;
        assert_eq!(decide(k), Verdict::WaitUntil(k.deadline + DEADLINE_SLACK));
        k.runtime_done_at = Some(k.now);
        assert_eq!(decide(k), Verdict::Done(DoneBy::Telemetry));
        k.hello = true;
        assert_eq!(decide(k), Verdict::WaitUntil(k.now + k.grace));
        k.now += k.grace;
        assert_eq!(decide(k), Verdict::GiveUp(GiveUpReason::WrapperGraceOver));
        k.wrapper_ended = true;
        assert_eq!(decide(k), Verdict::Done(DoneBy::Wrapper));
    }

    #[test]
    fn a_wrapper_end_counts_as_runtime_done_without_telemetry() {
        let mut k = known(1000);
        k.hello = true;
        assert_eq!(decide(k), Verdict::WaitUntil(k.deadline + DEADLINE_SLACK));
        k.wrapper_ended = true;
        assert_eq!(decide(k), Verdict::Done(DoneBy::Wrapper));
    }

    #[test]
    fn every_wait_ends_at_the_deadline() {
        let mut k = known(4000);
        k.hello = true;
        k.telemetry_live = true;
        assert_eq!(decide(k), Verdict::GiveUp(GiveUpReason::Deadline));
    }
}
