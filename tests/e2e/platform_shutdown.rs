//! SHUTDOWN on the local platform: the budget, killing what outlives it, and SHUTDOWN at any
//! point (during init, mid-invocation, after runtimeDone, and from another task).

use std::time::Duration;

use ddlambda_platform::{
    Actor, EventKind, Faults, InvokeOptions, ShutdownPoint, ShutdownReason, Status,
};
use ddlambda_tests::platform::{ExtDir, builder, event, invoke};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_get_the_budget_and_are_killed_after_it() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .env("FIXTURE_EXT_ON_SHUTDOWN_FLUSHER", "work:300")
        .env("FIXTURE_EXT_ON_SHUTDOWN_LINGERER", "linger")
        .extension(ext.extension("flusher"))
        .extension(ext.extension("lingerer"))
        .build()
        .await
        .expect("platform");
    invoke(&platform, json!({})).await;
    platform.shutdown(ShutdownReason::Spindown).await;
    let t = platform.timeline();
    let start = t
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ShutdownStart { .. }))
        .expect("start")
        .at;
    let flusher = Actor::Extension("flusher".into());
    let exited = t
        .first(&flusher, |k| {
            matches!(k, EventKind::Exited { code: Some(0), .. })
        })
        .expect("flusher exit");
    assert!(
        exited.at >= start + Duration::from_millis(250),
        "it worked 300 ms:\n{t}"
    );
    assert!(
        t.first(&flusher, |k| matches!(k, EventKind::Killed { .. }))
            .is_none(),
        "{t}"
    );
    let lingerer = Actor::Extension("lingerer".into());
    let killed = t
        .first(&lingerer, |k| matches!(k, EventKind::Killed { .. }))
        .expect("lingerer killed");
    assert!(
        killed.at >= start + Duration::from_millis(1900),
        "the 2000 ms budget is honoured:\n{t}"
    );
    assert!(
        t.first(&lingerer, |k| matches!(k, EventKind::Exited { .. }))
            .is_some(),
        "reaped:\n{t}"
    );
    let end = t
        .events
        .iter()
        .find(|e| e.kind == EventKind::ShutdownEnd)
        .expect("end")
        .at;
    assert!(end >= killed.at);
    let deadline = ext.events("flusher")[1]["deadlineMs"]
        .as_u64()
        .expect("deadline");
    let sent = ext
        .records("flusher")
        .iter()
        .find(|r| r["kind"] == "event" && r["data"]["eventType"] == "SHUTDOWN")
        .and_then(|r| r["t_ms"].as_u64())
        .expect("received");
    // Received at most the budget before the deadline (later under load, never earlier).
    assert!(
        deadline > sent && deadline - sent <= 2100,
        "deadlineMs is 2000 ms after SHUTDOWN was sent: {deadline} vs {sent}"
    );
}

