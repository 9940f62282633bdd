//! The processor over recorded telemetry (the Telemetry API's documented record shapes, as
//! Lambda sends them with schema 2022-12-13).

use std::collections::BTreeMap;

use ddlambda_wire::invocation::InvocationStart;
use serde_json::json;

use super::*;
use crate::aggregate::metrics::sketches::SketchSeries;
use crate::buffer::{HeldItem, Scope};
use crate::event::WrapperSignal;
use crate::flush::stats::Counters;

struct Fixture {
    telemetry: InvocationTelemetry,
    metrics: Arc<MetricsAggregator>,
    buffer: Arc<Buffer>,
}

fn fixture(metrics_on: bool) -> Fixture {
    let metrics = Arc::new(MetricsAggregator::default());
    let buffer = Arc::new(Buffer::new(1 << 20, true, Arc::new(Counters::default())));
    let telemetry = InvocationTelemetry::new(
        EnhancedConfig {
            metrics: metrics_on,
            process_metrics: false,
            function_name: "my-fn".into(),
            architecture: "arm64".into(),
            tags: vec!["functionname:my-fn".into(), "region:eu-west-1".into()],
            proc_scope: ProcScope::default(),
        },
        metrics.clone(),
        buffer.clone(),
    );
    Fixture {
        telemetry,
        metrics,
        buffer,
    }
}

/// Enhanced and process metrics on, the samplers reading this test process.
fn process_fixture() -> Fixture {
    let metrics = Arc::new(MetricsAggregator::default());
    let buffer = Arc::new(Buffer::new(1 << 20, true, Arc::new(Counters::default())));
    let telemetry = InvocationTelemetry::new(
        EnhancedConfig {
            metrics: true,
            process_metrics: true,
            function_name: "f".into(),
            architecture: "x86_64".into(),
            tags: Vec::new(),
            proc_scope: ProcScope {
                pids: Some(vec![std::process::id()]),
                ..ProcScope::default()
            },
        },
        metrics.clone(),
        buffer.clone(),
    );
    Fixture {
        telemetry,
        metrics,
        buffer,
    }
}

impl Fixture {
    fn feed(&self, records: Value) {
        for r in records.as_array().into_iter().flatten() {
            self.telemetry.on_platform_record(r);
        }
    }

    /// Metric name (without prefix) → (tags of its first context, sum, count over contexts).
    fn metrics(&self) -> BTreeMap<String, (Vec<String>, f64, u64)> {
        let (_, sketches) = self.metrics.take();
        let mut out: BTreeMap<String, (Vec<String>, f64, u64)> = BTreeMap::new();
        for s in sketches.into_iter().flat_map(|b| b.sketches) {
            let s: SketchSeries = s;
            let name = s.metric.trim_start_matches(PREFIX).to_owned();
            let e = out.entry(name).or_insert_with(|| (s.tags.clone(), 0.0, 0));
            for p in &s.points {
                e.1 += p.sketch.sum;
                e.2 += p.sketch.count;
            }
        }
        out
    }

    fn spans(&self) -> Vec<(Option<String>, bool, Span)> {
        self.buffer
            .take(Scope::All)
            .into_iter()
            .flat_map(|h| match h.item {
                HeldItem::Traces(p) => {
                    let end = p.end_of_invocation;
                    p.traces
                        .into_iter()
                        .flatten()
                        .map(|s| (h.invocation.clone(), end, s))
                        .collect::<Vec<_>>()
                }
                HeldItem::Forward(_) => Vec::new(),
            })
            .collect()
    }
}

fn cold_start_records() -> Value {
    json!([
        {"time": "2026-11-23T10:00:00.000Z", "type": "platform.initStart",
         "record": {"initializationType": "on-demand", "phase": "init", "runtimeVersion": "provided.al2023"}},
        {"time": "2026-11-23T10:00:00.180Z", "type": "platform.initRuntimeDone",
         "record": {"initializationType": "on-demand", "phase": "init", "status": "success"}},
        {"time": "2026-11-23T10:00:00.181Z", "type": "platform.initReport",
         "record": {"initializationType": "on-demand", "phase": "init", "status": "success",
                    "metrics": {"durationMs": 181.5}}},
        {"time": "2026-11-23T10:00:00.200Z", "type": "platform.start",
         "record": {"requestId": "r1", "version": "$LATEST"}},
        {"time": "2026-11-23T10:00:00.450Z", "type": "platform.runtimeDone",
         "record": {"requestId": "r1", "status": "success",
                    "metrics": {"durationMs": 250.0, "producedBytes": 42}}},
        {"time": "2026-11-23T10:00:00.470Z", "type": "platform.report",
         "record": {"requestId": "r1", "status": "success",
                    "metrics": {"durationMs": 268.0, "billedDurationMs": 269, "memorySizeMB": 512,
                                "maxMemoryUsedMB": 61, "initDurationMs": 181.5}}}
    ])
}

