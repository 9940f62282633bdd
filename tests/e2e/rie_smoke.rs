//! AWS's own emulator as a second referee: the fixture function and an extension under the
//! Runtime Interface Emulator, without Docker. A private mount namespace (`unshare -m`) puts a
//! temporary directory over `/opt` holding `extensions/<name>`; the RIE discovers it there as
//! Lambda would. Invoke once, SIGTERM the RIE, and check the extension registered, got INVOKE
//! and SHUTDOWN, and exited inside the deadline.

use std::path::Path;

use ddlambda_tests::platform::{ExtDir, fixture_ext, fixture_fn};
use ddlambda_tests::rie::Rie;
use ddlambda_tests::{bin_path, rie};
use serde_json::Value;

struct RieRun {
    log: String,
    invoke_status: u16,
    invoke_body: Value,
    exited: bool,
}

/// Runs `extension` (as `/opt/extensions/<name>`) and the fixture function under the RIE:
/// one invocation, then SIGTERM.
fn run_under_rie(rie: &Path, extension: &Path, name: &str, env: &[(&str, String)]) -> RieRun {
    let mut rie = Rie::start(rie, &fixture_fn(), &[(name, extension)], env);
    let resp = rie
        .invoke(br#"{"smoke": true}"#)
        .expect("invoke through the RIE");
    let exited = rie.terminate();
    RieRun {
        log: rie.log(),
        invoke_status: resp.status,
        invoke_body: resp.json(),
        exited,
    }
}

/// The RIE's own log line for a registered external extension.
fn registered_with_rie(log: &str, name: &str) -> bool {
    log.lines().any(|l| {
        l.contains(&format!("External agent {name} (")) && l.contains("registered, subscribed to")
    })
}

#[test]
fn fixture_extension_under_the_rie() {
    let Some(rie) = rie() else { return };
    let ext = ExtDir::new();
    let run = run_under_rie(
        &rie,
        &fixture_ext(),
        "fixture-ext",
        &[("FIXTURE_EXT_DIR", ext.env_value())],
    );
    assert!(
        run.exited,
        "the RIE did not exit after SIGTERM:\n{}",
        run.log
    );
    assert_eq!(run.invoke_status, 200, "{}", run.log);
    assert_eq!(
        run.invoke_body["event"],
        serde_json::json!({"smoke": true}),
        "{}",
        run.log
    );

    let registered = ext.of_kind("fixture-ext", "registered");
    assert_eq!(
        registered.first().map(|r| r["status"].clone()),
        Some(Value::from(200)),
        "{}",
        run.log
    );
    let events = ext.events("fixture-ext");
    assert_eq!(events.len(), 2, "{events:?}\n{}", run.log);
    assert_eq!(events[0]["eventType"], "INVOKE");
    assert_eq!(events[0]["requestId"], run.invoke_body["request_id"]);
    assert_eq!(events[1]["eventType"], "SHUTDOWN");
    let deadline = events[1]["deadlineMs"].as_u64().expect("deadlineMs");
    let exit = ext
        .records("fixture-ext")
        .into_iter()
        .find(|r| r["kind"] == "exit")
        .expect("exit recorded");
    assert!(
        exit["t_ms"].as_u64().is_some_and(|t| t <= deadline),
        "exited after the deadline"
    );
    assert!(registered_with_rie(&run.log, "fixture-ext"), "{}", run.log);
    assert_eq!(
        events[1]["shutdownReason"], "SandboxTerminated",
        "the RIE's own reason"
    );
    assert!(
        !run.log.contains("SIGKILL"),
        "nothing needed killing:\n{}",
        run.log
    );
}

/// The real extension (built first if missing): registers, survives an invocation, and exits on
/// SHUTDOWN before the RIE has to kill it.
#[test]
fn datadog_agent_under_the_rie() {
    let Some(rie) = rie() else { return };
    let agent = bin_path("datadog-agent");
    let env = [
        ("DD_API_KEY", "0".repeat(32)),
        ("DD_SITE", "127.0.0.1:9".to_string()),
    ];
    let run = run_under_rie(&rie, &agent, "datadog-agent", &env);
    assert!(
        run.exited,
        "the RIE did not exit after SIGTERM:\n{}",
        run.log
    );
    assert_eq!(run.invoke_status, 200, "{}", run.log);
    assert!(
        registered_with_rie(&run.log, "datadog-agent"),
        "{}",
        run.log
    );
    assert!(
        run.log.contains("Reset initiated: SandboxTerminated"),
        "{}",
        run.log
    );
    assert!(
        !run.log.contains("SIGKILL"),
        "datadog-agent must exit inside the SHUTDOWN deadline:\n{}",
        run.log
    );
}
