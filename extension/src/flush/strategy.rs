//! When to flush: `DD_SERVERLESS_FLUSH_STRATEGY` and the adaptive default.
//!
//! The adaptive rule: while fewer than [`WINDOW`] invocations have been seen, or while they
//! arrive on average at least [`SPARSE_GAP`] apart, flush at the end of every invocation (the
//! flush costs no caller latency and nothing waits in a frozen sandbox). Once invocations are
//! frequent (mean gap of the last [`WINDOW`] under [`SPARSE_GAP`]), flush in the background every
//! [`BACKGROUND_INTERVAL`] instead, so warm invocations stop paying a flush each. Whatever is
//! still buffered when the sandbox shuts down is flushed at SHUTDOWN, and a buffer over half
//! full is flushed at the end of the invocation whatever the strategy.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Invocations the adaptive rule looks back on.
pub const WINDOW: usize = 10;
/// Mean gap at or above which invocations count as sparse.
pub const SPARSE_GAP: Duration = Duration::from_secs(20);
/// Interval of background flushing once invocations are frequent.
pub const BACKGROUND_INTERVAL: Duration = Duration::from_secs(20);

/// The configured strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushStrategy {
    /// Unset or `default`: see the module documentation.
    Adaptive,
    /// `end`: after every invocation.
    End,
    /// `end,<ms>`: at the end of an invocation if `<ms>` passed since the last flush; the same
    /// interval also flushes during long invocations.
    EndEvery(Duration),
    /// `periodically,<ms>`: at the start of an invocation once `<ms>` passed; never waits for
    /// the runtime.
    Periodically(Duration),
    /// `continuously,<ms>`: in the background every `<ms>`; never holds `/next`.
    Continuously(Duration),
}

/// Why a strategy string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StrategyError {
    #[error(
        "unknown strategy {0:?} (expected end, end,<ms>, periodically,<ms>, continuously,<ms> or default)"
    )]
    Unknown(String),
    #[error("{0:?} needs an interval in milliseconds, e.g. {0},60000")]
    MissingInterval(String),
    #[error("interval {0:?} is not a positive whole number of milliseconds")]
    BadInterval(String),
}

impl FlushStrategy {
    /// Parses `DD_SERVERLESS_FLUSH_STRATEGY`.
    pub fn parse(raw: &str) -> Result<Self, StrategyError> {
        let raw = raw.trim();
        let (name, interval) = match raw.split_once(',') {
            Some((n, i)) => (n.trim(), Some(i.trim())),
            None => (raw, None),
        };
        let ms = |kind: &str| -> Result<Duration, StrategyError> {
            let i = interval.ok_or_else(|| StrategyError::MissingInterval(kind.to_owned()))?;
            match i.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
                _ => Err(StrategyError::BadInterval(i.to_owned())),
            }
        };
        match name.to_ascii_lowercase().as_str() {
            "default" | "" if interval.is_none() => Ok(Self::Adaptive),
            "end" => match interval {
                None => Ok(Self::End),
                Some(_) => ms("end").map(Self::EndEvery),
            },
            "periodically" => ms("periodically").map(Self::Periodically),
            "continuously" => ms("continuously").map(Self::Continuously),
            _ => Err(StrategyError::Unknown(raw.to_owned())),
        }
    }
}

impl fmt::Display for FlushStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Adaptive => write!(f, "adaptive"),
            Self::End => write!(f, "end"),
            Self::EndEvery(d) => write!(f, "end,{}", d.as_millis()),
            Self::Periodically(d) => write!(f, "periodically,{}", d.as_millis()),
            Self::Continuously(d) => write!(f, "continuously,{}", d.as_millis()),
        }
    }
}

/// What to do for one invocation, decided at its INVOKE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Flush after the runtime is done, then call `/next`.
    AtEnd,
    /// Flush after the runtime is done if `interval` has passed since the last flush; a timer
    /// flushes in the background during long invocations.
    AtEndEvery(Duration),
    /// Flush at INVOKE if `interval` has passed since the last flush.
    AtStartEvery(Duration),
    /// Flush in the background every `interval`; never hold `/next`.
    Background(Duration),
}

/// Recent INVOKE times, for the adaptive rule.
#[derive(Debug, Default)]
pub struct InvocationHistory {
    starts: VecDeque<Instant>,
}