#[test]
fn a_cold_start_yields_every_enhanced_metric_with_its_derivation() {
    let f = fixture(true);
    f.feed(cold_start_records());
    let m = f.metrics();
    let value = |name: &str| m.get(name).map(|(_, sum, _)| *sum);
    assert_eq!(value("invocations"), Some(1.0));
    assert_eq!(value("init_duration"), Some(0.1815));
    assert_eq!(value("runtime_duration"), Some(250.0));
    assert_eq!(value("produced_bytes"), Some(42.0));
    assert_eq!(value("duration"), Some(0.268));
    assert_eq!(value("billed_duration"), Some(0.269));
    assert_eq!(value("post_runtime_duration"), Some(18.0));
    assert_eq!(value("max_memory_used"), Some(61.0));
    assert_eq!(value("memorysize"), Some(512.0));
    assert_eq!(
        value("estimated_cost"),
        Some(cost::estimated_cost(269.0, 512.0, "arm64"))
    );
    for absent in ["errors", "timeouts", "out_of_memory"] {
        assert!(!m.contains_key(absent), "{absent}");
    }
    let (tags, _, count) = &m["invocations"];
    assert_eq!(*count, 1);
    assert_eq!(
        tags,
        &["cold_start:true", "functionname:my-fn", "region:eu-west-1"]
    );
    assert!(
        m["init_duration"]
            .0
            .contains(&"init_type:on-demand".to_owned())
    );
}

#[test]
fn the_cold_start_span_hangs_under_the_wrappers_announced_span() {
    let f = fixture(true);
    f.buffer.open_invocation("r1");
    f.buffer
        .push(Event::Wrapper(WrapperSignal::Start(InvocationStart {
            request_id: "r1".into(),
            trace_id: 7,
            span_id: 8,
            start_ns: 1,
            cold_start: true,
            ..InvocationStart::default()
        })));
    f.feed(cold_start_records());
    let spans = f.spans();
    assert_eq!(spans.len(), 1);
    let (inv, end, s) = &spans[0];
    assert_eq!(inv.as_deref(), Some("r1"));
    // The runtime is alive and still sending: no end signal on its behalf.
    assert!(!end);
    assert_eq!(s.name, "aws.lambda.cold_start");
    assert_eq!((s.trace_id, s.parent_id), (7, 8));
    assert_eq!(
        s.start,
        parse_rfc3339_ns("2026-11-23T10:00:00Z").unwrap_or(0)
    );
    assert_eq!(s.duration, 181_500_000);
}

fn hello() -> Event {
    Event::Wrapper(WrapperSignal::Hello(ddlambda_wire::invocation::Hello {
        runtime: "ddlambda-rust".into(),
        version: "0".into(),
    }))
}

/// The first invocation's announcement: a 128-bit trace.
fn first_start() -> Event {
    Event::Wrapper(WrapperSignal::Start(InvocationStart {
        request_id: "r1".into(),
        trace_id: 7,
        trace_id_high: Some(0x6900_0000_0000_00ab),
        span_id: 8,
        sampling_priority: Some(1),
        start_ns: 1,
        cold_start: true,
        ..InvocationStart::default()
    }))
}

/// The wrapper's spans for `id`, carrying the end marker (what makes the lifecycle flush).
fn wrapper_end(id: &str) -> Event {
    Event::Traces(TracePayload {
        request_id: Some(id.to_owned()),
        end_of_invocation: true,
        ..TracePayload::default()
    })
}

/// The cold-start spans in the buffer, with the invocation they are held under.
fn cold_start_spans(f: &Fixture) -> Vec<(Option<String>, Span)> {
    f.spans()
        .into_iter()
        .filter(|(_, _, s)| s.name == "aws.lambda.cold_start")
        .map(|(inv, _, s)| (inv, s))
        .collect()
}

