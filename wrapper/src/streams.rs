//! Data-streams checkpoints in the wrapper: a `direction:in` checkpoint for **every** record
//! of an incoming batch, parented on that record's own pathway, and `direction:out` checkpoints
//! for what the function produces (the SDK hooks in `crate::aws`, feature `aws-sdk`, call
//! [`produce`]).
//!
//! When an invocation starts, its consume checkpoints are set from the raw event; after the
//! response, its [`Checkpoints`] go to the transport, which sends them, encoded, to
//! `POST /ddlambda/v1/checkpoints` (`wire::checkpoint`; the extension aggregates them).
//! Checkpoints are raw points: a hash and a push each; all sketching happens in the extension.
//!
//! Like the tracers, nothing happens unless `DD_DATA_STREAMS_ENABLED` is true. Tags and types
//! follow datadog-lambda: `type:sqs` with the queue ARN as topic (also for SNS→SQS and
//! EventBridge→SQS), `type:sns` with the TopicArn, `type:kinesis` with the stream ARN,
//! `type:eventbridge` with the `detail-type` (and `exchange:<DD_DSM_EXCHANGE_NAME>` when set).
//! Unlike datadog-lambda, which passes no size (0), consume checkpoints record the record's
//! payload size (body plus message attributes, or the Kinesis data), as the tracers' own SQS and
//! Kafka consumers do.
//!
//! **Which record a produce continues.** A produce is parented on the consume checkpoint of
//! the record named by [`Parent`]: the default is [`Parent::FirstRecord`] (record 0, the record
//! that also parents the trace); [`with_parent`] scopes another choice (e.g. the record being
//! processed) over a future; [`Parent::Root`] starts a new pathway. Several produces after one
//! consume all share the consume as parent, as the Python and JS tracers do.
//!
//! The wrapper's invocation ([`crate::spans::Invocation`]) carries its own state, whatever its
//! payload type: a handler whose event the wrapper cannot see still produces with checkpoints
//! and trace context (it only has no consume checkpoints). Code that drives the hooks by hand
//! uses the process-wide [`begin_invocation`] / [`finish_invocation`], or [`scope`], which keeps
//! the state in the task. A produce outside an invocation (at init) or with DSM off sets no
//! checkpoint; the SDK hooks still inject the invocation's trace context.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ddlambda_wire::SpanContext;
use ddlambda_wire::checkpoint::{Checkpoint, CheckpointBatch};
use ddlambda_wire::pathway::{self, Pathway};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The carrier key in message attributes, SNS/EventBridge envelopes and Kinesis data.
const DATADOG_KEY: &str = "_datadog";

/// Data-streams settings, read once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsConfig {
    /// `DD_DATA_STREAMS_ENABLED` (default false, as in the tracers).
    pub enabled: bool,
    /// `DD_SERVICE`, else the function name: what the hashes are computed with.
    pub service: String,
    /// `DD_ENV`, else `none` (what ddtrace hashes when no env is set).
    pub env: String,
    /// `DD_DSM_EXCHANGE_NAME`: the `exchange:` tag of EventBridge consumes.
    pub exchange: Option<String>,
}

impl StreamsConfig {
    /// From `DD_DATA_STREAMS_ENABLED`, `DD_SERVICE` / `AWS_LAMBDA_FUNCTION_NAME`, `DD_ENV`,
    /// `DD_DSM_EXCHANGE_NAME`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            enabled: var("DD_DATA_STREAMS_ENABLED")
                .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1")),
            service: var("DD_SERVICE")
                .or_else(|| var("AWS_LAMBDA_FUNCTION_NAME"))
                .unwrap_or_else(|| "unnamed-rust-function".into()),
            env: var("DD_ENV").unwrap_or_else(|| "none".into()),
            exchange: var("DD_DSM_EXCHANGE_NAME"),
        }
    }
}

/// The checkpoints one invocation set, ready for the extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoints(pub CheckpointBatch);

impl Checkpoints {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.0.checkpoints.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.checkpoints.len()
    }

    /// The body of `POST /ddlambda/v1/checkpoints`.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }
}

