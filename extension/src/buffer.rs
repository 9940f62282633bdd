//! The bounded store of what awaits flushing, and the wrapper's signals about invocations.
//!
//! Listeners push [`Event`]s through the [`Inbox`] trait; the flusher takes what is ready with
//! [`Buffer::take`]. Spans get their function tags on arrival (they mostly arrive after the
//! response, while the runtime is finishing), so that a flush after `runtimeDone` only encodes
//! and sends. The bound counts estimated in-memory bytes of the tagged spans (decoded spans
//! weigh more than their msgpack body); a payload that does not fit is refused whole (the
//! newest data is the one dropped, so what is already held stays consistent) and counted.
//!
//! Which invocation a span belongs to (and so its `cold_start`) is decided per trace chunk,
//! first rule that applies:
//! 1. the wrapper's request id on the payload;
//! 2. a `request_id` meta on a span of the chunk (datadog-lambda and the Node/Python tracers'
//!    Lambda integrations put it on `aws.lambda`), remembered for that trace id;
//! 3. the invocation remembered for the chunk's trace id (a partial flush, a late child);
//! 4. the chunk's start time: one invocation runs at a time, so a chunk that started before
//!    the first invocation's runtime was done is the cold start (init's or the first
//!    invocation's, however late the tracer flushed it), and one that started after belongs
//!    to the open invocation — or, while that is still the first, to a later one whose INVOKE
//!    the extension has not processed yet (a real tracer's spans can arrive before it: the
//!    runtime and the extension get their events independently).
//!
//! Rule 4 is why `cold_start` is not simply "arrived while the first invocation was open". Its
//! one blind spot: the first invocation's end is known when `runtimeDone` (delivered in
//! batches, ~25 ms late) or the wrapper's end signal arrives, so a chunk without a request id
//! that started in that gap counts as the cold start.

use std::collections::{HashMap, HashSet, VecDeque};
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use ddlambda_wire::Span;
use ddlambda_wire::invocation::{Hello, InvocationStart};
use tokio::sync::watch;

use crate::event::{Event, ForwardPayload, TracePayload, WrapperSignal};
use crate::flush::enrich::FunctionTags;
use crate::flush::stats::Counters;

/// Trace ids whose invocation is remembered (rules 2 and 3 of the module doc).
const MAX_TRACE_OWNERS: usize = 4096;
/// The span meta naming the Lambda request a tracer's span belongs to.
const REQUEST_ID_META: &str = "request_id";

/// Where listeners hand what they received.
pub trait Inbox: Send + Sync {
    /// Stores `event`, or refuses it when the buffer is full.
    fn push(&self, event: Event) -> Admission;
}

/// What happened to a pushed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accepted,
    /// Over the buffer's bound: dropped and counted.
    Dropped,
    /// Spans while `DD_TRACE_ENABLED=false`: accepted, not kept, counted.
    Disabled,
}

/// One buffered unit and the invocation it belongs to.
#[derive(Debug)]
pub struct Held {
    /// The wrapper's request id, or the invocation open when it arrived (`None`: during init).
    pub invocation: Option<String>,
    pub item: HeldItem,
    /// The estimate the bound counted.
    pub bytes: usize,
}

#[derive(Debug)]
pub enum HeldItem {
    Traces(TracePayload),
    Forward(ForwardPayload),
}

/// Which items a flush takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything (end of invocation, SHUTDOWN).
    All,
    /// All but what belongs to the open invocation before its runtime is done (a background
    /// flush must not split an invocation the wrapper is still reporting).
    Settled,
}

/// The buffer. Cheap to share (`Arc`); every method takes `&self`.
pub struct Buffer {
    cap: usize,
    trace_enabled: bool,
    counters: Arc<Counters>,
    /// Set once registration told the account id; spans pushed before are not tagged (no
    /// listener serves before that).
    tags: OnceLock<FunctionTags>,
    state: Mutex<State>,
    /// Bumped on every wrapper signal, so the lifecycle can wait for one.
    signals: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    used: usize,
    items: VecDeque<Held>,
    current: Option<String>,
    current_done: bool,
    /// The first INVOKE's request id: its spans (and init's) are the cold start.
    first: Option<String>,
    /// When the first invocation's runtime was done (ns since the epoch), see the module doc.
    first_done_ns: Option<i64>,
    /// Trace id → request id, learnt from `request_id` metas; oldest forgotten first.
    trace_owners: HashMap<u64, String>,
    trace_order: VecDeque<u64>,
    hello: Option<Hello>,
    ended: HashSet<String>,
    starts: HashMap<String, InvocationStart>,
    /// The first cold `aws.lambda` span seen (a tracer's or the wrapper's) and its request id:
    /// the cold-start span's parent when no wrapper announced one.
    first_lambda: Option<(String, LambdaSpan)>,
}

