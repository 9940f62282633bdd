//! The Telemetry API: subscriptions, the records of the current sandbox, and delivery.

mod deliver;
mod record;

pub(crate) use record::ms;
pub use record::{Category, Record};

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::config::TelemetryFaults;
use crate::timeline::{Actor, TimelineLog};

/// Records kept for subscribers that arrive after they were emitted (Lambda replays init
/// records to extensions that subscribe during init). Bounded so a chatty function cannot grow
/// it without end.
const HISTORY_LIMIT: usize = 10_000;

/// A validated subscription request.
#[derive(Clone, Debug)]
pub struct Subscription {
    /// The subscriber's name (its extension).
    pub name: String,
    /// Where batches go: the loopback port and the request path.
    pub port: u16,
    /// The request path the subscriber named.
    pub path: String,
    /// The Host header the subscriber named.
    pub host: String,
    /// Record categories wanted.
    pub categories: Vec<Category>,
    /// `maxItems`.
    pub max_items: usize,
    /// `maxBytes`.
    pub max_bytes: usize,
    /// `timeoutMs`.
    pub timeout: std::time::Duration,
}

enum Command {
    Record(Arc<Record>),
    Flush(oneshot::Sender<()>),
}

struct Subscriber {
    categories: Vec<Category>,
    tx: mpsc::UnboundedSender<Command>,
}

/// Fan-out of one sandbox's records to its subscribers.
#[derive(Default)]
pub(crate) struct Hub {
    history: Vec<Arc<Record>>,
    subscribers: Vec<Subscriber>,
}

impl Hub {
    /// Sends a record to every matching subscriber and keeps it for later ones.
    pub(crate) fn emit(&mut self, record: Record) {
        let record = Arc::new(record);
        self.subscribers.retain(|s| {
            !s.categories.contains(&record.category)
                || s.tx.send(Command::Record(record.clone())).is_ok()
        });
        if self.history.len() < HISTORY_LIMIT {
            self.history.push(record);
        }
    }

    /// Starts delivering to a new subscriber, beginning with the records it missed.
    pub(crate) fn subscribe(
        &mut self,
        sub: Subscription,
        faults: TelemetryFaults,
        timeline: TimelineLog,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        for r in self
            .history
            .iter()
            .filter(|r| sub.categories.contains(&r.category))
        {
            let _ = tx.send(Command::Record(r.clone()));
        }
        self.subscribers.push(Subscriber {
            categories: sub.categories.clone(),
            tx,
        });
        let actor = Actor::Extension(sub.name.clone());
        tokio::spawn(deliver::run(sub, faults, rx, timeline, actor));
    }

    /// Asks every subscriber to send what it holds now; the receivers complete when sent.
    pub(crate) fn flush(&self) -> Vec<oneshot::Receiver<()>> {
        self.subscribers
            .iter()
            .filter_map(|s| {
                let (tx, rx) = oneshot::channel();
                s.tx.send(Command::Flush(tx)).ok().map(|_| rx)
            })
            .collect()
    }

    /// Ends the sandbox's subscriptions (their tasks deliver what they hold, then stop).
    pub(crate) fn reset(&mut self) {
        self.history.clear();
        self.subscribers.clear();
    }
}