/// A checkpoint recorder for one service and env: computes hashes and collects points.
#[derive(Debug, Clone)]
pub struct Recorder {
    config: StreamsConfig,
    points: Vec<Checkpoint>,
}

impl Recorder {
    pub fn new(config: StreamsConfig) -> Self {
        Self {
            config,
            points: Vec::new(),
        }
    }

    /// Sets a checkpoint with these edge tags, continuing `parent` (a new pathway when `None`);
    /// returns the pathway to propagate.
    pub fn checkpoint(
        &mut self,
        parent: Option<&Pathway>,
        mut edge_tags: Vec<String>,
        payload_size: u64,
        now_ns: i64,
    ) -> Pathway {
        edge_tags.sort_unstable();
        let node = pathway::node_hash(&self.config.service, &self.config.env, &edge_tags);
        let c = Pathway::checkpoint(parent, node, now_ns);
        self.points.push(Checkpoint {
            edge_tags,
            hash: c.pathway.hash,
            parent_hash: c.parent_hash,
            timestamp_ns: now_ns,
            pathway_latency_ns: c.pathway_latency_ns,
            edge_latency_ns: c.edge_latency_ns,
            payload_size,
        });
        c.pathway
    }

    /// Consume checkpoints for every record of `event` (nothing for other events); returns
    /// each record's pathway, in record order.
    pub fn consume(&mut self, event: &Value, now_ns: i64) -> Vec<Pathway> {
        let exchange = self.config.exchange.clone();
        incoming_records(event, exchange.as_deref())
            .into_iter()
            .map(|r| self.checkpoint(r.parent.as_ref(), r.edge_tags, r.payload_size, now_ns))
            .collect()
    }

    /// Takes what was recorded.
    pub fn take(&mut self) -> Checkpoints {
        Checkpoints(CheckpointBatch {
            service: self.config.service.clone(),
            env: self.config.env.clone(),
            checkpoints: std::mem::take(&mut self.points),
        })
    }
}

/// One record's consume checkpoint input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRecord {
    /// Sorted edge tags: `direction:in`, `topic:…`, `type:…` (and `exchange:…`).
    pub edge_tags: Vec<String>,
    /// The pathway the producer propagated, if any (a bad context counts as none).
    pub parent: Option<Pathway>,
    /// Body plus attributes, in bytes.
    pub payload_size: u64,
}

/// The records of a batch event, each with its own carrier. Empty for events that are not
/// SQS, SNS, Kinesis or EventBridge deliveries.
pub fn incoming_records(event: &Value, exchange: Option<&str>) -> Vec<IncomingRecord> {
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        return records.iter().filter_map(record).collect();
    }
    if is_eventbridge(event) {
        let topic = event
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let carrier = event.get("detail").and_then(|d| d.get("_datadog"));
        let mut tags = vec![
            "direction:in".to_owned(),
            format!("topic:{topic}"),
            "type:eventbridge".to_owned(),
        ];
        if let Some(x) = exchange {
            tags.push(format!("exchange:{x}"));
            tags.sort_unstable();
        }
        return vec![IncomingRecord {
            edge_tags: tags,
            parent: carrier.and_then(carrier_pathway),
            payload_size: event.get("detail").map_or(0, json_len),
        }];
    }
    Vec::new()
}

fn record(r: &Value) -> Option<IncomingRecord> {
    let source = r
        .get("eventSource")
        .or_else(|| r.get("EventSource"))
        .and_then(Value::as_str)?;
    let str_at = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (kind, topic, parent, size) = match source {
        "aws:sqs" => {
            let (parent, size) = sqs_record(r);
            ("sqs", str_at(r, "eventSourceARN"), parent, size)
        }
        "aws:sns" => {
            let sns = r.get("Sns")?;
            let attrs = sns.get("MessageAttributes");
            let parent = attrs
                .and_then(|a| a.get("_datadog"))
                .and_then(attribute_carrier);
            let size = str_at(sns, "Message").len() as u64 + attrs.map_or(0, attributes_len);
            ("sns", str_at(sns, "TopicArn"), parent, size)
        }
        "aws:kinesis" => {
            let data = r
                .get("kinesis")
                .and_then(|k| k.get("data"))
                .and_then(Value::as_str)
                .and_then(|d| STANDARD.decode(d).ok())
                .unwrap_or_default();
            let parent = serde_json::from_slice::<WithCarrier>(&data)
                .ok()
                .and_then(|v| v.datadog?.pathway());
            (
                "kinesis",
                str_at(r, "eventSourceARN"),
                parent,
                data.len() as u64,
            )
        }
        _ => return None,
    };
    Some(IncomingRecord {
        edge_tags: vec![
            "direction:in".to_owned(),
            format!("topic:{topic}"),
            format!("type:{kind}"),
        ],
        parent,
        payload_size: size,
    })
}

