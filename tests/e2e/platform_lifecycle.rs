//! The local platform's normal lifecycle: Runtime API headers, the standard environment,
//! registration, INVOKE and SHUTDOWN, the init and invocation rules, and the timeline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ddlambda_platform::{
    Actor, EventKind, ExtensionEventKind, InvokeOptions, ShutdownReason, Status,
};
use ddlambda_tests::platform::{ExtDir, XRAY_HEADER, builder, event, invoke, with_extensions};
use serde_json::{Value, json};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_api_headers_and_standard_environment() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .function_name("my-fn")
        .region("eu-west-1")
        .memory_mb(256)
        .timeout(Duration::from_secs(7))
        .env("FIXTURE_CUSTOM", "yes")
        .build()
        .await
        .expect("platform");
    let xray = XRAY_HEADER;
    let opts = InvokeOptions {
        xray_header: Some(xray.into()),
        client_context: Some("eyJjdXN0b20iOnt9fQ==".into()),
        ..Default::default()
    };
    let before = now_ms();
    let result = platform
        .invoke(event(json!({"hello": 1})), opts)
        .await
        .expect("invoke");
    assert_eq!(result.report.status, Status::Success, "{result:?}");
    assert!(result.cold_start);
    let body: Value = serde_json::from_slice(result.response().expect("response")).expect("json");
    assert_eq!(body["event"], json!({"hello": 1}));
    assert_eq!(body["request_id"], result.request_id.as_str());
    assert_eq!(
        body["function_arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:my-fn"
    );
    assert_eq!(body["trace_id"], xray);
    assert_eq!(body["client_context"], "eyJjdXN0b20iOnt9fQ==");
    let deadline: u64 = body["deadline_ms"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("deadline header");
    assert!(
        deadline >= before + 7000 && deadline <= now_ms() + 7000,
        "deadline {deadline} vs {before}"
    );
    let env = &body["env"];
    assert_eq!(
        env["AWS_LAMBDA_RUNTIME_API"],
        platform.runtime_api().to_string()
    );
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "my-fn");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_REGION"], "eu-west-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
    assert_eq!(env["_HANDLER"], "bootstrap");
    assert_eq!(env["AWS_XRAY_DAEMON_ADDRESS"], "127.0.0.1:2000");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/my-fn");
    assert_eq!(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand");
    assert_eq!(env["FIXTURE_CUSTOM"], "yes");
    assert!(
        env["LAMBDA_TASK_ROOT"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        env.get("HOME").is_none(),
        "Lambda starts from a clean environment: {env}"
    );

    // Without a header the platform makes an unsampled one; each invocation gets a fresh id.
    let second = invoke(&platform, json!({})).await;
    let body: Value = serde_json::from_slice(second.response().expect("response")).expect("json");
    let trace = body["trace_id"].as_str().expect("trace header");
    assert!(
        trace.starts_with("Root=1-") && trace.ends_with(";Sampled=0"),
        "{trace}"
    );
    assert_ne!(second.request_id, result.request_id);
    assert!(!second.cold_start);
    assert_eq!(second.report.init_duration_ms, None);
    platform.shutdown(ShutdownReason::Spindown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_registers_gets_invoke_and_shutdown_and_exits_in_time() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .function_name("reg-fn")
        .handler("my.handler")
        .account_id("111122223333")
        .extension(ext.extension("ext-a"))
        .build()
        .await
        .expect("platform");
    let xray = XRAY_HEADER;
    let opts = InvokeOptions {
        xray_header: Some(xray.into()),
        ..Default::default()
    };
    let result = platform
        .invoke(event(json!({})), opts)
        .await
        .expect("invoke");
    assert_eq!(result.report.status, Status::Success, "{result:?}");
    platform.shutdown(ShutdownReason::Spindown).await;

    let reg = &ext.of_kind("ext-a", "registered")[0];
    assert_eq!(reg["status"], 200);
    assert_eq!(reg["id"].as_str().map(str::len), Some(36));
    assert_eq!(
        reg["body"],
        json!({"functionName": "reg-fn", "functionVersion": "$LATEST", "handler": "my.handler", "accountId": "111122223333"})
    );
    let events = ext.events("ext-a");
    assert_eq!(events.len(), 2, "{events:?}");
    let invoke = &events[0];
    assert_eq!(invoke["eventType"], "INVOKE");
    assert_eq!(invoke["requestId"], result.request_id.as_str());
    assert_eq!(
        invoke["invokedFunctionArn"],
        "arn:aws:lambda:us-east-1:111122223333:function:reg-fn"
    );
    assert_eq!(
        invoke["tracing"],
        json!({"type": "X-Amzn-Trace-Id", "value": xray})
    );
    assert!(
        invoke["deadlineMs"]
            .as_u64()
            .is_some_and(|d| d > now_ms().saturating_sub(60_000))
    );
    let shutdown = &events[1];
    assert_eq!(shutdown["eventType"], "SHUTDOWN");
    assert_eq!(shutdown["shutdownReason"], "spindown");
    let deadline = shutdown["deadlineMs"].as_u64().expect("deadlineMs");
    let exit = ext
        .records("ext-a")
        .into_iter()
        .find(|r| r["kind"] == "exit")
        .expect("exit recorded");
    assert!(
        exit["t_ms"].as_u64().expect("t_ms") <= deadline,
        "exited after the deadline"
    );

    let t = platform.timeline();
    let actor = Actor::Extension("ext-a".into());
    assert!(
        t.first(&actor, |k| matches!(
            k,
            EventKind::Exited { code: Some(0), .. }
        ))
        .is_some(),
        "{t}"
    );
    assert!(
        t.first(&actor, |k| matches!(k, EventKind::Killed { .. }))
            .is_none(),
        "{t}"
    );
    assert!(
        t.first(&actor, |k| *k
            == EventKind::ExtensionEvent {
                event: ExtensionEventKind::Shutdown
            })
        .is_some(),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_ends_when_runtime_and_every_extension_called_next() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .extension(ext.extension("fast"))
        .extension(ext.extension("slow"))
        .env("FIXTURE_INIT", "sleep:300")
        .build()
        .await
        .expect("platform");
    let init = platform.start().await.expect("start");
    assert!(init.error.is_none(), "{init:?}");
    assert!(init.duration >= Duration::from_millis(300), "{init:?}");
    let t = platform.timeline();
    let done = t
        .events
        .iter()
        .position(|e| matches!(e.kind, EventKind::InitDone { .. }))
        .expect("init done");
    for actor in [
        Actor::Runtime,
        Actor::Extension("fast".into()),
        Actor::Extension("slow".into()),
    ] {
        let next = t
            .events
            .iter()
            .position(|e| e.actor == actor && e.kind == EventKind::Next);
        assert!(
            next.is_some_and(|n| n < done),
            "{actor} /next must precede init done:\n{t}"
        );
    }
    // The runtime starts only once every extension has registered.
    let spawned = t
        .events
        .iter()
        .position(|e| e.actor == Actor::Runtime && matches!(e.kind, EventKind::Spawned { .. }));
    for name in ["fast", "slow"] {
        let reg = t.events.iter().position(|e| {
            e.actor == Actor::Extension(name.into()) && e.kind == EventKind::Registered
        });
        assert!(
            reg < spawned,
            "{name} registers before the runtime starts:\n{t}"
        );
        let init_time = t.extension_init_time(name).expect("init time");
        assert!(init_time > Duration::ZERO && init_time < Duration::from_secs(30));
    }
    let result = invoke(&platform, json!({})).await;
    assert!(
        result.cold_start,
        "the first invocation after start() is the cold start"
    );
    assert!(
        result.report.init_duration_ms.is_some_and(|ms| ms >= 300.0),
        "{:?}",
        result.report
    );
    platform.shutdown(ShutdownReason::Spindown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_ends_when_every_invoke_extension_called_next_again() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .extension(ext.extension("worker"))
        .extension(ext.extension("quick"))
        .extension(ext.extension("shutdown-only"))
        .env("FIXTURE_EXT_INVOKE_WORK_MS_WORKER", "400")
        .env("FIXTURE_EXT_EVENTS_SHUTDOWN_ONLY", "SHUTDOWN")
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({})).await;
    assert_eq!(r.report.status, Status::Success, "{r:?}");
    let t = platform.timeline();
    let worker = Actor::Extension("worker".into());
    let got_invoke = t
        .first(&worker, |k| matches!(k, EventKind::ExtensionEvent { .. }))
        .expect("worker INVOKE")
        .at;
    let done = t
        .filter(|e| matches!(e.kind, EventKind::RuntimeDone { .. }))
        .next()
        .expect("runtimeDone")
        .at;
    let post = t
        .post_runtime_duration(&r.request_id, "worker")
        .expect("worker post-runtime");
    // The worker calls /next 400 ms after its INVOKE; whatever of that outlasts the runtime
    // is the post-runtime duration.
    assert!(
        done + post - got_invoke >= Duration::from_millis(400),
        "{t}"
    );
    assert!(post > Duration::ZERO, "{t}");
    assert!(r.report.duration_ms >= 400.0, "{:?}", r.report);
    let end = t
        .events
        .iter()
        .position(|e| matches!(e.kind, EventKind::InvokeEnd { .. }))
        .expect("end");
    let worker_next = t
        .events
        .iter()
        .rposition(|e| e.actor == Actor::Extension("worker".into()) && e.kind == EventKind::Next)
        .expect("worker next");
    assert!(worker_next < end, "{t}");
    // Extensions not registered for INVOKE never see one and do not hold the invocation.
    platform.shutdown(ShutdownReason::Spindown).await;
    let only = ext.events("shutdown-only");
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0]["eventType"], "SHUTDOWN");
    assert_eq!(ext.events("quick").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_error_is_reported_and_the_sandbox_stays_warm() {
    let ext = ExtDir::new();
    let platform = with_extensions(&ext, &["e"]).await;
    let r = invoke(&platform, json!({"mode": "error"})).await;
    assert_eq!(r.report.status, Status::Error);
    assert!(r.is_error());
    let err = r.error().expect("error");
    assert_eq!(err.error_type, "Fixture.Error");
    assert_eq!(err.message().as_deref(), Some("asked to fail"));
    let again = invoke(&platform, json!({})).await;
    assert_eq!(again.report.status, Status::Success);
    assert!(
        !again.cold_start,
        "a handled error does not reset the sandbox"
    );
    platform.shutdown(ShutdownReason::Spindown).await;
    let kinds: Vec<String> = ext
        .events("e")
        .iter()
        .map(|e| e["eventType"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, ["INVOKE", "INVOKE", "SHUTDOWN"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_figures_come_from_the_function_process() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .memory_mb(256)
        .build()
        .await
        .expect("platform");
    let r = invoke(&platform, json!({"mode": "alloc", "mb": 40})).await;
    assert_eq!(r.report.status, Status::Success, "{r:?}");
    assert!(
        (40..256).contains(&r.report.max_memory_used_mb),
        "40 MiB touched, so the peak is at least that: {:?}",
        r.report
    );
    assert_eq!(r.report.memory_size_mb, 256);
    platform.shutdown(ShutdownReason::Spindown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_platform_kills_every_child() {
    let ext = ExtDir::new();
    let platform = builder(&ext)
        .env("FIXTURE_EXT_ON_SHUTDOWN", "linger")
        .extension(ext.extension("e"))
        .build()
        .await
        .expect("platform");
    invoke(&platform, json!({})).await;
    let pids: Vec<u32> = platform
        .timeline()
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Spawned { pid } => Some(pid),
            _ => None,
        })
        .collect();
    assert_eq!(pids.len(), 2);
    drop(platform);
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    };
    let gone = ddlambda_tests::wait_until(Duration::from_secs(20), || {
        pids.iter().all(|p| !alive(*p)).then_some(())
    });
    assert!(gone.is_some(), "children outlived the platform: {pids:?}");
}
