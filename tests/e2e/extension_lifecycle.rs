//! The real `datadog-agent` on the local platform: it registers, subscribes, holds `/next`
//! until what an invocation produced is flushed, survives a timeout reset, and exits inside
//! the SHUTDOWN budget. Spans go to the local sink (a JSON-lines file) so every one can be
//! counted. (Faults against an HTTP intake are in `extension/tests/lifecycle.rs`.)

use std::time::Duration;

use ddlambda_platform::{Actor, EventKind, InvokeOptions, Platform, ShutdownReason, Status};
use ddlambda_tests::local_output::span_ids;
use ddlambda_tests::{bin_path, free_port, http};
use ddlambda_wire::Span;
use serde_json::{Value, json};

fn trace(trace_id: u64, n: u64) -> Vec<Span> {
    (1..=n)
        .map(|i| Span {
            service: "svc".into(),
            name: "op".into(),
            resource: "r".into(),
            trace_id,
            span_id: trace_id * 100 + i,
            start: 1_700_000_000_000_000_000,
            duration: 10,
            ..Span::default()
        })
        .collect()
}

/// Sends one v0.4 payload to the extension's trace agent (blocking client, off the runtime).
async fn send(port: u16, traces: Vec<Vec<Span>>) -> u16 {
    http::put_v04_traces(port, traces).await.unwrap_or(0)
}

fn event(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_agent_flushes_before_next_and_survives_a_timeout_reset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flushed.jsonl");
    let trace_port = free_port();
    let platform = Platform::builder()
        .function(bin_path("fixture-fn"))
        .extension(bin_path("datadog-agent"))
        .timeout(Duration::from_secs(2))
        .env("DD_APM_RECEIVER_PORT", trace_port.to_string())
        .env("DD_DOGSTATSD_PORT", free_port().to_string())
        .env("DDLAMBDA_TELEMETRY_PORT", free_port().to_string())
        .env("DDLAMBDA_LOCAL_OUTPUT", out.display().to_string())
        .env("DD_SERVERLESS_FLUSH_STRATEGY", "end")
        .build()
        .await
        .expect("platform");
    platform.start().await.expect("init");
    let timeline = platform.timeline();
    let ext = Actor::Extension("datadog-agent".into());
    assert!(
        timeline
            .first(&ext, |k| *k == EventKind::Registered)
            .is_some(),
        "registered"
    );
    assert!(timeline.extension_init_time("datadog-agent").is_some());

    // Spans sent during init (a tracer starting up) belong to the first invocation.
    assert_eq!(send(trace_port, vec![trace(1, 3)]).await, 200);
    let first = platform
        .invoke(event(json!({"mode": "echo"})), InvokeOptions::default())
        .await
        .expect("invoke");
    assert_eq!(first.report.status, Status::Success, "{first:?}");
    // The invocation ended when the extension called `/next` again: by then it had flushed.
    assert_eq!(span_ids(&out), [101, 102, 103], "flushed before /next");
    let timeline = platform.timeline();
    assert!(
        timeline
            .first(&ext, |k| *k == EventKind::TelemetrySubscribed)
            .is_some(),
        "subscribed to the Telemetry API"
    );
    let post = timeline
        .post_runtime_duration(&first.request_id, "datadog-agent")
        .expect("runtimeDone → /next");
    eprintln!("post-runtime duration on the local platform: {post:?}");

    // A timeout: the platform resets the sandbox (SHUTDOWN to the extension, then a cold
    // start). What arrived during the invocation is flushed at that SHUTDOWN.
    let hang = {
        let platform = &platform;
        async move {
            platform
                .invoke(event(json!({"mode": "hang"})), InvokeOptions::default())
                .await
        }
    };
    let spans = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(trace_port, vec![trace(2, 2)]).await
    };
    let (timed_out, sent) = tokio::join!(hang, spans);
    assert_eq!(sent, 200);
    assert_eq!(timed_out.expect("invoke").report.status, Status::Timeout);
    assert_eq!(span_ids(&out), [101, 102, 103, 201, 202]);

    // After the reset: a fresh extension, a cold start, and the final SHUTDOWN.
    let third = platform
        .invoke(event(json!({"mode": "echo"})), InvokeOptions::default())
        .await
        .expect("invoke");
    assert_eq!(third.report.status, Status::Success);
    assert!(third.cold_start);
    platform.shutdown(ShutdownReason::Spindown).await;
    let timeline = platform.timeline();
    let killed = timeline
        .filter(|e| e.actor == ext && matches!(e.kind, EventKind::Killed { .. }))
        .count();
    assert_eq!(
        killed, 0,
        "the extension always exited inside the SHUTDOWN budget"
    );
    let exits: Vec<_> = timeline
        .filter(|e| e.actor == ext && matches!(e.kind, EventKind::Exited { .. }))
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(exits.len(), 2, "{exits:?}");
    for e in exits {
        assert_eq!(
            e,
            EventKind::Exited {
                code: Some(0),
                signal: None
            }
        );
    }
}