fn assert_under_the_first_announcement(spans: &[(Option<String>, Span)]) {
    assert_eq!(spans.len(), 1, "{spans:?}");
    let (inv, s) = &spans[0];
    assert_eq!(inv.as_deref(), Some("r1"));
    assert_eq!((s.trace_id, s.parent_id), (7, 8), "{s:?}");
    assert_eq!(s.meta["_dd.p.tid"], "69000000000000ab");
}

/// What `ddlambda demo` showed with several invocations: the wrapper's end signal lets the
/// lifecycle flush and take the next INVOKE before the first invocation's `runtimeDone`
/// (delivered in batches, late) has been processed.
#[test]
fn the_cold_start_span_stays_under_the_first_invocation_when_its_telemetry_comes_after_the_next_invoke()
 {
    let f = fixture(true);
    f.buffer.push(hello());
    let records = cold_start_records();
    let records = records.as_array().cloned().unwrap_or_default();
    f.feed(json!(records[..3]));
    f.buffer.open_invocation("r1");
    f.telemetry.on_invoke("r1");
    f.buffer.push(first_start());
    f.buffer.push(wrapper_end("r1"));
    f.buffer.runtime_done("r1");
    f.telemetry.on_runtime_done("r1");
    f.buffer.open_invocation("r2");
    f.telemetry.on_invoke("r2");
    f.feed(json!(records[3..]));
    for id in ["r2", "r3"] {
        f.buffer.push(wrapper_end(id));
        f.telemetry.on_runtime_done(id);
        f.feed(warm(id, "success", None, 50));
        f.buffer.open_invocation("r3");
        f.telemetry.on_invoke("r3");
    }
    assert_under_the_first_announcement(&cold_start_spans(&f));
}

/// The announcement travels on its own connection, the telemetry on another: it may come
/// after the first invocation's whole telemetry, and still before the end signal (the wrapper
/// sends both in order on one connection).
#[test]
fn the_cold_start_span_waits_for_an_announcement_that_comes_after_the_telemetry() {
    let f = fixture(true);
    f.buffer.push(hello());
    f.buffer.open_invocation("r1");
    f.telemetry.on_invoke("r1");
    f.feed(cold_start_records());
    f.buffer.push(first_start());
    f.buffer.push(wrapper_end("r1"));
    f.telemetry.on_runtime_done("r1");
    assert_under_the_first_announcement(&cold_start_spans(&f));
}

/// Without a wrapper, a tracer's `aws.lambda` span carrying the first request id is the
/// parent, even when it arrives after the first invocation's telemetry.
#[test]
fn without_a_wrapper_a_tracers_aws_lambda_span_is_the_parent() {
    let f = fixture(true);
    f.buffer.open_invocation("r1");
    f.telemetry.on_invoke("r1");
    f.feed(cold_start_records());
    f.telemetry.on_runtime_done("r1");
    assert!(
        cold_start_spans(&f).is_empty(),
        "the tracer's spans may still come"
    );
    let root = Span {
        name: "aws.sqs".into(),
        trace_id: 70,
        span_id: 71,
        meta: BTreeMap::from([("_dd.p.tid".into(), "69000000000000ab".into())]),
        ..Span::default()
    };
    let lambda = Span {
        name: "aws.lambda".into(),
        trace_id: 70,
        span_id: 72,
        parent_id: 71,
        meta: BTreeMap::from([("request_id".into(), "r1".into())]),
        ..Span::default()
    };
    f.buffer.push(Event::Traces(TracePayload {
        traces: vec![vec![root, lambda]],
        ..TracePayload::default()
    }));
    f.buffer.open_invocation("r2");
    f.telemetry.on_invoke("r2");
    let spans = cold_start_spans(&f);
    assert_eq!(spans.len(), 1, "{spans:?}");
    let s = &spans[0].1;
    assert_eq!((s.trace_id, s.parent_id), (70, 72));
    assert_eq!(s.meta["_dd.p.tid"], "69000000000000ab");
}

/// With neither a wrapper nor a tracer's span, the cold-start span is the root of a trace of
/// its own once the first invocation is over (here: SHUTDOWN).
#[test]
fn with_nothing_to_hang_under_the_cold_start_span_is_a_root_at_the_end() {
    let f = fixture(true);
    f.buffer.open_invocation("r1");
    f.telemetry.on_invoke("r1");
    f.feed(cold_start_records());
    f.telemetry.on_runtime_done("r1");
    assert!(cold_start_spans(&f).is_empty());
    f.telemetry.shutdown();
    let spans = cold_start_spans(&f);
    assert_eq!(spans.len(), 1);
    let s = &spans[0].1;
    assert_ne!(s.trace_id, 0);
    assert_eq!(s.parent_id, 0);
    assert!(!s.meta.contains_key("_dd.p.tid"));
}

