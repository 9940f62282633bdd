//! The state of one execution environment, shared by the API handlers and the lifecycle.
//! It lives in a `watch` channel: every change wakes whoever waits on a condition over it.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::watch;

use crate::config::ShutdownReason;

/// An event queued for an extension's `/next`.
#[derive(Clone, Debug)]
pub(crate) struct ExtensionEvent {
    pub request_id: Option<String>,
    pub body: serde_json::Value,
    pub shutdown: bool,
}

/// An invocation waiting for the runtime's `/next`.
#[derive(Clone, Debug)]
pub(crate) struct PendingInvoke {
    pub request_id: String,
    pub event: Bytes,
    pub deadline_ms: u64,
    pub trace_header: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// What the runtime posted for the current invocation.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    Response(Bytes),
    Error { error_type: String, body: Bytes },
}

/// How a process ended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(9)) => f.write_str("signal: killed"),
            (None, Some(s)) => write!(f, "signal: {s}"),
            (None, None) => f.write_str("exited"),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Runtime {
    pub pid: Option<u32>,
    /// Called `/next` at least once: its init is done.
    pub ready: bool,
    pub pending: Option<PendingInvoke>,
    /// The request id handed out and not yet answered.
    pub current: Option<String>,
    pub answer: Option<(String, Answer)>,
    pub init_error: Option<(String, Bytes)>,
    pub exited: Option<ExitInfo>,
    pub out_of_memory: bool,
    /// Peak resident set size of the function process, KiB.
    pub peak_rss_kib: u64,
}

#[derive(Debug)]
pub(crate) struct Extension {
    pub name: String,
    /// Set by register.
    pub id: Option<String>,
    /// Started by the platform from an executable; internal extensions register from the
    /// function process instead.
    pub external: bool,
    /// Set once the process runs.
    pub pid: Option<u32>,
    pub invoke: bool,
    pub shutdown: bool,
    pub account_id_feature: bool,
    /// Called `/next` at least once: its init is done.
    pub ready: bool,
    /// Holds an event it has not answered with `/next` yet.
    pub busy: bool,
    pub queue: VecDeque<ExtensionEvent>,
    pub error: Option<String>,
    pub exited: Option<ExitInfo>,
}

impl Extension {
    pub(crate) fn new(name: String, external: bool) -> Self {
        Self {
            name,
            id: None,
            external,
            pid: None,
            invoke: false,
            shutdown: false,
            account_id_feature: false,
            ready: false,
            busy: false,
            queue: VecDeque::new(),
            error: None,
            exited: None,
        }
    }

    /// Done with everything handed to it (idle in, or about to call, `/next`).
    pub(crate) fn idle(&self) -> bool {
        !self.busy && self.queue.is_empty()
    }
}

/// Lifecycle phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    /// No processes.
    #[default]
    Down,
    Init,
    Ready,
    Invoke,
    Shutdown,
}

#[derive(Debug, Default)]
pub(crate) struct Sandbox {
    /// Bumped on every reset, so that a late request from a dead sandbox changes nothing.
    pub generation: u64,
    pub phase: Phase,
    pub runtime: Runtime,
    pub extensions: Vec<Extension>,
    /// A SHUTDOWN asked for from outside, to stop what is in progress.
    pub abort: Option<ShutdownReason>,
}

impl Sandbox {
    pub(crate) fn extension_by_id(&mut self, id: &str) -> Option<&mut Extension> {
        self.extensions
            .iter_mut()
            .find(|e| e.id.as_deref() == Some(id))
    }
}

/// The shared handle.
pub(crate) struct State {
    tx: watch::Sender<Sandbox>,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            tx: watch::Sender::new(Sandbox::default()),
        }
    }

    /// Reads the state.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Sandbox) -> T) -> T {
        f(&self.tx.borrow())
    }

    /// Changes the state and wakes every waiter.
    pub(crate) fn update<T>(&self, f: impl FnOnce(&mut Sandbox) -> T) -> T {
        let mut out = None;
        self.tx.send_modify(|s| out = Some(f(s)));
        out.expect("send_modify runs its closure")
    }

    /// Waits until `f` returns `Some`. `f` may change the state only when it returns `Some`:
    /// changes made while returning `None` wake nobody.
    pub(crate) async fn wait_for<T>(&self, mut f: impl FnMut(&mut Sandbox) -> Option<T>) -> T {
        let mut rx = self.tx.subscribe();
        loop {
            let mut out = None;
            self.tx.send_if_modified(|s| {
                out = f(s);
                out.is_some()
            });
            if let Some(v) = out {
                return v;
            }
            // The sender lives as long as `self`, so this cannot fail while we are borrowed.
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
