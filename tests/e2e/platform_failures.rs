//! The local platform's failure rules: function timeout, crash, out-of-memory, oversized
//! responses, init failures of the runtime and of extensions, an extension that holds an
//! invocation, and the resets (SHUTDOWN `timeout` / `failure`, then a cold start) they cause.

use std::time::Duration;

use ddlambda_platform::{Actor, EventKind, Faults, ShutdownReason, Status};
use ddlambda_tests::platform::{ExtDir, builder, invoke, with_extensions};
use serde_json::json;

fn shutdown_reasons(ext: &ExtDir, name: &str) -> Vec<String> {
    ext.events(name)
        .iter()
        .filter(|e| e["eventType"] == "SHUTDOWN")
        .map(|e| e["shutdownReason"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_runtime_resets_and_cold_starts() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .timeout(Duration::from_millis(700))
        .extension(ext.extension("e"))
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({"mode": "hang"})).await;
    assert_eq!(r.report.status, Status::Timeout, "{r:?}");
    let err = r.error().expect("error");
    assert_eq!(err.error_type, "Sandbox.Timedout");
    assert!(
        err.message()
            .is_some_and(|m| m.contains("Task timed out after 0.70 seconds")),
        "{err:?}"
    );
    assert!(r.report.duration_ms >= 700.0);
    assert!(r.report.to_string().contains("Status: timeout"));
    assert_eq!(shutdown_reasons(&ext, "e"), ["timeout"]);
    let t = platform.timeline();
    assert!(
        t.first(&Actor::Runtime, |k| matches!(k, EventKind::Killed { .. }))
            .is_some(),
        "{t}"
    );

    let next = invoke(&platform, json!({})).await;
    assert_eq!(next.report.status, Status::Success, "{next:?}");
    assert!(next.cold_start, "the sandbox was reset");
    assert!(next.report.init_duration_ms.is_some());
    platform.shutdown(ShutdownReason::Spindown).await;
    assert_eq!(shutdown_reasons(&ext, "e"), ["timeout", "spindown"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_is_a_failure_with_runtime_exit_error() {
    let ext = ExtDir::new();
    let platform = with_extensions(&ext, &["e"]).await;
    let r = invoke(&platform, json!({"mode": "crash", "exit_code": 3})).await;
    assert_eq!(r.report.status, Status::Failure, "{r:?}");
    let err = r.error().expect("error");
    assert_eq!(err.error_type, "Runtime.ExitError");
    assert!(
        err.message()
            .is_some_and(|m| m.ends_with("Runtime exited with error: exit status 3")),
        "{err:?}"
    );
    assert_eq!(shutdown_reasons(&ext, "e"), ["failure"]);
    let next = invoke(&platform, json!({})).await;
    assert!(
        next.cold_start && next.report.status == Status::Success,
        "{next:?}"
    );
    platform.shutdown(ShutdownReason::Spindown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_size_is_enforced() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .memory_mb(128)
        .extension(ext.extension("e"))
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({"mode": "alloc", "mb": 400})).await;
    assert_eq!(r.report.status, Status::Failure, "{r:?}");
    assert_eq!(
        r.error().map(|e| e.error_type.as_str()),
        Some("Runtime.OutOfMemory")
    );
    assert_eq!(r.report.error_type.as_deref(), Some("Runtime.OutOfMemory"));
    // As on Lambda, an out-of-memory report shows the memory size as used.
    assert_eq!(r.report.max_memory_used_mb, 128);
    let t = platform.timeline();
    assert!(
        t.first(&Actor::Runtime, |k| matches!(
            k,
            EventKind::OutOfMemory { .. }
        ))
        .is_some(),
        "{t}"
    );
    assert_eq!(shutdown_reasons(&ext, "e"), ["failure"]);
    platform.shutdown(ShutdownReason::Spindown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_response_is_refused() {
    let ext = ExtDir::new();
    let platform = builder(&ext).build().await.expect("platform");
    let big = 6 * 1024 * 1024 + 10;
    let r = invoke(&platform, json!({"mode": "big", "bytes": big})).await;
    assert_eq!(r.report.status, Status::Error, "{r:?}");
    assert_eq!(
        r.error().map(|e| e.error_type.as_str()),
        Some("Function.ResponseSizeTooLarge")
    );
    let ok = invoke(&platform, json!({"mode": "big", "bytes": 1024 * 1024})).await;
    assert_eq!(ok.response().map(|b| b.len()), Some(1024 * 1024));
    platform.shutdown(ShutdownReason::Spindown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_init_failures_fail_the_invocation_and_retry_init() {
    for (init, error_type) in [
        ("init_error", "Fixture.InitError"),
        ("crash", "Runtime.ExitError"),
    ] {
        let ext = ExtDir::new();
        let platform = builder(&ext)
            .env("FIXTURE_INIT", init)
            .extension(ext.extension("e"))
            .build()
            .await
            .expect("platform");
        for _ in 0..2 {
            let r = invoke(&platform, json!({})).await;
            assert_eq!(r.report.status, Status::Failure, "{init}: {r:?}");
            assert_eq!(
                r.error().map(|e| e.error_type.as_str()),
                Some(error_type),
                "{init}"
            );
            assert!(r.cold_start);
        }
        // Each failed init resets the sandbox; each invocation tries init again.
        assert_eq!(
            shutdown_reasons(&ext, "e"),
            ["failure", "failure"],
            "{init}"
        );
        assert_eq!(ext.of_kind("e", "registered").len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_init_failures_fail_init() {
    for (mode, error_type) in [
        ("crash", "Extension.Crash"),
        ("init_error", "Fixture.ExtInit"),
    ] {
        let ext = ExtDir::new();
        let platform = builder(&ext)
            .env("FIXTURE_EXT_INIT_BAD", mode)
            .extension(ext.extension("good"))
            .extension(ext.extension("bad"))
            .build()
            .await
            .expect("platform");
        let init = platform.start().await.expect("start");
        let err = init.error.expect("init must fail");
        assert_eq!(err.error_type, error_type, "{mode}");
        let t = platform.timeline();
        if mode == "crash" {
            assert!(
                t.first(&Actor::Runtime, |k| matches!(k, EventKind::Spawned { .. }))
                    .is_none(),
                "the runtime starts only once every extension registered:\n{t}"
            );
        }
        let good = Actor::Extension("good".into());
        assert!(
            t.first(&good, |k| matches!(k, EventKind::Exited { .. }))
                .is_some(),
            "{mode}:\n{t}"
        );
        // A registered bystander gets SHUTDOWN `failure`; one still starting is just killed.
        let reasons = shutdown_reasons(&ext, "good");
        assert!(
            reasons.iter().all(|r| r == "failure"),
            "{mode}: {reasons:?}"
        );
        let shutdown_or_killed = t
            .first(&good, |k| {
                matches!(k, EventKind::Killed { .. })
                    || *k
                        == EventKind::ExtensionEvent {
                            event: ddlambda_platform::ExtensionEventKind::Shutdown,
                        }
            })
            .is_some();
        assert!(shutdown_or_killed, "{mode}:\n{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_that_never_calls_next_times_out_init() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .init_timeout(Duration::from_millis(800))
        .shutdown_budget(Duration::from_millis(300))
        .env("FIXTURE_EXT_INIT", "never_next")
        .extension(ext.extension("stuck"))
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({})).await;
    assert_eq!(r.report.status, Status::Failure, "{r:?}");
    assert_eq!(
        r.error().map(|e| e.error_type.as_str()),
        Some("Sandbox.Timedout")
    );
    let t = platform.timeline();
    let stuck = Actor::Extension("stuck".into());
    assert!(
        t.first(&stuck, |k| matches!(k, EventKind::Killed { .. }))
            .is_some(),
        "{t}"
    );
    assert!(t.first(&stuck, |k| *k == EventKind::Next).is_none(), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_holding_an_invocation_times_it_out_and_is_killed() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .timeout(Duration::from_millis(800))
        .shutdown_budget(Duration::from_millis(400))
        .env("FIXTURE_EXT_HOLD_INVOKE_HOLDER", "1")
        .extension(ext.extension("holder"))
        .extension(ext.extension("polite"))
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({"n": 1})).await;
    assert_eq!(r.report.status, Status::Timeout, "{r:?}");
    // The runtime answered in time; the caller has its response even though the invocation
    // timed out waiting for the extension.
    assert!(r.response().is_some(), "{r:?}");
    assert!(r.runtime_duration < Duration::from_millis(800));
    let t = platform.timeline();
    let holder = Actor::Extension("holder".into());
    let killed = t
        .first(&holder, |k| matches!(k, EventKind::Killed { .. }))
        .expect("holder killed");
    let start = t
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ShutdownStart { .. }))
        .expect("shutdown");
    assert!(
        killed.at >= start.at + Duration::from_millis(350),
        "killed only at the deadline:\n{t}"
    );
    assert_eq!(shutdown_reasons(&ext, "polite"), ["timeout"]);
    assert_eq!(shutdown_reasons(&ext, "holder"), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_kill_function_after_is_a_crash() {
    let ext = ExtDir::new();
    let faults = Faults {
        kill_function_after: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let platform = builder(&ext)
        .faults(faults)
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({"sleep_ms": 5000})).await;
    assert_eq!(r.report.status, Status::Failure, "{r:?}");
    let msg = r.error().and_then(|e| e.message()).unwrap_or_default();
    assert!(
        msg.ends_with("Runtime exited with error: signal: killed"),
        "{msg}"
    );
}