/// A wrapper said hello but its announcement never came: the span waits until the first
/// invocation is over for good (here: its end signal), then stands alone rather than be lost.
#[test]
fn a_missing_announcement_is_waited_for_until_the_first_invocation_is_over() {
    let f = fixture(true);
    f.buffer.push(hello());
    f.buffer.open_invocation("r1");
    f.telemetry.on_invoke("r1");
    f.feed(cold_start_records());
    assert!(
        cold_start_spans(&f).is_empty(),
        "the announcement may still come"
    );
    f.buffer.push(wrapper_end("r1"));
    f.telemetry.on_runtime_done("r1");
    let spans = cold_start_spans(&f);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].1.parent_id, 0);
    // Written once.
    f.telemetry.on_invoke("r2");
    f.telemetry.shutdown();
    assert!(cold_start_spans(&f).is_empty());
}

/// A first invocation that died without an announcement: its error span is the parent.
#[test]
fn a_crashed_first_invocation_parents_the_cold_start_span_on_its_error_span() {
    let f = fixture(true);
    f.buffer.open_invocation("r1");
    let records = cold_start_records();
    let mut records = records.as_array().cloned().unwrap_or_default();
    records[4]["record"]["status"] = json!("error");
    records[4]["record"]["errorType"] = json!("Runtime.ExitError");
    f.feed(json!(records));
    let spans = f.spans();
    let error = spans.iter().find(|(_, _, s)| s.name == "aws.lambda");
    let cold = spans
        .iter()
        .find(|(_, _, s)| s.name == "aws.lambda.cold_start");
    let (Some((_, _, error)), Some((_, _, cold))) = (error, cold) else {
        panic!("{spans:?}");
    };
    assert_eq!(
        (cold.trace_id, cold.parent_id),
        (error.trace_id, error.span_id)
    );
}

fn warm(id: &str, status: &str, error_type: Option<&str>, used_mb: u64) -> Value {
    let mut done = json!({"requestId": id, "status": status,
                          "metrics": {"durationMs": 3000.0, "producedBytes": 0}});
    let mut report = json!({"requestId": id, "status": status,
                            "metrics": {"durationMs": 3001.0, "billedDurationMs": 3000,
                                        "memorySizeMB": 128, "maxMemoryUsedMB": used_mb}});
    if let Some(t) = error_type {
        done["errorType"] = json!(t);
        report["errorType"] = json!(t);
    }
    json!([
        {"time": "2026-11-23T10:01:00.000Z", "type": "platform.start", "record": {"requestId": id}},
        {"time": "2026-11-23T10:01:03.000Z", "type": "platform.runtimeDone", "record": done},
        {"time": "2026-11-23T10:01:03.010Z", "type": "platform.report", "record": report}
    ])
}

#[test]
fn a_timeout_gets_an_error_span_and_is_counted() {
    let f = fixture(true);
    f.feed(cold_start_records());
    drop(f.spans());
    f.metrics();
    f.feed(warm("r2", "timeout", None, 60));
    let m = f.metrics();
    assert_eq!(m["errors"].1, 1.0);
    assert_eq!(m["timeouts"].1, 1.0);
    assert!(!m.contains_key("out_of_memory"));
    assert!(m["timeouts"].0.contains(&"cold_start:false".to_owned()));
    let (cold, spans): (Vec<_>, Vec<_>) = f
        .spans()
        .into_iter()
        .partition(|(_, _, s)| s.name == "aws.lambda.cold_start");
    // Nothing announced r1 nor sent its span: its cold start stands alone once r2 begins.
    assert_eq!(cold.len(), 1);
    assert_eq!(cold[0].0.as_deref(), Some("r1"));
    assert_eq!(spans.len(), 1);
    let (inv, end, s) = &spans[0];
    assert_eq!(inv.as_deref(), Some("r2"));
    assert!(end);
    assert_eq!((s.name.as_str(), s.error), ("aws.lambda", 1));
    assert_eq!(s.meta["error.type"], "Timeout");
    assert_eq!(s.meta["error.message"], "Task timed out after 3.00 seconds");
    assert_eq!(s.meta["request_id"], "r2");
    assert_eq!(
        s.start,
        parse_rfc3339_ns("2026-11-23T10:01:00Z").unwrap_or(0)
    );
    assert_eq!(s.duration, 3_000_000_000);
}