/// An SQS record's carrier: its own `_datadog` attribute, else the SNS or EventBridge envelope
/// in its body.
fn sqs_record(r: &Value) -> (Option<Pathway>, u64) {
    let body = r.get("body").and_then(Value::as_str).unwrap_or("");
    let attrs = r.get("messageAttributes");
    let size = body.len() as u64 + attrs.map_or(0, attributes_len);
    if let Some(a) = attrs.and_then(|a| a.get("_datadog")) {
        return (attribute_carrier(a), size);
    }
    // Most bodies carry no context: skip parsing them.
    if !body.contains(DATADOG_KEY) {
        return (None, size);
    }
    let parent = serde_json::from_str::<Value>(body).ok().and_then(|b| {
        if b.get("Type").and_then(Value::as_str) == Some("Notification") {
            b.get("MessageAttributes")?
                .get("_datadog")
                .and_then(attribute_carrier)
        } else if is_eventbridge(&b) {
            b.get("detail")?.get("_datadog").and_then(carrier_pathway)
        } else {
            None
        }
    });
    (parent, size)
}

fn is_eventbridge(v: &Value) -> bool {
    v.get("detail-type").is_some() && v.get("source").is_some() && v.get("detail").is_some()
}

/// A `_datadog` message attribute: SQS (`dataType`, `stringValue` / `binaryValue`) or SNS
/// (`Type`, `Value`), String holding JSON or Binary holding base64 JSON.
fn attribute_carrier(a: &Value) -> Option<Pathway> {
    let text = |k: &str| a.get(k).and_then(Value::as_str);
    let kind = text("Type")
        .or_else(|| text("dataType"))
        .unwrap_or("String");
    let raw = text("Value")
        .or_else(|| text("stringValue"))
        .or_else(|| text("binaryValue"))?;
    if kind == "Binary" || text("binaryValue").is_some() {
        carrier_json(&STANDARD.decode(raw).ok()?)
    } else {
        carrier_json(raw.as_bytes())
    }
}

/// The pathway keys of a `_datadog` carrier, read without building the whole map (the other
/// keys are trace headers, skipped).
#[derive(Deserialize)]
struct CarrierKeys<'a> {
    #[serde(rename = "dd-pathway-ctx-base64", borrow, default)]
    current: Option<Cow<'a, str>>,
    #[serde(rename = "dd-pathway-ctx", borrow, default)]
    legacy: Option<Cow<'a, str>>,
}

impl CarrierKeys<'_> {
    fn pathway(&self) -> Option<Pathway> {
        Pathway::from_carrier_values(self.current.as_deref(), self.legacy.as_deref())
    }
}

/// A JSON object that may hold a `_datadog` carrier (Kinesis data).
#[derive(Deserialize)]
struct WithCarrier<'a> {
    #[serde(rename = "_datadog", borrow, default)]
    datadog: Option<CarrierKeys<'a>>,
}

/// The pathway in a `_datadog` carrier given as JSON text.
fn carrier_json(json: &[u8]) -> Option<Pathway> {
    serde_json::from_slice::<CarrierKeys>(json).ok()?.pathway()
}

/// The pathway in a decoded `_datadog` carrier object.
fn carrier_pathway(carrier: &Value) -> Option<Pathway> {
    Pathway::from_carrier(carrier.as_object()?)
}

