//! The `datadog-agent` binary against a scripted Extensions/Telemetry API and a recording
//! intake: lifecycle, flush rules, faults. (The same binary runs on the local platform and
//! under the AWS RIE in `tests/e2e`.)

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// A record that makes the platform's telemetry "live", as `platform.initStart` does on Lambda.
fn init_start() -> String {
    json!([{"time":"2026-11-23T00:00:00.000Z","type":"platform.initStart",
            "record":{"initializationType":"on-demand","phase":"init"}}])
    .to_string()
}

fn dd_env(intake: &FakeIntake) -> Vec<(&'static str, String)> {
    vec![
        ("DD_API_KEY", "test-key-0123".to_owned()),
        ("DD_APM_DD_URL", intake.url()),
        ("DD_DD_URL", intake.url()),
        ("DD_ENV", "test".to_owned()),
    ]
}

fn with<'a>(
    base: &'a [(&'static str, String)],
    more: &[(&'static str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    base.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(more.iter().copied())
        .collect()
}

/// The scripted Lambda API, an intake behaving as told, and the extension (Datadog sink to that
/// intake, plus `extra` settings) past its init `/next`.
async fn started(
    behaviour: Behaviour,
    extra: &[(&'static str, &str)],
) -> (FakeLambda, FakeIntake, Extension) {
    let api = FakeLambda::start().await;
    let intake = FakeIntake::start(behaviour).await;
    let env = dd_env(&intake);
    let ext = Extension::start(&api, &with(&env, extra));
    api.wait_next_calls(1).await;
    (api, intake, ext)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_after_runtime_done_and_before_next() {
    let (api, intake, ext) =
        started(Behaviour::Ok, &[("DD_SERVERLESS_FLUSH_STRATEGY", "end")]).await;
    let calls = api.calls();
    assert_eq!(
        calls[0].1,
        Call::Register {
            name: "datadog-agent".into(),
            accept_feature: "accountId".into()
        }
    );
    let dest = api.wait_subscription().await;
    assert_eq!(dest, format!("http://127.0.0.1:{}/", ext.telemetry_port));
    // Function logs carry the runtimes' out-of-memory reports.
    assert_eq!(api.subscribed_types(), ["platform", "function"]);
    assert_eq!(api.send_telemetry(&init_start()).await, 200);

    api.push_invoke("r1", Duration::from_secs(30));
    assert_eq!(ext.send_spans(&[trace(1, 3)], None, false).await, 200);
    // Nothing is sent before the runtime is done...
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(intake.accepted_spans().is_empty());
    assert_eq!(api.next_calls(), 1);
    // ...and everything is sent before the next `/next`.
    assert_eq!(
        api.send_telemetry(&runtime_done("r1", "success")).await,
        200
    );
    api.wait_next_calls(2).await;
    let spans = intake.accepted_spans();
    assert_eq!(spans.len(), 3, "flushed before /next");
    for s in &spans {
        assert_eq!(s.meta["_dd.origin"], "lambda");
        assert_eq!(s.meta["functionname"], "fn");
        assert_eq!(
            s.meta["function_arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:fn"
        );
        assert_eq!(s.meta["account_id"], "123456789012");
        assert_eq!(s.meta["cold_start"], "true");
        assert_eq!(s.meta["env"], "test");
        assert_eq!(s.meta["memorysize"], "128");
    }
    let req = intake
        .received()
        .into_iter()
        .find(|r| r.path == "/api/v0.2/traces")
        .unwrap();
    assert_eq!(req.headers["dd-api-key"], "test-key-0123");
    assert_eq!(req.headers["content-type"], "application/x-protobuf");
    assert_eq!(req.headers["x-datadog-reported-languages"], "python");

    // A warm invocation is not a cold start.
    api.push_invoke("r2", Duration::from_secs(30));
    ext.send_spans(&[trace(2, 1)], None, false).await;
    api.send_telemetry(&runtime_done("r2", "success")).await;
    api.wait_next_calls(3).await;
    let spans = intake.accepted_spans();
    let warm = spans.iter().find(|s| s.trace_id == 2).unwrap();
    assert_eq!(warm.meta["cold_start"], "false");

    api.push_shutdown(Duration::from_secs(2));
    let exited = ext.wait_exit().await;
    assert!(exited.status.success());
    assert!(
        !exited.stderr.contains("test-key-0123"),
        "the API key is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_telemetry_or_wrapper_next_is_not_held_and_shutdown_flushes_all() {
    let api = FakeLambda::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flush.jsonl");
    let out_s = out.to_str().unwrap().to_owned();
    let ext = Extension::start(&api, &[("DDLAMBDA_LOCAL_OUTPUT", out_s.as_str())]);
    api.wait_next_calls(1).await;

    api.push_invoke("r1", Duration::from_secs(30));
    ext.send_spans(&[trace(1, 2)], None, false).await;
    // No record ever comes (like the RIE): the extension stops waiting on its own.
    api.wait_next_calls(2).await;
    api.push_invoke("r2", Duration::from_secs(30));
    ext.send_spans(&[trace(2, 3), trace(3, 1)], None, false)
        .await;
    api.wait_next_calls(3).await;
    api.push_shutdown(Duration::from_secs(2));
    let exited = ext.wait_exit().await;
    assert!(exited.status.success());

    let text = std::fs::read_to_string(&out).unwrap();
    let mut ids: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["ddlambda"] == "traces")
        .flat_map(|v| {
            v["traces"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|t| t.as_array().unwrap().clone())
                .map(|s| s["span_id"].as_u64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, [1001, 1002, 2001, 2002, 2003, 3001]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrapper_end_signal_ends_the_invocation() {
    let (api, intake, ext) = started(
        Behaviour::Ok,
        &[
            ("DD_SERVERLESS_FLUSH_STRATEGY", "end"),
            // Without telemetry only the wrapper can end an invocation: make sure the
            // probe alone would not.
            ("DDLAMBDA_TELEMETRY_PROBE_MS", "0"),
        ],
    )
    .await;
    let hello = ext
        .post_json(
            "/ddlambda/v1/hello",
            json!({"runtime": "ddlambda-rust", "version": "0.1.0"}),
        )
        .await;
    assert_eq!(hello, 200);
    api.push_invoke("r1", Duration::from_secs(30));
    // The wrapper sends after the response; the extension must hold `/next` until then.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.next_calls(), 1, "/next is held for the wrapper");
    assert_eq!(ext.send_spans(&[trace(7, 2)], Some("r1"), true).await, 200);
    api.wait_next_calls(2).await;
    assert_eq!(intake.accepted_spans().len(), 2, "flushed before /next");

    // The dedicated end route works as well.
    api.push_invoke("r2", Duration::from_secs(30));
    ext.send_spans(&[trace(8, 1)], Some("r2"), false).await;
    assert_eq!(
        ext.post_json("/ddlambda/v1/invocation/end", json!({"request_id": "r2"}))
            .await,
        200
    );
    api.wait_next_calls(3).await;
    assert_eq!(intake.accepted_spans().len(), 3);
    api.push_shutdown(Duration::from_secs(2));
    assert!(ext.wait_exit().await.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_errors_for_several_invocations_then_healthy_loses_nothing() {
    let api = FakeLambda::start().await;
    // Enough 503s to fail two whole flushes (4 attempts each) and part of a third.
    let intake = FakeIntake::start(Behaviour::FailNext(503, 10)).await;
    let env = dd_env(&intake);
    let ext = Extension::start(
        &api,
        &with(&env, &[("DD_SERVERLESS_FLUSH_STRATEGY", "end")]),
    );
    api.wait_next_calls(1).await;
    api.send_telemetry(&init_start()).await;
    for i in 1..=4u64 {
        let rid = format!("r{i}");
        api.push_invoke(&rid, Duration::from_secs(30));
        ext.send_spans(&[trace(i, 2)], None, false).await;
        api.send_telemetry(&runtime_done(&rid, "success")).await;
        api.wait_next_calls(1 + i as usize).await;
    }
    api.push_shutdown(Duration::from_secs(2));
    let exited = ext.wait_exit().await;
    assert!(exited.status.success());
    let mut ids: Vec<u64> = intake.accepted_spans().iter().map(|s| s.span_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, [1001, 1002, 2001, 2002, 3001, 3002, 4001, 4002]);
    assert!(
        intake.received().iter().filter(|r| r.status == 503).count() == 10,
        "every failure was a real attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_intake_at_shutdown_exits_inside_the_deadline_and_reports_the_loss() {
    let (api, _intake, ext) = started(Behaviour::Hang, &[]).await;
    api.push_invoke("r1", Duration::from_secs(30));
    ext.send_spans(&[trace(1, 5)], None, false).await;
    api.wait_next_calls(2).await;
    let deadline = Instant::now() + Duration::from_millis(1500);
    api.push_shutdown(Duration::from_millis(1500));
    let exited = ext.wait_exit().await;
    assert!(exited.status.success());
    // The platform kills an extension still running at the deadline: exiting before it is
    // the contract (a little slack for process teardown on a loaded machine).
    assert!(
        exited.at < deadline + Duration::from_millis(500),
        "exited {:?} after the deadline",
        exited.at.saturating_duration_since(deadline)
    );
    let summary = exited
        .stderr
        .lines()
        .find(|l| l.contains("SHUTDOWN (") && l.contains("final flush"))
        .expect("shutdown summary");
    assert!(
        summary.contains("(5 spans) to the deadline") && summary.contains("5 lost at shutdown"),
        "the drop count is reported: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_buffer_bound_is_dropped_and_counted() {
    let (api, intake, ext) =
        started(Behaviour::Ok, &[("DDLAMBDA_BUFFER_MAX_BYTES", "262144")]).await;
    api.push_invoke("r1", Duration::from_secs(30));
    let mut sent = 0;
    for t in 1..=100u64 {
        ext.send_spans(&[trace(t, 50)], None, false).await;
        sent += 50;
    }
    api.wait_next_calls(2).await;
    api.push_shutdown(Duration::from_secs(2));
    let exited = ext.wait_exit().await;
    let delivered = intake.accepted_spans().len();
    assert!(delivered > 0 && delivered < sent, "{delivered} of {sent}");
    let line = exited
        .stderr
        .lines()
        .find(|l| l.contains("SHUTDOWN (") && l.contains("final flush"))
        .expect("shutdown summary");
    let dropped = sent - delivered;
    assert!(
        line.contains(&format!("{dropped} dropped at the buffer bound")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_timed_out_or_crashed_invocation_are_still_flushed() {
    let (api, intake, ext) =
        started(Behaviour::Ok, &[("DD_SERVERLESS_FLUSH_STRATEGY", "end")]).await;
    api.send_telemetry(&init_start()).await;
    api.push_invoke("r1", Duration::from_secs(30));
    ext.send_spans(&[trace(1, 2)], None, false).await;
    api.send_telemetry(&runtime_done("r1", "timeout")).await;
    api.wait_next_calls(2).await;
    assert_eq!(intake.accepted_spans().len(), 2);
    // A crash: the runtime dies mid-invocation, the platform reports the failure and shuts
    // the sandbox down.
    api.push_invoke("r2", Duration::from_secs(30));
    ext.send_spans(&[trace(2, 3)], None, false).await;
    api.send_telemetry(&runtime_done("r2", "failure")).await;
    api.wait_next_calls(3).await;
    api.push_shutdown(Duration::from_secs(2));
    assert!(ext.wait_exit().await.status.success());
    assert_eq!(intake.accepted_spans().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_sends_the_extension_idle_without_blocking_the_function() {
    let api = FakeLambda::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let ext = Extension::start(&api, &[("DD_APM_RECEIVER_PORT", port.as_str())]);
    api.wait_next_calls(1).await;
    api.push_invoke("r1", Duration::from_secs(30));
    api.wait_next_calls(2).await;
    api.push_shutdown(Duration::from_secs(2));
    let exited = ext.wait_exit().await;
    assert!(exited.status.success());
    let errors: Vec<&str> = exited
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert_eq!(errors.len(), 1, "one clear line: {errors:?}");
    assert!(errors[0].contains("running idle"), "{}", errors[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_settings_warn_and_fall_back_without_failing() {
    let api = FakeLambda::start().await;
    let ext = Extension::start(
        &api,
        &[
            ("DD_SERVERLESS_FLUSH_STRATEGY", "sometimes"),
            ("DD_FLUSH_TIMEOUT", "-3"),
        ],
    );
    api.wait_next_calls(1).await;
    assert_eq!(api.send_telemetry("this is not json").await, 200);
    assert_eq!(
        api.send_telemetry(r#"[{"type":"platform.somethingNew","record":{}}, 42]"#)
            .await,
        200
    );
    api.push_shutdown(Duration::from_secs(2));
    let exited = ext.wait_exit().await;
    assert!(exited.status.success());
    assert!(
        exited
            .stderr
            .contains("DD_SERVERLESS_FLUSH_STRATEGY=\"sometimes\"")
    );
    assert!(exited.stderr.contains("DD_FLUSH_TIMEOUT=\"-3\""));
}

/// The tracer venv's python, or `None` (test skipped loudly unless peers are required).
fn tracer_python() -> Option<std::path::PathBuf> {
    let dir = std::env::var("DDLAMBDA_PEERS_DIR").unwrap_or_else(|_| {
        // The default of `tests/peers/install`.
        std::env::var("XDG_CACHE_HOME")
            .or_else(|_| std::env::var("HOME").map(|h| format!("{h}/.cache")))
            .unwrap_or_default()
            + "/ddlambda/peers"
    });
    // Resolve the directory (not the interpreter: a venv's python is a symlink to the base
    // one, and only its own path finds the venv).
    let dir = std::path::Path::new(&dir)
        .canonicalize()
        .unwrap_or_else(|_| dir.clone().into());
    let python = dir.join("tracer/bin/python");
    if python.exists() {
        return Some(python);
    }
    if std::env::var("DDLAMBDA_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!(
            "ddtrace peer missing at {}: run tests/peers/install",
            python.display()
        );
    }
    eprintln!(
        "SKIPPED: ddtrace peer missing at {} (run tests/peers/install)",
        python.display()
    );
    None
}

/// Real ddtrace, no Telemetry records and no wrapper (what the AWS RIE gives): nothing holds
/// `/next`, and every span the tracer sent still reaches the intake by SHUTDOWN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_a_real_tracer_sent_arrives_by_shutdown_without_telemetry() {
    let Some(python) = tracer_python() else {
        return;
    };
    let (api, intake, ext) = started(Behaviour::Ok, &[]).await;
    api.push_invoke("r1", Duration::from_secs(30));
    let script = r#"
import json
from ddtrace import tracer
ids = []
for i in range(20):
    with tracer.trace("web.request", service="demo-svc", resource=f"GET /{i}") as root:
        ids.append(root.span_id)
        for j in range(2):
            with tracer.trace("db.query", service="demo-db") as child:
                ids.append(child.span_id)
tracer.flush()
tracer.shutdown()
print(json.dumps(ids))
"#;
    let out = tokio::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .env(
            "DD_TRACE_AGENT_URL",
            format!("http://127.0.0.1:{}", ext.trace_port),
        )
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .env("DD_ENV", "test")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sent: Vec<u64> = serde_json::from_slice(&out.stdout).unwrap();
    api.wait_next_calls(2).await;
    api.push_shutdown(Duration::from_secs(2));
    assert!(ext.wait_exit().await.status.success());
    let mut got: Vec<u64> = intake.accepted_spans().iter().map(|s| s.span_id).collect();
    sent.sort();
    got.sort();
    assert_eq!(got.len(), 60);
    assert_eq!(got, sent);
}

/// Back-to-back invocations, with `runtimeDone` sometimes reaching the extension before its
/// INVOKE does: every invocation ends, every span arrives before its `/next`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_invocations_each_flush_before_next() {
    let (api, intake, ext) =
        started(Behaviour::Ok, &[("DD_SERVERLESS_FLUSH_STRATEGY", "end")]).await;
    api.send_telemetry(&init_start()).await;
    let traces: Vec<_> = (0..10u64).map(|t| trace(t + 1, 100)).collect();
    for i in 0..8usize {
        let rid = format!("r{i}");
        api.push_invoke(&rid, Duration::from_secs(30));
        ext.send_spans(&traces, None, false).await;
        let before = api.next_calls();
        api.send_telemetry(&runtime_done(&rid, "success")).await;
        api.wait_next_calls(before + 1).await;
        assert_eq!(intake.accepted_spans().len(), (i + 1) * 1000);
        // An empty invocation whose runtimeDone races its INVOKE.
        let rid = format!("e{i}");
        api.push_invoke(&rid, Duration::from_secs(30));
        let before = api.next_calls();
        api.send_telemetry(&runtime_done(&rid, "success")).await;
        api.wait_next_calls(before + 1).await;
    }
    api.push_shutdown(Duration::from_secs(2));
    assert!(ext.wait_exit().await.status.success());
}

/// `continuously,<ms>`: `/next` is never held for a flush; a background timer sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_strategy_flushes_in_the_background() {
    let (api, intake, ext) = started(
        Behaviour::Ok,
        &[("DD_SERVERLESS_FLUSH_STRATEGY", "continuously,100")],
    )
    .await;
    api.send_telemetry(&init_start()).await;
    api.push_invoke("r1", Duration::from_secs(30));
    ext.send_spans(&[trace(1, 4)], None, false).await;
    api.send_telemetry(&runtime_done("r1", "success")).await;
    api.wait_next_calls(2).await;
    // Delivered by the timer while the extension sits in `/next`.
    intake.wait_spans(4).await;
    api.push_shutdown(Duration::from_secs(2));
    assert!(ext.wait_exit().await.status.success());
    assert_eq!(intake.accepted_spans().len(), 4, "nothing sent twice");
}

/// Lambda counts post-runtime time against the function timeout: a hung intake must not hold
/// `/next` past the invocation's deadline, and what could not be sent goes with a later flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_intake_never_holds_next_past_the_invocation_deadline() {
    let (api, intake, ext) =
        started(Behaviour::Hang, &[("DD_SERVERLESS_FLUSH_STRATEGY", "end")]).await;
    api.send_telemetry(&init_start()).await;
    let deadline = Instant::now() + Duration::from_millis(1500);
    api.push_invoke("r1", Duration::from_millis(1500));
    ext.send_spans(&[trace(1, 3)], None, false).await;
    api.send_telemetry(&runtime_done("r1", "success")).await;
    api.wait_next_calls(2).await;
    let (next_at, _) = api
        .calls()
        .into_iter()
        .rev()
        .find(|(_, c)| *c == Call::Next)
        .unwrap();
    assert!(
        next_at < deadline,
        "/next came {:?} after the deadline",
        next_at - deadline
    );

    // The intake recovers: the carried spans go with the next invocation's flush.
    intake.set(Behaviour::Ok);
    api.push_invoke("r2", Duration::from_secs(30));
    api.send_telemetry(&runtime_done("r2", "success")).await;
    api.wait_next_calls(3).await;
    assert_eq!(intake.accepted_spans().len(), 3);
    api.push_shutdown(Duration::from_secs(2));
    assert!(ext.wait_exit().await.status.success());
}