#[test]
fn out_of_memory_is_counted_once_across_its_three_detectors() {
    let f = fixture(true);
    f.telemetry.invoke("r3");
    f.telemetry
        .on_function_log(Some("r3"), "fatal error: runtime: out of memory");
    f.feed(warm("r3", "error", Some("Runtime.OutOfMemory"), 128));
    let m = f.metrics();
    assert_eq!(m["out_of_memory"].1, 1.0);
    assert_eq!(m["errors"].1, 1.0);
    assert_eq!(m["invocations"].1, 1.0);
    let spans = f.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].2.meta["error.type"], "OutOfMemory");
}

#[test]
fn an_out_of_memory_line_in_a_function_log_record_counts() {
    let f = fixture(true);
    f.telemetry.invoke("r10");
    f.feed(json!([
        {"time": "2026-11-23T10:01:00.500Z", "type": "function",
         "record": "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"},
        {"time": "2026-11-23T10:01:00.600Z", "type": "function",
         "record": {"requestId": "r10", "message": "java.lang.OutOfMemoryError: Java heap space"}},
        {"time": "2026-11-23T10:01:00.700Z", "type": "function", "record": "all fine"}
    ]));
    assert_eq!(f.metrics()["out_of_memory"].1, 1.0);
}

/// The path the extension runs: the Telemetry receiver's parsing keeps only the OOM lines,
/// reduced, and the observer still counts them.
#[test]
fn out_of_memory_lines_survive_the_receivers_reduction() {
    let f = fixture(true);
    f.telemetry.invoke("r11");
    let batch = br#"[
        {"time":"2026-11-23T10:01:00.400Z","type":"function","record":"working..."},
        {"time":"2026-11-23T10:01:00.500Z","type":"function","record":"memory allocation of 1073741824 bytes failed\n"}
    ]"#;
    let records = crate::lifecycle::telemetry::parse_batch(batch);
    assert_eq!(records.len(), 1);
    for r in &records {
        f.telemetry.on_platform_record(&r.raw);
    }
    let m = f.metrics();
    assert_eq!(m["out_of_memory"].1, 1.0);
    assert!(m["out_of_memory"].0.contains(&"cold_start:true".to_owned()));
}

#[test]
fn memory_equality_alone_detects_out_of_memory() {
    let f = fixture(true);
    f.feed(warm("r4", "timeout", None, 128));
    let m = f.metrics();
    assert_eq!(m["out_of_memory"].1, 1.0);
    assert_eq!(m["timeouts"].1, 1.0);
}

#[test]
fn a_crash_gets_a_span_parented_as_announced_but_a_handled_error_does_not() {
    let f = fixture(true);
    f.buffer.open_invocation("r5");
    f.buffer
        .push(Event::Wrapper(WrapperSignal::Start(InvocationStart {
            request_id: "r5".into(),
            trace_id: 70,
            span_id: 80,
            parent_id: 90,
            start_ns: parse_rfc3339_ns("2026-11-23T10:01:00.001Z").unwrap_or(0),
            ..InvocationStart::default()
        })));
    f.feed(warm("r5", "error", Some("Runtime.ExitError"), 50));
    let spans = f.spans();
    assert_eq!(spans.len(), 1);
    let s = &spans[0].2;
    assert_eq!((s.trace_id, s.span_id, s.parent_id), (70, 80, 90));
    assert_eq!(s.meta["error.type"], "Runtime.ExitError");
    assert_eq!(s.duration, 2_999_000_000);

    f.buffer.open_invocation("r6");
    f.feed(warm("r6", "error", Some("Function.Unhandled"), 50));
    assert!(f.spans().is_empty());
    assert_eq!(f.metrics()["errors"].1, 2.0);
}

#[test]
fn no_span_when_the_wrapper_already_reported_the_invocation() {
    let f = fixture(true);
    f.buffer.open_invocation("r7");
    f.buffer.push(Event::Wrapper(WrapperSignal::End {
        request_id: "r7".into(),
    }));
    f.feed(warm("r7", "timeout", None, 50));
    assert!(f.spans().is_empty());
}