/// Attribute names, types and values (SQS `dataType`/`stringValue`/`binaryValue`, SNS
/// `Type`/`Value`), as the tracers count a message.
fn attributes_len(attrs: &Value) -> u64 {
    let fields = |a: &Value| -> usize {
        a.as_object().map_or(0, |m| {
            m.values().filter_map(Value::as_str).map(str::len).sum()
        })
    };
    attrs.as_object().map_or(0, |m| {
        m.iter().map(|(k, v)| (k.len() + fields(v)) as u64).sum()
    })
}

fn json_len(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.len() as u64,
        other => serde_json::to_vec(other).map_or(0, |b| b.len() as u64),
    }
}

/// The record a produce continues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Parent {
    /// Record 0 of the batch — the one that parents the trace. A new pathway when the
    /// invocation consumed nothing.
    #[default]
    FirstRecord,
    /// The record at this index of the batch (a new pathway if there is no such record).
    Record(usize),
    /// Start a new pathway.
    Root,
}

/// One invocation's data-streams state. The wrapper's invocation ([`crate::spans::Invocation`])
/// owns its own, so an invocation whose spans are still on their way cannot lose its
/// checkpoints to the next one.
pub(crate) struct Invocation {
    /// `None` when DSM is off.
    recorder: Option<Recorder>,
    consumed: Vec<Pathway>,
    /// The span produces continue (`aws.lambda`), for injection.
    trace: Option<SpanContext>,
}

static CURRENT: Mutex<Option<Invocation>> = Mutex::new(None);

tokio::task_local! {
    static PARENT: Parent;
    static SCOPED: RefCell<Invocation>;
}

fn lock() -> std::sync::MutexGuard<'static, Option<Invocation>> {
    CURRENT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on the current invocation: the task's own ([`scope`]) if there is one, else the
