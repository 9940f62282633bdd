//! Every lifecycle event with its time since the platform was built: what tests assert on and
//! what benchmarks read extension init time and post-runtime duration from.

use std::fmt;
use std::time::Duration;

/// Who did (or underwent) something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The platform itself.
    Platform,
    /// The function process (the runtime).
    Runtime,
    /// An extension, by registered name.
    Extension(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Platform => f.write_str("platform"),
            Self::Runtime => f.write_str("runtime"),
            Self::Extension(name) => write!(f, "extension {name}"),
        }
    }
}

/// The Extensions API event kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtensionEventKind {
    /// `INVOKE`.
    Invoke,
    /// `SHUTDOWN`.
    Shutdown,
}

/// What happened.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A process was started.
    Spawned {
        /// Its PID.
        pid: u32,
    },
    /// A process ended on its own (or after a signal the platform did not send).
    Exited {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal number, if a signal ended it.
        signal: Option<i32>,
    },
    /// The platform killed a process.
    Killed {
        /// Why.
        reason: String,
    },
    /// Init began (`platform.initStart`).
    InitStart,
    /// An extension registered.
    Registered,
    /// An extension subscribed to the Telemetry API.
    TelemetrySubscribed,
    /// A runtime or extension called `/next`.
    Next,
    /// The runtime reported an init error, or an extension an init or exit error.
    ErrorReported {
        /// The `Lambda-…-Error-Type` value.
        error_type: String,
    },
    /// The runtime's first `/next` (`platform.initRuntimeDone`).
    RuntimeInitDone,
    /// Init ended: the runtime and every extension called `/next`.
    InitDone {
        /// `success` or `error`.
        status: String,
    },
    /// An invocation began (`platform.start`).
    InvokeStart,
    /// The runtime received the event.
    EventDelivered,
    /// An extension received an event.
    ExtensionEvent {
        /// Which.
        event: ExtensionEventKind,
    },
    /// The runtime posted a response.
    Response {
        /// Its size.
        bytes: usize,
    },
    /// The runtime posted an error.
    FunctionError {
        /// Its error type.
        error_type: String,
    },
    /// The function's part ended (`platform.runtimeDone`).
    RuntimeDone {
        /// `success`, `error`, `timeout` or `failure`.
        status: String,
    },
    /// The invocation ended: every INVOKE extension called `/next` again (or it failed).
    InvokeEnd {
        /// The report status.
        status: String,
    },
    /// The function's memory went over the configured size.
    OutOfMemory {
        /// Resident set size seen, in KiB.
        rss_kib: u64,
    },
    /// A Telemetry API batch was sent (or dropped on purpose).
    TelemetryBatch {
        /// Records in the batch.
        records: usize,
        /// The subscriber answered 2xx.
        delivered: bool,
        /// Dropped by fault injection (never sent).
        dropped: bool,
    },
    /// Reset or retirement began; SHUTDOWN goes to extensions.
    ShutdownStart {
        /// The reason given to extensions.
        reason: String,
    },
    /// Every process of the sandbox is gone.
    ShutdownEnd,
}

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEvent {
    /// Time since the platform was built.
    pub at: Duration,
    /// What happened.
    pub kind: EventKind,
    /// The invocation it belongs to, if any.
    pub request_id: Option<String>,
    /// Who.
    pub actor: Actor,
}

/// The recorded events, in order.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// All events.
    pub events: Vec<TimelineEvent>,
}