impl InvocationHistory {
    /// Records an INVOKE.
    pub fn record(&mut self, at: Instant) {
        if self.starts.len() == WINDOW + 1 {
            self.starts.pop_front();
        }
        self.starts.push_back(at);
    }

    /// Mean gap between the last [`WINDOW`] + 1 invocations, once that many were seen.
    pub fn mean_gap(&self) -> Option<Duration> {
        if self.starts.len() < WINDOW + 1 {
            return None;
        }
        let first = *self.starts.front()?;
        let last = *self.starts.back()?;
        Some(last.duration_since(first) / WINDOW as u32)
    }
}

impl FlushStrategy {
    /// The decision for the invocation that just started (already recorded in `history`).
    pub fn decide(&self, history: &InvocationHistory) -> Decision {
        match *self {
            Self::End => Decision::AtEnd,
            Self::EndEvery(d) => Decision::AtEndEvery(d),
            Self::Periodically(d) => Decision::AtStartEvery(d),
            Self::Continuously(d) => Decision::Background(d),
            Self::Adaptive => match history.mean_gap() {
                Some(gap) if gap < SPARSE_GAP => Decision::Background(BACKGROUND_INTERVAL),
                _ => Decision::AtEnd,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        let ms = Duration::from_millis;
        assert_eq!(FlushStrategy::parse("end"), Ok(FlushStrategy::End));
        assert_eq!(FlushStrategy::parse(" END "), Ok(FlushStrategy::End));
        assert_eq!(
            FlushStrategy::parse("end,1000"),
            Ok(FlushStrategy::EndEvery(ms(1000)))
        );
        assert_eq!(
            FlushStrategy::parse("periodically,60000"),
            Ok(FlushStrategy::Periodically(ms(60000)))
        );
        assert_eq!(
            FlushStrategy::parse("continuously, 250"),
            Ok(FlushStrategy::Continuously(ms(250)))
        );
        assert_eq!(FlushStrategy::parse("default"), Ok(FlushStrategy::Adaptive));
        assert!(matches!(
            FlushStrategy::parse("periodically"),
            Err(StrategyError::MissingInterval(_))
        ));
        assert!(matches!(
            FlushStrategy::parse("continuously,0"),
            Err(StrategyError::BadInterval(_))
        ));
        assert!(matches!(
            FlushStrategy::parse("end,-5"),
            Err(StrategyError::BadInterval(_))
        ));
        assert!(matches!(
            FlushStrategy::parse("whenever"),
            Err(StrategyError::Unknown(_))
        ));
        for s in ["end", "end,5", "periodically,7", "continuously,9"] {
            assert_eq!(FlushStrategy::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn adaptive_flushes_at_end_until_invocations_are_frequent() {
        let t0 = Instant::now();
        let mut h = InvocationHistory::default();
        let adaptive = FlushStrategy::Adaptive;
        for i in 0..WINDOW as u64 {
            h.record(t0 + Duration::from_secs(i));
            assert_eq!(
                adaptive.decide(&h),
                Decision::AtEnd,
                "after {i} invocations"
            );
        }
        h.record(t0 + Duration::from_secs(WINDOW as u64));
        assert_eq!(
            adaptive.decide(&h),
            Decision::Background(BACKGROUND_INTERVAL)
        );

        // Sparse again: one invocation every 30 s.
        let mut h = InvocationHistory::default();
        for i in 0..30u64 {
            h.record(t0 + Duration::from_secs(30 * i));
        }
        assert_eq!(adaptive.decide(&h), Decision::AtEnd);
        assert_eq!(h.mean_gap(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn fixed_strategies_ignore_history() {
        let h = InvocationHistory::default();
        let d = Duration::from_millis(10);
        assert_eq!(FlushStrategy::End.decide(&h), Decision::AtEnd);
        assert_eq!(
            FlushStrategy::EndEvery(d).decide(&h),
            Decision::AtEndEvery(d)
        );
        assert_eq!(
            FlushStrategy::Periodically(d).decide(&h),
            Decision::AtStartEvery(d)
        );
        assert_eq!(
            FlushStrategy::Continuously(d).decide(&h),
            Decision::Background(d)
        );
    }
}