/// wrapper's running invocation (the task's, else the latest unfinished one, for tasks the
/// handler spawned), else the process-wide one ([`begin_invocation`]).
fn with_current<R>(f: impl FnOnce(&mut Invocation) -> R) -> Option<R> {
    if SCOPED.try_with(|_| ()).is_ok() {
        return SCOPED.try_with(|cell| f(&mut cell.borrow_mut())).ok();
    }
    if let Some(invocation) = crate::handler::current().or_else(crate::spans::Invocation::latest) {
        // Resolves it first if needed (extraction is deferred off the response path).
        return invocation.with_streams(f);
    }
    lock().as_mut().map(f)
}

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The state of an invocation that starts with `event`: its consume checkpoints (when DSM is
/// on), and `trace`, the context of the span produces continue (`aws.lambda`).
pub(crate) fn new_invocation(
    config: &StreamsConfig,
    event: &Value,
    trace: Option<SpanContext>,
) -> Invocation {
    let mut recorder = config.enabled.then(|| Recorder::new(config.clone()));
    let consumed = recorder
        .as_mut()
        .map(|r| r.consume(event, now_ns()))
        .unwrap_or_default();
    Invocation {
        recorder,
        consumed,
        trace,
    }
}

/// Starts an invocation: the consume checkpoints for `event`'s records (when DSM is on), and
/// `trace`, the context of the span produces continue (`aws.lambda`). Returns how many records
/// were checkpointed.
pub fn begin_invocation(
    config: &StreamsConfig,
    event: &Value,
    trace: Option<SpanContext>,
) -> usize {
    let invocation = new_invocation(config, event, trace);
    let n = invocation.consumed.len();
    *lock() = Some(invocation);
    n
}

/// Ends the invocation: what it recorded, for the transport (empty when DSM is off).
pub fn finish_invocation() -> Checkpoints {
    lock().take().map(Invocation::finish).unwrap_or_default()
}

impl Invocation {
    /// What the invocation recorded (empty when DSM is off).
    pub(crate) fn finish(self) -> Checkpoints {
        self.recorder.map(|mut r| r.take()).unwrap_or_default()
    }
}

/// [`begin_invocation`], `fut`, [`finish_invocation`] for an invocation that lives in one task:
/// produces inside `fut` use this invocation even while others run concurrently in the same
/// process (a concurrent runtime, tests), instead of the process-wide one.
pub async fn scope<F: Future>(
    config: &StreamsConfig,
    event: &Value,
    trace: Option<SpanContext>,
    fut: F,
) -> (F::Output, Checkpoints) {
    let invocation = RefCell::new(new_invocation(config, event, trace));
    SCOPED
        .scope(invocation, async {
            let out = fut.await;
            let checkpoints = SCOPED
                .with(|cell| cell.borrow_mut().recorder.as_mut().map(Recorder::take))
                .unwrap_or_default();
            (out, checkpoints)
        })
        .await
}

/// The trace context of the current invocation's span, for injection into produced messages.
pub fn current_trace() -> Option<SpanContext> {
    with_current(|i| i.trace.clone()).flatten()
}

/// The pathways of the current invocation's records, in record order (each record's consume
/// checkpoint), for callers that pick the parent themselves.
pub fn consumed() -> Vec<Pathway> {
    with_current(|i| i.consumed.clone()).unwrap_or_default()
}

/// Runs `fut` with produces parented on `parent` instead of the default.
pub async fn with_parent<F: Future>(parent: Parent, fut: F) -> F::Output {
    PARENT.scope(parent, fut).await
}

/// Sets a `direction:out` checkpoint (`type:<kind>`, `topic:<topic>`) for a message about to
/// be sent, parented per [`Parent`] (the scoped one, else the default); returns the pathway to
/// inject, or `None` when DSM is off or no invocation is running.
pub fn produce(kind: &str, topic: &str, payload_size: u64) -> Option<Pathway> {
    let parent = PARENT.try_with(|p| *p).unwrap_or_default();
    produce_with(parent, kind, topic, payload_size)
}

/// [`produce`] with an explicit parent.
pub fn produce_with(parent: Parent, kind: &str, topic: &str, payload_size: u64) -> Option<Pathway> {
    with_current(|inv| {
        let from = match parent {
            Parent::FirstRecord => inv.consumed.first().copied(),
            Parent::Record(i) => inv.consumed.get(i).copied(),
            Parent::Root => None,
        };
        let tags = vec![
            "direction:out".to_owned(),
            format!("topic:{topic}"),
            format!("type:{kind}"),
        ];
        let recorder = inv.recorder.as_mut()?;
        Some(recorder.checkpoint(from.as_ref(), tags, payload_size, now_ns()))
    })
    .flatten()
}

/// For any transport: sets the `direction:out` checkpoint of [`produce`] and returns the
/// `_datadog` carrier to send with the message — the invocation span's trace context (Datadog
/// headers and W3C `traceparent`) and `dd-pathway-ctx-base64`. `None` when there is nothing to
/// propagate. The SDK hooks in `crate::aws` use it; call it directly for other clients.
pub fn produce_carrier(kind: &str, topic: &str, payload_size: u64) -> Option<Map<String, Value>> {
    let pathway = produce(kind, topic, payload_size);
    let mut carrier = Map::new();
    if let Some(ctx) = current_trace().filter(SpanContext::is_valid) {
        inject_trace(&ctx, &mut carrier);
    }
    if let Some(p) = &pathway {
        inject(p, &mut carrier);
    }
    (!carrier.is_empty()).then_some(carrier)
}

/// Datadog and W3C `traceparent` headers, as ddtrace's default propagation styles write them.
pub fn inject_trace(ctx: &SpanContext, carrier: &mut Map<String, Value>) {
    let mut put = |k: &str, v: String| {
        carrier.insert(k.to_owned(), Value::String(v));
    };
    put("x-datadog-trace-id", ctx.trace_id.to_string());
    put("x-datadog-parent-id", ctx.parent_id.to_string());
    if let Some(p) = ctx.sampling_priority {
        put("x-datadog-sampling-priority", p.to_string());
    }
    if let Some(o) = &ctx.origin {
        put("x-datadog-origin", o.clone());
    }
    let mut tags: Vec<String> = ctx
        .trace_id_high_hex()
        .map(|tid| format!("_dd.p.tid={tid}"))
        .into_iter()
        .collect();
    tags.extend(ctx.propagation_tags.iter().map(|(k, v)| format!("{k}={v}")));
    if !tags.is_empty() {
        put("x-datadog-tags", tags.join(","));
    }
    let sampled = u8::from(ctx.sampling_priority.unwrap_or(1) > 0);
    put(
        "traceparent",
        format!(
            "00-{:016x}{:016x}-{:016x}-{sampled:02x}",
            ctx.trace_id_high.unwrap_or(0),
            ctx.trace_id,
            ctx.parent_id
        ),
    );
}

/// Adds `dd-pathway-ctx-base64` to a `_datadog` carrier.
pub fn inject(pathway: &Pathway, carrier: &mut Map<String, Value>) {
    carrier.insert(pathway::PATHWAY_KEY.to_owned(), pathway.to_base64().into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> StreamsConfig {
        StreamsConfig {
            enabled: true,
            service: "service-1".into(),
            env: "env1".into(),
            exchange: None,
        }
    }

    const CTX: &str = "y8c/bPLAuyaAoKv++WKAoKv++WI=";
    const CTX_HASH: u64 = 2791036541516892107;

    fn datadog_json() -> String {
        json!({"x-datadog-trace-id": "1", "dd-pathway-ctx-base64": CTX}).to_string()
    }

    #[test]
    fn every_sqs_record_with_its_own_parent() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:orders";
        let sns_envelope = json!({
            "Type": "Notification",
            "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "MessageAttributes": {"_datadog": {"Type": "Binary", "Value": STANDARD.encode(datadog_json())}}
        });
        let eb_envelope = json!({
            "detail-type": "OrderPlaced", "source": "shop",
            "detail": {"id": 1, "_datadog": {"dd-pathway-ctx-base64": CTX}}
        });
        let event = json!({"Records": [
            {"eventSource": "aws:sqs", "eventSourceARN": arn, "body": "hello",
             "messageAttributes": {"_datadog": {"dataType": "String", "stringValue": datadog_json()}}},
            {"eventSource": "aws:sqs", "eventSourceARN": arn, "body": "no context", "messageAttributes": {}},
            {"eventSource": "aws:sqs", "eventSourceARN": arn, "body": sns_envelope.to_string()},
            {"eventSource": "aws:sqs", "eventSourceARN": arn, "body": eb_envelope.to_string()},
            {"eventSource": "aws:sqs", "eventSourceARN": arn, "body": "x",
             "messageAttributes": {"_datadog": {"dataType": "Binary", "binaryValue": STANDARD.encode(datadog_json())}}},
        ]});
        let recs = incoming_records(&event, None);
        assert_eq!(recs.len(), 5);
        let parents: Vec<_> = recs.iter().map(|r| r.parent.map(|p| p.hash)).collect();
        assert_eq!(
            parents,
            vec![
                Some(CTX_HASH),
                None,
                Some(CTX_HASH),
                Some(CTX_HASH),
                Some(CTX_HASH)
            ]
        );
        assert_eq!(
            recs[0].edge_tags,
            vec!["direction:in", &format!("topic:{arn}"), "type:sqs"]
        );
        let mut rec = Recorder::new(config());
        let paths = rec.consume(&event, 1_700_000_001_500_000_000);
        let out = rec.take();
        assert_eq!(out.len(), 5);
        assert_eq!(out.0.checkpoints[0].parent_hash, CTX_HASH);
        assert_eq!(out.0.checkpoints[1].parent_hash, 0);
        assert_eq!(out.0.checkpoints[0].edge_latency_ns, 1_500_000_000);
        assert_eq!(paths[0].pathway_start_ms(), 1_700_000_000_000);
        assert_eq!(paths[1].pathway_start_ms(), 1_700_000_001_500);
    }

    #[test]
    fn sns_kinesis_eventbridge() {
        let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {
            "TopicArn": "arn:aws:sns:us-east-1:1:topic", "Message": "m",
            "MessageAttributes": {"_datadog": {"Type": "String", "Value": datadog_json()}}}}]});
        let r = incoming_records(&sns, None);
        assert_eq!(r[0].parent.map(|p| p.hash), Some(CTX_HASH));
        assert_eq!(r[0].edge_tags[2], "type:sns");
        assert_eq!(r[0].edge_tags[1], "topic:arn:aws:sns:us-east-1:1:topic");

        let data = json!({"a": 1, "_datadog": {"dd-pathway-ctx-base64": CTX}}).to_string();
        let kinesis = json!({"Records": [
            {"eventSource": "aws:kinesis", "eventSourceARN": "arn:aws:kinesis:us-east-1:1:stream/s",
             "kinesis": {"data": STANDARD.encode(&data)}},
            {"eventSource": "aws:kinesis", "eventSourceARN": "arn:aws:kinesis:us-east-1:1:stream/s",
             "kinesis": {"data": STANDARD.encode("not json")}},
        ]});
        let r = incoming_records(&kinesis, None);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].parent.map(|p| p.hash), Some(CTX_HASH));
        assert_eq!(r[0].payload_size, data.len() as u64);
        assert_eq!(r[1].parent, None);

        let eb = json!({"detail-type": "OrderPlaced", "source": "shop",
            "detail": {"_datadog": {"dd-pathway-ctx-base64": CTX}}});
        let r = incoming_records(&eb, Some("orders-bus"));
        assert_eq!(
            r[0].edge_tags,
            vec![
                "direction:in",
                "exchange:orders-bus",
                "topic:OrderPlaced",
                "type:eventbridge"
            ]
        );
        assert_eq!(r[0].parent.map(|p| p.hash), Some(CTX_HASH));
        assert!(incoming_records(&json!({"httpMethod": "GET"}), None).is_empty());
    }

    #[test]
    fn produce_parents_and_lifecycle() {
        // Process-wide state: one test drives it end to end.
        let event = json!({"Records": [
            {"eventSource": "aws:sqs", "eventSourceARN": "arn:q", "body": "a", "messageAttributes": {}},
            {"eventSource": "aws:sqs", "eventSourceARN": "arn:q", "body": "b",
             "messageAttributes": {"_datadog": {"dataType": "String", "stringValue": datadog_json()}}},
        ]});
        assert_eq!(produce("sqs", "q", 1), None, "no invocation");
        assert_eq!(
            begin_invocation(&config(), &event, Some(SpanContext::new(5, 6))),
            2
        );
        assert_eq!(current_trace().map(|c| c.parent_id), Some(6));
        let records = consumed();
        let a = produce("sqs", "out", 10).unwrap();
        let b = produce_with(Parent::Record(1), "sqs", "out", 10).unwrap();
        let c = produce_with(Parent::Root, "sqs", "out", 10).unwrap();
        let d = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(with_parent(Parent::Record(1), async {
                produce("sqs", "out", 10)
            }))
            .unwrap();
        assert_eq!(b.hash, d.hash);
        assert_ne!(a.hash, b.hash);
        assert_eq!(b.pathway_start_ns, records[1].pathway_start_ns);
        let sent = finish_invocation();
        assert_eq!(sent.len(), 6);
        let cps = &sent.0.checkpoints;
        assert_eq!(cps[2].parent_hash, records[0].hash);
        assert_eq!(cps[3].parent_hash, records[1].hash);
        assert_eq!(cps[4].parent_hash, 0);
        assert_eq!(c.pathway_start_ns, c.edge_start_ns);
        assert_eq!(
            cps[2].edge_tags,
            vec!["direction:out", "topic:out", "type:sqs"]
        );
        assert!(finish_invocation().is_empty());
        let body = sent.encode();
        assert_eq!(CheckpointBatch::decode(&body).unwrap(), sent.0);

        // A scoped invocation is its own, whatever the process-wide one does meanwhile.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (p, scoped) = rt.block_on(scope(&config(), &event, None, async {
            begin_invocation(&config(), &json!({}), None);
            produce("sqs", "scoped", 1)
        }));
        assert_eq!(
            p.map(|p| p.hash),
            scoped.0.checkpoints.last().map(|c| c.hash)
        );
        assert_eq!(scoped.len(), 3, "2 consumes + 1 produce");
        assert_eq!(scoped.0.checkpoints[2].parent_hash, records[0].hash);
        assert!(finish_invocation().is_empty());

        let off = StreamsConfig {
            enabled: false,
            ..config()
        };
        assert_eq!(begin_invocation(&off, &event, None), 0);
        assert_eq!(produce("sqs", "q", 1), None);
        assert!(finish_invocation().is_empty());
    }
}