impl Timeline {
    /// Events matching a predicate.
    pub fn filter<'a>(
        &'a self,
        mut pred: impl FnMut(&TimelineEvent) -> bool + 'a,
    ) -> impl Iterator<Item = &'a TimelineEvent> + 'a {
        self.events.iter().filter(move |e| pred(e))
    }

    /// The first event of an actor matching a predicate on its kind.
    pub fn first(
        &self,
        actor: &Actor,
        pred: impl Fn(&EventKind) -> bool,
    ) -> Option<&TimelineEvent> {
        self.events
            .iter()
            .find(|e| &e.actor == actor && pred(&e.kind))
    }

    /// Extension init time of every cold start: process start → its first `/next`.
    pub fn extension_init_times(&self, name: &str) -> Vec<Duration> {
        let actor = Actor::Extension(name.to_string());
        let mut out = Vec::new();
        let mut spawned = None;
        for e in self.events.iter().filter(|e| e.actor == actor) {
            match e.kind {
                EventKind::Spawned { .. } => spawned = Some(e.at),
                EventKind::Next => {
                    if let Some(start) = spawned.take() {
                        out.push(e.at.saturating_sub(start));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Extension init time of the first cold start.
    pub fn extension_init_time(&self, name: &str) -> Option<Duration> {
        self.extension_init_times(name).first().copied()
    }

    /// Post-runtime duration: `platform.runtimeDone` → the extension's next `/next`.
    pub fn post_runtime_duration(&self, request_id: &str, extension: &str) -> Option<Duration> {
        let done = self.events.iter().position(|e| {
            e.request_id.as_deref() == Some(request_id)
                && matches!(e.kind, EventKind::RuntimeDone { .. })
        })?;
        let actor = Actor::Extension(extension.to_string());
        let next = self.events[done..]
            .iter()
            .find(|e| e.actor == actor && e.kind == EventKind::Next)?;
        Some(next.at.saturating_sub(self.events[done].at))
    }

    /// The extensions' names, in order of first appearance.
    pub fn extension_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for e in &self.events {
            if let Actor::Extension(n) = &e.actor
                && !names.contains(n)
            {
                names.push(n.clone());
            }
        }
        names
    }

    /// The request ids, in order.
    pub fn request_ids(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::InvokeStart)
            .filter_map(|e| e.request_id.clone())
            .collect()
    }
}

impl fmt::Display for Timeline {
    /// One line per event: `+   12.345 ms  actor  kind  [request]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.events {
            write!(
                f,
                "+{:>10.3} ms  {:<28} {:?}",
                e.at.as_secs_f64() * 1e3,
                e.actor.to_string(),
                e.kind
            )?;
            if let Some(id) = &e.request_id {
                write!(f, "  [{id}]")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ms: u64, actor: Actor, kind: EventKind, req: Option<&str>) -> TimelineEvent {
        TimelineEvent {
            at: Duration::from_millis(ms),
            kind,
            request_id: req.map(String::from),
            actor,
        }
    }

    #[test]
    fn derives_init_and_post_runtime_durations() {
        let ext = || Actor::Extension("e".into());
        let t = Timeline {
            events: vec![
                ev(1, ext(), EventKind::Spawned { pid: 9 }, None),
                ev(5, ext(), EventKind::Registered, None),
                ev(8, ext(), EventKind::Next, None),
                ev(20, Actor::Platform, EventKind::InvokeStart, Some("r1")),
                ev(
                    30,
                    ext(),
                    EventKind::ExtensionEvent {
                        event: ExtensionEventKind::Invoke,
                    },
                    Some("r1"),
                ),
                ev(
                    40,
                    Actor::Runtime,
                    EventKind::RuntimeDone {
                        status: "success".into(),
                    },
                    Some("r1"),
                ),
                ev(47, ext(), EventKind::Next, None),
            ],
        };
        assert_eq!(t.extension_init_time("e"), Some(Duration::from_millis(7)));
        assert_eq!(
            t.post_runtime_duration("r1", "e"),
            Some(Duration::from_millis(7))
        );
        assert_eq!(t.post_runtime_duration("r2", "e"), None);
        assert_eq!(t.extension_names(), vec!["e".to_string()]);
        assert_eq!(t.request_ids(), vec!["r1".to_string()]);
    }
}

/// The shared, append-only recorder behind [`Timeline`].
#[derive(Clone)]
pub(crate) struct TimelineLog {
    inner: std::sync::Arc<(std::time::Instant, std::sync::Mutex<Vec<TimelineEvent>>)>,
}

impl TimelineLog {
    pub(crate) fn new() -> Self {
        Self {
            inner: std::sync::Arc::new((
                std::time::Instant::now(),
                std::sync::Mutex::new(Vec::new()),
            )),
        }
    }

    /// Records an event now.
    pub(crate) fn record(&self, actor: Actor, kind: EventKind, request_id: Option<&str>) {
        let at = self.inner.0.elapsed();
        let event = TimelineEvent {
            at,
            kind,
            request_id: request_id.map(String::from),
            actor,
        };
        self.inner
            .1
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
    }

    /// A copy of everything so far.
    pub(crate) fn snapshot(&self) -> Timeline {
        Timeline {
            events: self
                .inner
                .1
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}
