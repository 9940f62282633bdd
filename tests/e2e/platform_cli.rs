//! `ddlambda invoke`: the timeline summary and REPORT lines on stdout, and the exit status.

use std::process::Command;

use ddlambda_tests::bin_path;
use ddlambda_tests::platform::{ExtDir, fixture_fn};

fn invoke(ext: &ExtDir, event: &str, extra: &[&str]) -> (bool, String) {
    let event_file = ext.path().join("event.json");
    std::fs::write(&event_file, event).expect("event file");
    let out = Command::new(bin_path("ddlambda"))
        .arg("invoke")
        .arg("--function")
        .arg(fixture_fn())
        .arg("--extension")
        .arg(ext.extension("cli-ext"))
        .arg("--event")
        .arg(&event_file)
        .arg("--env")
        .arg(format!("FIXTURE_EXT_DIR={}", ext.env_value()))
        .args(extra)
        .output()
        .expect("run ddlambda invoke");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn prints_reports_and_the_summary() {
    let ext = ExtDir::new();
    let (ok, out) = invoke(
        &ext,
        r#"{"hello": "cli"}"#,
        &["--times", "2", "--timeout-ms", "5000", "--verbose"],
    );
    assert!(ok, "{out}");
    let reports: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("REPORT RequestId: "))
        .collect();
    assert_eq!(reports.len(), 2, "{out}");
    assert!(
        reports[0].contains("Init Duration: "),
        "cold start: {}",
        reports[0]
    );
    assert!(
        !reports[1].contains("Init Duration: "),
        "warm: {}",
        reports[1]
    );
    assert!(reports.iter().all(|r| r.contains("Memory Size: 128 MB")));
    assert!(
        out.contains(r#""hello":"cli""#),
        "the response is printed: {out}"
    );
    assert!(
        out.contains("extension cli-ext: init (exec → first /next)"),
        "{out}"
    );
    assert!(out.contains("post-runtime (runtimeDone → /next)"), "{out}");
    assert!(
        out.contains("InitDone"),
        "--verbose prints the timeline: {out}"
    );
    assert_eq!(ext.events("cli-ext").len(), 3, "INVOKE, INVOKE, SHUTDOWN");
}

#[test]
fn exits_non_zero_when_the_function_fails() {
    let ext = ExtDir::new();
    let (ok, out) = invoke(&ext, r#"{"mode": "crash"}"#, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("Runtime.ExitError"), "{out}");
    assert!(out.contains("Status: failure"), "{out}");
    let (ok, out) = invoke(&ext, r#"{"mode": "error"}"#, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("Fixture.Error"), "{out}");
}

#[test]
fn refuses_an_event_that_is_not_json() {
    let ext = ExtDir::new();
    let event_file = ext.path().join("event.json");
    std::fs::write(&event_file, "not json").expect("event file");
    let out = Command::new(bin_path("ddlambda"))
        .args(["invoke", "--function"])
        .arg(fixture_fn())
        .arg("--event")
        .arg(&event_file)
        .output()
        .expect("run ddlambda invoke");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not JSON"));
}
