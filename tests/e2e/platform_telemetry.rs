//! The Telemetry API on the local platform: subscription, the records of init, invocation and
//! report with their fields, function and extension log lines, batching, and delivery faults.

use std::time::Duration;

use ddlambda_platform::{Actor, EventKind, Faults, InvokeOptions, ShutdownReason, TelemetryFaults};
use ddlambda_tests::platform::{ExtDir, XRAY_HEADER, builder, event, invoke};
use ddlambda_tests::wait_until;
use serde_json::{Value, json};

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

fn is_rfc3339_ms(s: &str) -> bool {
    s.len() == 24 && s.ends_with('Z') && &s[10..11] == "T" && &s[19..20] == "."
}

/// The fixture function and extension `tel`, subscribed to the Telemetry API.
fn with_subscriber(ext: &ExtDir) -> ddlambda_platform::PlatformBuilder {
    builder(ext)
        .env("FIXTURE_EXT_TELEMETRY", "1")
        .extension(ext.extension("tel"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_receives_every_record_with_lambdas_fields() {
    let ext = ExtDir::new();
    let platform = with_subscriber(&ext)
        .memory_mb(192)
        .build()
        .await
        .expect("platform");
    let xray = XRAY_HEADER;
    let opts = InvokeOptions {
        xray_header: Some(xray.into()),
        ..Default::default()
    };
    let first = platform
        .invoke(event(json!({"log": ["a line from the function"]})), opts)
        .await
        .expect("invoke");
    let second = invoke(&platform, json!({})).await;
    platform.shutdown(ShutdownReason::Spindown).await;
    let records = ext.telemetry("tel");
    let subscribed = ext.of_kind("tel", "subscribed");
    assert_eq!(subscribed[0]["status"], 200, "{subscribed:?}");

    for r in &records {
        assert!(r["time"].as_str().is_some_and(is_rfc3339_ms), "{r}");
    }
    // Init records are replayed to a subscriber that subscribed during init.
    let init_start = of_type(&records, "platform.initStart");
    assert_eq!(init_start.len(), 1, "{records:#?}");
    assert_eq!(init_start[0]["record"]["initializationType"], "on-demand");
    assert_eq!(init_start[0]["record"]["phase"], "init");
    assert!(init_start[0]["record"]["runtimeVersion"].is_string());
    assert_eq!(
        of_type(&records, "platform.initRuntimeDone")[0]["record"]["status"],
        "success"
    );
    let init_report = of_type(&records, "platform.initReport");
    assert_eq!(init_report[0]["record"]["status"], "success");
    assert!(
        init_report[0]["record"]["metrics"]["durationMs"]
            .as_f64()
            .is_some_and(|d| d > 0.0)
    );
    let sub = of_type(&records, "platform.telemetrySubscription");
    assert_eq!(sub[0]["record"]["name"], "tel");
    assert_eq!(sub[0]["record"]["state"], "Subscribed");

    let start = of_type(&records, "platform.start");
    assert_eq!(start.len(), 2);
    assert_eq!(start[0]["record"]["requestId"], first.request_id.as_str());
    assert_eq!(start[0]["record"]["version"], "$LATEST");
    assert_eq!(start[0]["record"]["tracing"]["value"], xray);

    let done = of_type(&records, "platform.runtimeDone");
    assert_eq!(done.len(), 2);
    let d = &done[0]["record"];
    assert_eq!(d["requestId"], first.request_id.as_str());
    assert_eq!(d["status"], "success");
    assert!(d["metrics"]["durationMs"].as_f64().is_some());
    assert!(
        d["metrics"]["producedBytes"]
            .as_u64()
            .is_some_and(|b| b > 0)
    );
    assert_eq!(d["spans"][0]["name"], "responseLatency");
    assert!(d["spans"][0]["start"].as_str().is_some_and(is_rfc3339_ms));

    let reports = of_type(&records, "platform.report");
    assert_eq!(
        reports.len(),
        2,
        "the last report is flushed at SHUTDOWN: {records:#?}"
    );
    let m = &reports[0]["record"]["metrics"];
    assert_eq!(reports[0]["record"]["requestId"], first.request_id.as_str());
    assert_eq!(reports[0]["record"]["status"], "success");
    assert_eq!(m["memorySizeMB"], 192);
    assert!(m["maxMemoryUsedMB"].as_u64().is_some_and(|v| v > 0));
    assert_eq!(m["durationMs"].as_f64(), Some(first.report.duration_ms));
    assert_eq!(
        m["billedDurationMs"].as_u64(),
        Some(first.report.billed_duration_ms)
    );
    assert!(m["initDurationMs"].as_f64().is_some(), "cold start: {m}");
    assert!(
        reports[1]["record"]["metrics"]
            .get("initDurationMs")
            .is_none(),
        "warm start"
    );
    assert_eq!(
        reports[1]["record"]["requestId"],
        second.request_id.as_str()
    );

    let function_lines: Vec<&str> = of_type(&records, "function")
        .iter()
        .filter_map(|r| r["record"].as_str())
        .collect();
    assert!(
        function_lines.contains(&"a line from the function"),
        "{function_lines:?}"
    );
    let extension_lines: Vec<&str> = of_type(&records, "extension")
        .iter()
        .filter_map(|r| r["record"].as_str())
        .collect();
    assert!(
        extension_lines
            .iter()
            .any(|l| l.starts_with("fixture-ext tel registered")),
        "{extension_lines:?}"
    );

    // Order within the invocation: start, runtimeDone, report.
    let pos = |kind: &str, id: &str| {
        records
            .iter()
            .position(|r| r["type"] == kind && r["record"]["requestId"] == id)
            .expect(kind)
    };
    let id = first.request_id.as_str();
    assert!(pos("platform.start", id) < pos("platform.runtimeDone", id));
    assert!(pos("platform.runtimeDone", id) < pos("platform.report", id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_batched_by_the_buffering_timeout() {
    let ext = ExtDir::new();
    let platform = with_subscriber(&ext).build().await.expect("platform");
    let lines: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
    invoke(&platform, json!({"log": lines})).await;
    platform.shutdown(ShutdownReason::Spindown).await;
    let batches = ext.of_kind("tel", "telemetry");
    let records: usize = batches
        .iter()
        .map(|b| b["batch"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(records >= 50 + 6, "{records} records");
    assert!(
        batches.len() < records,
        "lines printed together travel together: {} batches",
        batches.len()
    );
    assert!(batches.iter().all(|b| b["path"] == "/telemetry"));
    let t = platform.timeline();
    let sent: usize = t
        .filter(|e| e.actor == Actor::Extension("tel".into()))
        .filter_map(|e| match e.kind {
            EventKind::TelemetryBatch {
                records,
                delivered: true,
                ..
            } => Some(records),
            _ => None,
        })
        .sum();
    assert_eq!(sent, records, "every batch the timeline counts arrived");
}

/// [`with_subscriber`], with Telemetry API delivery faults.
async fn with_faults(ext: &ExtDir, faults: TelemetryFaults) -> ddlambda_platform::Platform {
    with_subscriber(ext)
        .faults(Faults {
            telemetry: faults,
            ..Default::default()
        })
        .build()
        .await
        .expect("platform")
}

async fn run_with(faults: TelemetryFaults) -> (ExtDir, ddlambda_platform::Timeline) {
    let ext = ExtDir::new();
    let platform = with_faults(&ext, faults).await;
    let r = invoke(&platform, json!({"log": ["x"]})).await;
    assert!(!r.is_error(), "{r:?}");
    platform.shutdown(ShutdownReason::Spindown).await;
    (ext, platform.timeline())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_batches_arrive_twice() {
    let (ext, _) = run_with(TelemetryFaults {
        duplicate: true,
        ..Default::default()
    })
    .await;
    let records = ext.telemetry("tel");
    let starts = of_type(&records, "platform.start");
    assert_eq!(starts.len(), 2, "{records:#?}");
    assert_eq!(starts[0], starts[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_batches_never_arrive() {
    let (ext, t) = run_with(TelemetryFaults {
        drop_every: Some(1),
        ..Default::default()
    })
    .await;
    assert!(ext.telemetry("tel").is_empty());
    let dropped = t
        .filter(|e| matches!(e.kind, EventKind::TelemetryBatch { dropped: true, .. }))
        .count();
    assert!(dropped > 0, "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_batches_arrive_late_but_arrive() {
    let ext = ExtDir::new();
    let faults = TelemetryFaults {
        delay: Duration::from_millis(300),
        ..Default::default()
    };
    let platform = with_faults(&ext, faults).await;
    let r = invoke(&platform, json!({})).await;
    // The runtimeDone of this invocation comes in a delayed batch, after the invocation ended.
    let arrived = wait_until(Duration::from_secs(20), || {
        let records = ext.telemetry("tel");
        records
            .iter()
            .any(|x| {
                x["type"] == "platform.runtimeDone"
                    && x["record"]["requestId"] == r.request_id.as_str()
            })
            .then_some(())
    });
    assert!(arrived.is_some(), "{:#?}", ext.telemetry("tel"));
    platform.shutdown(ShutdownReason::Spindown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_stay_under_max_bytes() {
    let ext = ExtDir::new();
    let platform = with_subscriber(&ext).build().await.expect("platform");
    // 400 lines of 1000 bytes: more than the subscriber's 256 KiB maxBytes.
    let lines: Vec<String> = (0..400)
        .map(|i| format!("{i:04}{}", "y".repeat(996)))
        .collect();
    let r = invoke(&platform, json!({ "log": lines })).await;
    assert!(!r.is_error(), "{r:?}");
    platform.shutdown(ShutdownReason::Spindown).await;
    let batches = ext.of_kind("tel", "telemetry");
    let function_lines: usize = ext
        .telemetry("tel")
        .iter()
        .filter(|r| r["type"] == "function")
        .count();
    assert_eq!(function_lines, 400, "nothing lost");
    for b in &batches {
        let records = b["batch"].as_array().expect("array");
        let bytes: usize = records.iter().map(|r| r.to_string().len()).sum();
        assert!(bytes <= 262_144, "a batch of {bytes} bytes");
    }
    assert!(batches.len() >= 2, "{} batches", batches.len());
}