#[test]
fn a_report_without_runtime_done_still_counts_the_failure() {
    let f = fixture(true);
    let records = warm("r8", "timeout", None, 50);
    let only_report = json!([records[0].clone(), records[2].clone()]);
    f.feed(only_report);
    let m = f.metrics();
    assert_eq!(m["timeouts"].1, 1.0);
    assert!(!m.contains_key("post_runtime_duration"));
    assert_eq!(f.spans().len(), 1);
}

#[test]
fn enhanced_metrics_off_keeps_the_spans() {
    let f = fixture(false);
    f.feed(warm("r9", "timeout", None, 50));
    assert!(f.metrics.is_empty());
    assert_eq!(f.spans().len(), 1);
}

#[test]
fn invocations_are_counted_once_whether_invoke_or_start_comes_first() {
    let f = fixture(true);
    f.telemetry.invoke("a");
    f.feed(warm("a", "success", None, 10));
    f.feed(warm("b", "success", None, 10));
    f.telemetry.invoke("b");
    let m = f.metrics();
    assert_eq!(m["invocations"].1, 2.0);
}

#[test]
fn shutdown_counts_a_shutdown_and_an_unused_init_only_without_invocations() {
    let used = fixture(true);
    used.feed(cold_start_records());
    used.telemetry.shutdown();
    let m = used.metrics();
    assert_eq!(m["shutdowns"].1, 1.0);
    assert!(m["shutdowns"].0.contains(&"cold_start:false".to_owned()));
    assert!(!m.contains_key("unused_init"));

    let unused = fixture(true);
    unused.feed(json!([cold_start_records()[0], cold_start_records()[2]]));
    unused.telemetry.shutdown();
    let m = unused.metrics();
    assert_eq!(m["shutdowns"].1, 1.0);
    assert_eq!(m["unused_init"].1, 1.0);
    assert!(!m.contains_key("invocations"));
}

#[test]
fn a_snapstart_restore_reports_its_duration_in_seconds() {
    let f = fixture(true);
    f.feed(json!([
        {"time": "2026-11-23T10:00:00.000Z", "type": "platform.restoreStart",
         "record": {"runtimeVersion": "java:21.v20"}},
        {"time": "2026-11-23T10:00:00.320Z", "type": "platform.restoreReport",
         "record": {"status": "success", "metrics": {"durationMs": 320.5}}},
        {"time": "2026-11-23T10:00:00.330Z", "type": "platform.restoreReport",
         "record": {"status": "failure"}}
    ]));
    let m = f.metrics();
    assert_eq!(m["snapstart_restore_duration"].1, 0.3205);
    assert_eq!(m["snapstart_restore_duration"].2, 1);
}

#[test]
fn enhanced_metrics_off_writes_no_shutdown_metrics() {
    let f = fixture(false);
    f.telemetry.shutdown();
    assert!(f.metrics().is_empty());
}

#[tokio::test]
async fn process_metrics_are_reported_at_runtime_done() {
    let Fixture {
        telemetry, metrics, ..
    } = process_fixture();
    telemetry.invoke("p1");
    tokio::time::sleep(Duration::from_millis(40)).await;
    for r in warm("p1", "success", None, 10)
        .as_array()
        .into_iter()
        .flatten()
    {
        telemetry.on_platform_record(r);
    }
    let (_, sketches) = metrics.take();
    let names: Vec<String> = sketches
        .into_iter()
        .flat_map(|b| b.sketches)
        .map(|s| s.metric)
        .collect();
    for n in [
        "fd_use",
        "fd_max",
        "threads_use",
        "cpu_total_time",
        "rss_max",
        "tmp_used",
    ] {
        assert!(names.contains(&format!("{PREFIX}{n}")), "{n} in {names:?}");
    }
}

#[tokio::test]
async fn without_telemetry_a_new_invoke_stops_the_previous_sampler() {
    let telemetry = process_fixture().telemetry;
    let running = |t: &InvocationTelemetry| {
        t.lock()
            .requests
            .values()
            .filter(|r| r.sampler.is_some())
            .count()
    };
    for id in ["a", "b", "c"] {
        telemetry.invoke(id);
        assert_eq!(running(&telemetry), 1);
    }
    telemetry.shutdown();
    assert_eq!(running(&telemetry), 0);
}