async fn shutdown_at(
    point: ShutdownPoint,
) -> (
    ExtDir,
    ddlambda_platform::InvokeResult,
    ddlambda_platform::Timeline,
) {
    let ext = ExtDir::new();
    let faults = Faults {
        shutdown_at: Some(point),
        ..Default::default()
    };
    let platform = builder(&ext)
        .faults(faults)
        .env("FIXTURE_EXT_INVOKE_WORK_MS", "200")
        .extension(ext.extension("e"))
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({"sleep_ms": 200})).await;
    // The fault fires once; the platform recovers with a cold start.
    let again = invoke(&platform, json!({})).await;
    assert_eq!(again.report.status, Status::Success, "{point:?}: {again:?}");
    assert!(again.cold_start);
    platform.shutdown(ShutdownReason::Spindown).await;
    (ext, r, platform.timeline())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_init() {
    let (ext, r, t) = shutdown_at(ShutdownPoint::Init).await;
    assert_eq!(
        r.error().map(|e| e.error_type.as_str()),
        Some("Sandbox.Shutdown"),
        "{r:?}"
    );
    let first = &ext.events("e")[0];
    assert_eq!(first["eventType"], "SHUTDOWN", "{first}");
    assert_eq!(first["shutdownReason"], "spindown");
    let spawned = t
        .filter(|e| e.actor == Actor::Runtime && matches!(e.kind, EventKind::Spawned { .. }))
        .count();
    assert_eq!(
        spawned, 1,
        "the runtime of the first sandbox never started:\n{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_invocation() {
    let (ext, r, _) = shutdown_at(ShutdownPoint::Invoke).await;
    assert_eq!(r.report.status, Status::Failure, "{r:?}");
    let kinds: Vec<String> = ext
        .events("e")
        .iter()
        .map(|e| e["eventType"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds[..2], ["INVOKE", "SHUTDOWN"], "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_after_runtime_done() {
    let (ext, r, t) = shutdown_at(ShutdownPoint::RuntimeDone).await;
    assert_eq!(r.report.status, Status::Failure, "{r:?}");
    let done = t
        .events
        .iter()
        .position(|e| matches!(e.kind, EventKind::RuntimeDone { .. }))
        .expect("done");
    let shutdown = t
        .events
        .iter()
        .position(|e| matches!(e.kind, EventKind::ShutdownStart { .. }))
        .expect("shutdown");
    assert!(done < shutdown, "{t}");
    assert_eq!(ext.events("e")[1]["eventType"], "SHUTDOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_from_another_task_ends_a_hanging_invocation() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .timeout(Duration::from_secs(60))
        .extension(ext.extension("e"))
        .build()
        .await
        .expect("platform");
    let p = platform.clone();
    let invocation = tokio::spawn(async move {
        p.invoke(event(json!({"mode": "hang"})), InvokeOptions::default())
            .await
    });
    let delivered = ddlambda_tests::wait_until(Duration::from_secs(30), || {
        platform
            .timeline()
            .first(&Actor::Runtime, |k| *k == EventKind::EventDelivered)
            .map(|_| ())
    });
    assert!(delivered.is_some());
    platform.shutdown(ShutdownReason::Spindown).await;
    let r = tokio::time::timeout(Duration::from_secs(30), invocation)
        .await
        .expect("the invocation ends")
        .expect("join")
        .expect("invoke");
    assert_eq!(
        r.error().map(|e| e.error_type.as_str()),
        Some("Sandbox.Shutdown"),
        "{r:?}"
    );
    assert_eq!(ext.events("e")[1]["shutdownReason"], "spindown");
    let t = platform.timeline();
    assert!(
        t.first(&Actor::Runtime, |k| matches!(k, EventKind::Killed { .. }))
            .is_some(),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_extensions_take_part_and_the_runtime_gets_sigterm() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .env("FIXTURE_INTERNAL_EXT", "1")
        .env("FIXTURE_EXT_ON_SHUTDOWN", "exit_error")
        .extension(ext.extension("external"))
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({})).await;
    assert_eq!(r.report.status, Status::Success, "{r:?}");
    platform.shutdown(ShutdownReason::Spindown).await;
    let t = platform.timeline();
    let internal = Actor::Extension("fixture-internal".into());
    assert!(
        t.first(&internal, |k| *k == EventKind::Registered)
            .is_some(),
        "{t}"
    );
    assert!(
        t.first(&internal, |k| *k
            == EventKind::ExtensionEvent {
                event: ddlambda_platform::ExtensionEventKind::Invoke
            })
        .is_some(),
        "{t}"
    );
    // With an internal extension, the runtime is asked to stop (SIGTERM) rather than killed.
    assert!(
        t.first(&Actor::Runtime, |k| matches!(
            k,
            EventKind::Exited {
                signal: Some(15),
                ..
            }
        ))
        .is_some(),
        "{t}"
    );
    assert!(
        t.first(&Actor::Runtime, |k| matches!(k, EventKind::Killed { .. }))
            .is_none(),
        "{t}"
    );
    let external = Actor::Extension("external".into());
    let reported = t.first(&external, |k| {
        *k == EventKind::ErrorReported {
            error_type: "Fixture.ExitError".into(),
        }
    });
    assert!(reported.is_some(), "/exit/error is recorded:\n{t}");
}