/// Where an invocation's `aws.lambda` span sits in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaSpan {
    pub trace_id: u64,
    /// High 64 bits of a 128-bit trace id (`_dd.p.tid` on the chunk).
    pub trace_id_high: Option<u64>,
    pub span_id: u64,
}

impl LambdaSpan {
    /// The `aws.lambda` span of `request_id` in `chunk`, if there.
    fn find(request_id: &str, chunk: &[Span]) -> Option<Self> {
        let span = chunk.iter().find(|s| {
            s.name == "aws.lambda"
                && s.trace_id != 0
                && s.meta.get(REQUEST_ID_META).map(String::as_str) == Some(request_id)
        })?;
        let trace_id_high = chunk
            .iter()
            .filter(|s| s.trace_id == span.trace_id)
            .find_map(|s| s.meta.get("_dd.p.tid"))
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        Some(Self {
            trace_id: span.trace_id,
            trace_id_high,
            span_id: span.span_id,
        })
    }
}

impl Buffer {
    pub fn new(cap: usize, trace_enabled: bool, counters: Arc<Counters>) -> Self {
        Self {
            cap,
            trace_enabled,
            counters,
            tags: OnceLock::new(),
            state: Mutex::new(State::default()),
            signals: watch::Sender::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes currently held.
    pub fn used(&self) -> usize {
        self.state().used
    }

    /// The bound.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The tags every span gets from now on (see the module doc).
    pub fn set_function_tags(&self, tags: FunctionTags) {
        let _ = self.tags.set(tags);
    }

    /// INVOKE: `request_id` is now the open invocation; tracer spans without a request id
    /// belong to it from now on.
    pub fn open_invocation(&self, request_id: &str) {
        let mut s = self.state();
        match &s.first {
            None => s.first = Some(request_id.to_owned()),
            // A later INVOKE: the first invocation is over, whether or not its end was seen.
            Some(first) if first != request_id && s.first_done_ns.is_none() => {
                s.first_done_ns = Some(now_ns());
            }
            Some(_) => {}
        }
        s.current = Some(request_id.to_owned());
        s.current_done = false;
        // Signals of earlier invocations are no longer waited for. The first invocation's
        // announcement stays: its telemetry, and so the cold-start span parented on it, can
        // arrive after later INVOKEs.
        let State {
            ended,
            starts,
            first,
            ..
        } = &mut *s;
        ended.retain(|r| r == request_id);
        starts.retain(|r, _| r == request_id || first.as_deref() == Some(r.as_str()));
    }

    /// The open invocation's runtime is done (`runtimeDone` or the wrapper's end signal).
    pub fn runtime_done(&self, request_id: &str) {
        let mut s = self.state();
        if s.current.as_deref() == Some(request_id) {
            s.current_done = true;
        }
        s.note_done(request_id);
    }

    /// Whether a wrapper announced it sends an end signal for every request.
    pub fn hello(&self) -> Option<Hello> {
        self.state().hello.clone()
    }

    /// Whether the wrapper's end signal for `request_id` has arrived.
    pub fn ended(&self, request_id: &str) -> bool {
        self.state().ended.contains(request_id)
    }

    /// What the wrapper announced at the start of `request_id` (for error spans and the
    /// cold-start span), while it is the open invocation or the first.
    pub fn wrapper_start(&self, request_id: &str) -> Option<InvocationStart> {
        self.state().starts.get(request_id).cloned()
    }

    /// The `aws.lambda` span of `request_id` as a tracer sent it, if it was the first
    /// invocation's (the only one remembered).
    pub fn first_lambda_span(&self, request_id: &str) -> Option<LambdaSpan> {
        match &self.state().first_lambda {
            Some((r, span)) if r == request_id => Some(*span),
            _ => None,
        }
    }

    /// Waits until the wrapper's end signal for `request_id` arrives, at most `timeout`.
    /// Returns whether it arrived.
    pub async fn wait_end(&self, request_id: &str, timeout: Duration) -> bool {
        let mut rx = self.signals.subscribe();
        let wait = async {
            loop {
                // Mark the current version seen before checking, so no signal slips between.
                rx.borrow_and_update();
                if self.ended(request_id) {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The sender lives as long as `self`: unreachable, but never spin.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// A receiver that changes on every wrapper signal.
    pub fn signals(&self) -> watch::Receiver<u64> {
        self.signals.subscribe()
    }

    /// Takes what `scope` allows, in arrival order.
    pub fn take(&self, scope: Scope) -> Vec<Held> {
        let mut s = self.state();
        let keep_current = scope == Scope::Settled && !s.current_done;
        let current = s.current.clone();
        let mut taken = Vec::with_capacity(s.items.len());
        let mut kept = VecDeque::new();
        for held in s.items.drain(..) {
            if keep_current && held.invocation.is_some() && held.invocation == current {
                kept.push_back(held);
            } else {
                taken.push(held);
            }
        }
        s.items = kept;
        s.used = s.items.iter().map(|h| h.bytes).sum();
        taken
    }

    /// Function tags and `cold_start` on every span of `payload`, per the module doc's rules.
    /// Returns the invocation the payload is held under: the first chunk's (`None`: init, or a
    /// later invocation not known yet).
    fn tag(&self, payload: &mut TracePayload) -> Option<String> {
        let (owner, colds) = {
            let mut s = self.state();
            let mut owner = None;
            let mut colds = Vec::with_capacity(payload.traces.len());
            for (i, chunk) in payload.traces.iter().enumerate() {
                let (chunk_owner, cold) = s.attribute(payload.request_id.as_deref(), chunk);
                if i == 0 {
                    owner = chunk_owner;
                }
                colds.push(cold);
            }
            if payload.traces.is_empty() {
                owner = payload.request_id.clone().or_else(|| s.current.clone());
            }
            (owner, colds)
        };
        // Outside the lock: listeners keep pushing while a big payload is tagged.
        if let Some(tags) = self.tags.get() {
            for (chunk, cold) in payload.traces.iter_mut().zip(colds) {
                for span in chunk {
                    tags.apply(span, cold);
                }
            }
        }
        owner
    }

    fn signal(&self, signal: WrapperSignal) {
        {
            let mut s = self.state();
            match signal {
                WrapperSignal::Hello(h) => s.hello = Some(h),
                WrapperSignal::Start(start) => {
                    s.starts.insert(start.request_id.clone(), start);
                }
                WrapperSignal::End { request_id } => {
                    s.note_done(&request_id);
                    s.ended.insert(request_id);
                }
            }
        }
        self.signals.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn admit(
        &self,
        invocation: Option<String>,
        item: HeldItem,
        bytes: usize,
        spans: u64,
    ) -> Admission {
        let mut s = self.state();
        if s.used + bytes > self.cap {
            drop(s);
            Counters::add(&self.counters.overflow_payloads, 1);
            Counters::add(&self.counters.overflow_spans, spans);
            Counters::add(&self.counters.overflow_bytes, bytes as u64);
            return Admission::Dropped;
        }
        s.used += bytes;
        s.items.push_back(Held {
            invocation,
            item,
            bytes,
        });
        Admission::Accepted
    }
}

impl Inbox for Buffer {
    fn push(&self, event: Event) -> Admission {
        match event {
            Event::Traces(payload) => {
                let end = payload
                    .end_of_invocation
                    .then(|| payload.request_id.clone())
                    .flatten();
                let spans = payload.traces.iter().map(Vec::len).sum::<usize>() as u64;
                let admission = if !self.trace_enabled {
                    Counters::add(&self.counters.disabled_spans, spans);
                    Admission::Disabled
                } else {
                    let mut payload = payload;
                    let owner = self.tag(&mut payload);
                    let bytes = trace_payload_bytes(&payload);
                    self.admit(owner, HeldItem::Traces(payload), bytes, spans)
                };
                // The end signal counts even when the spans themselves were dropped: nothing
                // more is coming, so nobody should wait for it.
                if let Some(request_id) = end {
                    self.signal(WrapperSignal::End { request_id });
                }
                admission
            }
            Event::Forward(payload) => {
                let bytes = payload.body.len()
                    + payload.path.len()
                    + payload
                        .headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 48)
                        .sum::<usize>()
                    + size_of::<ForwardPayload>();
                let invocation = payload
                    .request_id
                    .clone()
                    .or_else(|| self.state().current.clone());
                self.admit(invocation, HeldItem::Forward(payload), bytes, 0)
            }
            Event::Wrapper(signal) => {
                self.signal(signal);
                Admission::Accepted
            }
        }
    }
}

impl State {
    /// The invocation `chunk` belongs to (if known) and whether that is the cold start.
    fn attribute(
        &mut self,
        wrapper_request: Option<&str>,
        chunk: &[Span],
    ) -> (Option<String>, bool) {
        // 0 is no trace id (a tracer bug, or a test's bare span): never shared.
        let trace_id = chunk.first().map(|s| s.trace_id).filter(|id| *id != 0);
        let from_meta = chunk
            .iter()
            .find_map(|s| s.meta.get(REQUEST_ID_META).filter(|v| !v.is_empty()));
        let known = wrapper_request
            .map(str::to_owned)
            .or_else(|| from_meta.cloned());
        if let (Some(id), Some(rid)) = (trace_id, &known) {
            self.remember_trace(id, rid);
        }
        let owner = known.or_else(|| trace_id.and_then(|id| self.trace_owners.get(&id).cloned()));
        if let Some(owner) = owner {
            // Before the first INVOKE is processed, a known request can only be the first.
            let cold = self.first.as_ref().is_none_or(|f| *f == owner);
            if cold && self.first_lambda.is_none() {
                self.first_lambda = LambdaSpan::find(&owner, chunk).map(|s| (owner.clone(), s));
            }
            return (Some(owner), cold);
        }
        let Some(first) = &self.first else {
            // Before the first INVOKE: init, which is the cold start.
            return (self.current.clone(), true);
        };
        let started = chunk.iter().map(|s| s.start).min().unwrap_or(i64::MAX);
        match self.first_done_ns {
            // Init's or the first invocation's, however late it arrives.
            None => (self.current.clone(), true),
            Some(done) if started <= done => (Some(first.clone()), true),
            // A later invocation whose INVOKE is not processed yet (module doc, rule 4).
            Some(_) if self.current.as_ref() == Some(first) => (None, false),
            Some(_) => (self.current.clone(), false),
        }
    }

    fn remember_trace(&mut self, trace_id: u64, request_id: &str) {
        if self.trace_owners.contains_key(&trace_id) {
            return;
        }
        if self.trace_order.len() >= MAX_TRACE_OWNERS
            && let Some(old) = self.trace_order.pop_front()
        {
            self.trace_owners.remove(&old);
        }
        self.trace_order.push_back(trace_id);
        self.trace_owners.insert(trace_id, request_id.to_owned());
    }

    /// Records when the first invocation's runtime was done (the first signal counts).
    fn note_done(&mut self, request_id: &str) {
        if self.first_done_ns.is_none() && self.first.as_deref() == Some(request_id) {
            self.first_done_ns = Some(now_ns());
        }
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// In-memory size of a decoded payload, never less than its body.
fn trace_payload_bytes(p: &TracePayload) -> usize {
    let spans: usize = p.traces.iter().flatten().map(span_bytes).sum();
    let overhead = size_of::<TracePayload>()
        + p.traces.len() * size_of::<Vec<Span>>()
        + p.lang.len()
        + p.lang_version.len()
        + p.tracer_version.len();
    (spans + overhead).max(p.body_bytes)
}

/// Estimated heap + inline size of one span, erring high: the bound is a promise about RSS.
/// A `BTreeMap<String, _>` entry costs about twice its inline size in node space (nodes run
/// half full), and every `String` allocation carries the allocator's header and rounding.
pub fn span_bytes(s: &Span) -> usize {
    const ALLOC: usize = 32;
    const ENTRY: usize = 4 * size_of::<String>() + 2 * ALLOC;
    size_of::<Span>()
        + ALLOC
        + s.service.len()
        + s.name.len()
        + s.resource.len()
        + s.r#type.len()
        + 4 * ALLOC
        + s.meta
            .iter()
            .map(|(k, v)| k.len() + v.len() + ENTRY)
            .sum::<usize>()
        + s.metrics.keys().map(|k| k.len() + ENTRY).sum::<usize>()
        + s.span_links.len() * 128
        + s.meta_struct
            .iter()
            .map(|(k, v)| k.len() + v.len() + ENTRY)
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ddlambda_wire::invocation::Hello;

    fn payload(request_id: Option<&str>, spans: usize, end: bool) -> Event {
        Event::Traces(TracePayload {
            request_id: request_id.map(str::to_owned),
            end_of_invocation: end,
            traces: vec![
                (0..spans)
                    .map(|i| Span {
                        name: "op".into(),
                        span_id: i as u64 + 1,
                        start: now_ns(),
                        ..Span::default()
                    })
                    .collect(),
            ],
            ..TracePayload::default()
        })
    }

    fn buffer(cap: usize) -> (Buffer, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (Buffer::new(cap, true, counters.clone()), counters)
    }

    #[test]
    fn overflow_drops_the_newest_and_counts_it() {
        let (b, c) = buffer(4096);
        let mut accepted = 0;
        let mut dropped = 0;
        for _ in 0..100 {
            match b.push(payload(None, 3, false)) {
                Admission::Accepted => accepted += 1,
                Admission::Dropped => dropped += 1,
                Admission::Disabled => unreachable!(),
            }
        }
        assert!(accepted > 0 && dropped > 0);
        assert!(b.used() <= 4096);
        let snap = c.snapshot();
        assert_eq!(snap.overflow_payloads, dropped);
        assert_eq!(snap.overflow_spans, 3 * dropped);
        let taken = b.take(Scope::All);
        assert_eq!(taken.len() as u64, accepted);
        assert_eq!(b.used(), 0);
        // Room again after a flush.
        assert_eq!(b.push(payload(None, 3, false)), Admission::Accepted);
    }

    #[test]
    fn spans_belong_to_their_request_or_the_open_invocation() {
        let (b, _) = buffer(1 << 20);
        b.push(payload(None, 1, false));
        b.open_invocation("r1");
        b.push(payload(None, 1, false));
        b.push(payload(Some("r0"), 1, false));
        let owners: Vec<_> = b
            .take(Scope::All)
            .into_iter()
            .map(|h| h.invocation)
            .collect();
        assert_eq!(
            owners,
            vec![None, Some("r1".to_owned()), Some("r0".to_owned())]
        );
    }

    #[test]
    fn settled_scope_holds_the_running_invocation() {
        let (b, _) = buffer(1 << 20);
        b.open_invocation("r1");
        b.push(payload(Some("r1"), 2, false));
        b.push(payload(Some("old"), 2, false));
        let taken = b.take(Scope::Settled);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].invocation.as_deref(), Some("old"));
        assert!(b.used() > 0);
        b.runtime_done("r1");
        assert_eq!(b.take(Scope::Settled).len(), 1);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn spans_are_tagged_on_arrival_with_their_cold_start() {
        let (b, _) = buffer(1 << 20);
        b.set_function_tags(FunctionTags::default());
        b.push(payload(None, 1, false));
        b.open_invocation("r1");
        b.push(payload(None, 1, false));
        b.open_invocation("r2");
        b.push(payload(Some("r1"), 1, false));
        b.push(payload(None, 1, false));
        let colds: Vec<String> = b
            .take(Scope::All)
            .into_iter()
            .map(|h| match h.item {
                HeldItem::Traces(p) => p.traces[0][0].meta["cold_start"].clone(),
                HeldItem::Forward(_) => unreachable!(),
            })
            .collect();
        assert_eq!(colds, ["true", "true", "true", "false"]);
    }

    fn chunk(trace_id: u64, start: i64, request_id: Option<&str>) -> Vec<Span> {
        let mut span = Span {
            name: "op".into(),
            trace_id,
            span_id: trace_id + 1,
            start,
            ..Span::default()
        };
        if let Some(r) = request_id {
            span.meta.insert(REQUEST_ID_META.into(), r.into());
        }
        vec![span]
    }

    fn push_chunk(b: &Buffer, chunk: Vec<Span>) -> (Option<String>, String) {
        b.push(Event::Traces(TracePayload {
            traces: vec![chunk],
            ..TracePayload::default()
        }));
        let mut taken = b.take(Scope::All);
        assert_eq!(taken.len(), 1);
        let held = taken.remove(0);
        match held.item {
            HeldItem::Traces(p) => (held.invocation, p.traces[0][0].meta["cold_start"].clone()),
            HeldItem::Forward(_) => unreachable!(),
        }
    }

    /// The race a real tracer shows: invocation 2's spans reach the buffer before the
    /// extension has processed INVOKE 2, while invocation 1 is still the open one.
    #[test]
    fn spans_arriving_before_their_invoke_is_processed_are_not_the_cold_start() {
        let (b, _) = buffer(1 << 20);
        b.set_function_tags(FunctionTags::default());
        b.open_invocation("r1");
        let r1 = |t| push_chunk(&b, chunk(t, now_ns(), Some("r1")));
        assert_eq!(r1(10), (Some("r1".into()), "true".into()));
        b.runtime_done("r1");
        // Invocation 2 runs; INVOKE 2 is not processed yet. Its root carries its request id.
        let r2 = push_chunk(&b, chunk(20, now_ns(), Some("r2")));
        assert_eq!(r2, (Some("r2".into()), "false".into()));
        // A chunk of the same trace without the meta (a partial flush) follows its trace.
        assert_eq!(
            push_chunk(&b, chunk(20, 0, None)),
            (Some("r2".into()), "false".into())
        );
        // A chunk with nothing to go by, started after invocation 1 was done.
        let late = push_chunk(&b, chunk(30, now_ns() + 1, None));
        assert_eq!(late, (None, "false".into()));
        // Invocation 1's own late chunks stay the cold start.
        assert_eq!(
            push_chunk(&b, chunk(10, 0, None)),
            (Some("r1".into()), "true".into())
        );
        assert_eq!(
            push_chunk(&b, chunk(40, 1, None)),
            (Some("r1".into()), "true".into()),
            "started before invocation 1 was done"
        );
        // Once INVOKE 2 is processed: its chunks are warm; invocation 1's stay cold.
        b.open_invocation("r2");
        assert_eq!(
            push_chunk(&b, chunk(50, now_ns(), None)),
            (Some("r2".into()), "false".into())
        );
        assert_eq!(
            push_chunk(&b, chunk(60, 1, None)),
            (Some("r1".into()), "true".into()),
            "a tracer's late flush of invocation 1"
        );
    }

    #[test]
    fn disabled_traces_are_counted_not_kept() {
        let counters = Arc::new(Counters::default());
        let b = Buffer::new(1 << 20, false, counters.clone());
        assert_eq!(b.push(payload(Some("r"), 4, true)), Admission::Disabled);
        assert_eq!(counters.snapshot().disabled_spans, 4);
        assert!(b.take(Scope::All).is_empty());
        assert!(b.ended("r"), "the end signal still counts");
    }

    #[tokio::test]
    async fn waits_for_the_end_signal_bounded() {
        let (b, _) = buffer(1 << 20);
        let b = Arc::new(b);
        b.push(Event::Wrapper(WrapperSignal::Hello(Hello {
            runtime: "ddlambda-rust".into(),
            version: "0".into(),
        })));
        assert!(b.hello().is_some());
        b.open_invocation("r1");
        assert!(!b.wait_end("r1", Duration::from_millis(20)).await);
        let pusher = b.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            pusher.push(payload(Some("r1"), 1, true));
        });
        assert!(b.wait_end("r1", Duration::from_secs(10)).await);
        task.await.unwrap();
        // An end via the dedicated route works too.
        b.open_invocation("r2");
        b.push(Event::Wrapper(WrapperSignal::End {
            request_id: "r2".into(),
        }));
        assert!(b.wait_end("r2", Duration::from_millis(1)).await);
        assert!(!b.ended("r1"), "signals of earlier invocations are pruned");
    }
}
