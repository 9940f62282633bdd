//! `ddlambda extract` against datadog-lambda 8.130.0 (the `tracer` peer venv) on the same
//! fixtures (`tests/fixtures/events/`, cases in `cases.json`): the same answer everywhere except
//! the deliberate differences, which are asserted one by one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ddlambda_tests::command::{output_text, peer_program, repo_root, run};
use serde_json::Value;

const XRAY_TRACE_ID: &str = "3995693151288333088";
const LIMIT: Duration = Duration::from_secs(120);

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/events")
}

fn cases() -> Vec<Value> {
    let raw = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    serde_json::from_str::<Vec<Value>>(&raw).expect("cases.json is a JSON array")
}

/// The `ddlambda` binary next to this test binary (`tests/run` builds all binaries first).
fn ddlambda_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join("ddlambda");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p ddlambda-cli` (tests/run builds it)",
        bin.display()
    );
    bin
}

/// `ddlambda extract` for one case, configured through the environment as a function would be.
fn cli(case: &Value) -> Value {
    let mut cmd = Command::new(ddlambda_bin());
    cmd.arg("extract")
        .arg(fixtures().join(case["event"].as_str().expect("event")))
        .env_remove("_X_AMZN_TRACE_ID")
        .env_remove("DD_TRACE_EXTRACTOR")
        .env_remove("DD_TRACE_PROPAGATION_STYLE")
        .env_remove("DD_TRACE_PROPAGATION_STYLE_EXTRACT")
        .env(
            "DD_MERGE_XRAY_TRACES",
            if case["merge"] == true {
                "true"
            } else {
                "false"
            },
        );
    if let Some(xray) = case["xray"].as_str() {
        cmd.args(["--xray", xray]);
    }
    if let Some(spec) = case["extractor"].as_str() {
        cmd.env("DD_TRACE_EXTRACTOR", spec);
    }
    if !case["client_context"].is_null() {
        cmd.args(["--client-context", &case["client_context"].to_string()]);
    }
    let out = run(&mut cmd, LIMIT);
    assert!(
        out.status.success(),
        "{}: {}",
        case["name"],
        output_text(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", case["name"], output_text(&out)))
}

/// datadog-lambda's answers for every case, keyed by case name; `None` when the peer is absent
/// (and not required).
fn oracle() -> Option<Value> {
    let python = peer_program("tracer", "python")?;
    let out = run(
        Command::new(python)
            .arg(repo_root().join("tests/peers/extract_oracle.py"))
            .arg(fixtures().join("cases.json"))
            .arg(fixtures()),
        LIMIT,
    );
    assert!(out.status.success(), "oracle failed: {}", output_text(&out));
    Some(serde_json::from_slice(&out.stdout).expect("oracle prints JSON"))
}

const COMPARED: [&str; 6] = [
    "source",
    "trace_id",
    "trace_id_high",
    "parent_id",
    "sampling_priority",
    "origin",
];

fn differing(ours: &Value, theirs: &Value) -> Vec<&'static str> {
    COMPARED
        .into_iter()
        .filter(|k| ours[k] != theirs[k])
        .collect()
}

#[test]
fn ddlambda_extract_agrees_with_datadog_lambda() {
    let Some(oracle) = oracle() else { return };
    let cases = cases();
    assert!(cases.len() > 150, "the case list shrank");
    let mut failures = Vec::new();
    let mut deviations = [0usize; 6];
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let ours = cli(case);
        let theirs = &oracle[name];
        assert!(theirs.is_object(), "oracle has no answer for {name}");
        let diff = differing(&ours, theirs);
        let event_ctx_lost = ours["source"] == "event" && theirs["source"] != "event";
        let ok = match case["deviation"].as_u64() {
            None => diff.is_empty(),
            // X-Ray Sampled=0: -1 here, 2 in Python; nothing else differs.
            Some(1) => {
                diff == ["sampling_priority"]
                    && ours["sampling_priority"] == -1
                    && theirs["sampling_priority"] == 2
            }
            // No priority: used with priority 1 here, dropped (→ X-Ray or nothing) in Python.
            Some(2) => event_ctx_lost && ours["sampling_priority"] == 1,
            // Non-ASCII Kinesis JSON keeps its context here, loses it in Python.
            Some(3) => event_ctx_lost && ours["trace_id"] == "4948377316357291421",
            // X-Ray fields in any order: parsed here, not in Python.
            Some(4) => {
                ours["source"] == "xray"
                    && ours["trace_id"] == XRAY_TRACE_ID
                    && theirs["source"] == "none"
            }
            // A custom extractor that finds nothing: built-ins run here, Python stops.
            Some(5) => event_ctx_lost && ours["extractor"] == "sqs",
            Some(other) => panic!("{name}: unknown deviation {other}"),
        };
        if let Some(d) = case["deviation"].as_u64() {
            deviations[d as usize] += 1;
        }
        if !ok {
            failures.push(format!(
                "{name} (deviation {}): differs in {diff:?}\n  ddlambda:       {ours}\n  datadog-lambda: {theirs}",
                case["deviation"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        deviations[1..].iter().all(|&n| n > 0),
        "every deliberate difference must be exercised: {deviations:?}"
    );
}

fn by_name(name: &str) -> Value {
    cases()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn ids(v: &Value) -> (String, String) {
    (
        v["trace_id"].as_str().unwrap_or_default().to_owned(),
        v["parent_id"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Deliberate difference 6: record 0 parents the trace, every other record's distinct context
/// becomes a span link (datadog-lambda has no links at all).
#[test]
fn batch_records_become_links() {
    let pair = |t: &str, p: &str| (t.to_owned(), p.to_owned());
    let sqs = cli(&by_name("sqs-batch"));
    assert_eq!(sqs["extractor"], "sqs");
    assert_eq!(
        ids(&sqs),
        pair("2684756524522091840", "7431398482019833808")
    );
    let links: Vec<_> = sqs["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(ids)
        .collect();
    // Record 2 repeats record 0's context and record 3 has none: two distinct links.
    assert_eq!(
        links,
        [
            pair("1111111111111111111", "2222222222222222222"),
            pair("3333333333333333333", "4444444444444444444")
        ]
    );
    assert_eq!(sqs["links"][0]["sampling_priority"], 2);

    let first_empty = cli(&by_name("sqs-batch-first-empty"));
    assert_eq!(first_empty["source"], "none");
    assert_eq!(first_empty["links"].as_array().map(Vec::len), Some(1));

    for (case, want) in [
        (
            "kinesis-batch",
            pair("1111111111111111111", "2222222222222222222"),
        ),
        (
            "sns-batch",
            pair("3333333333333333333", "4444444444444444444"),
        ),
    ] {
        let out = cli(&by_name(case));
        let links: Vec<_> = out["links"]
            .as_array()
            .expect("links")
            .iter()
            .map(ids)
            .collect();
        assert_eq!(links, [want], "{case}");
    }
    assert_eq!(cli(&by_name("sqs-string"))["links"], Value::Array(vec![]));
}

#[test]
fn extractor_names_say_where_the_context_came_from() {
    for (case, source, extractor) in [
        ("sqs-sns-binary", "event", Some("sqs")),
        ("api-gateway-authorizer", "event", Some("http")),
        ("appsync", "event", Some("appsync")),
        ("eventbridge", "event", Some("eventbridge")),
        ("step-functions-payload", "event", Some("step-functions")),
        (
            "client-context-after-bad-sqs",
            "event",
            Some("client-context"),
        ),
        ("custom-declarative", "custom", Some("declarative")),
        ("xray-merge-lineage", "xray", None),
        ("xray-no-merge", "none", None),
        ("sqs-bad-json", "none", None),
    ] {
        let out = cli(&by_name(case));
        assert_eq!(out["source"], source, "{case}: {out}");
        assert_eq!(out["extractor"].as_str(), extractor, "{case}: {out}");
    }
}

#[test]
fn merge_keeps_event_trace_under_xray_parent() {
    let out = cli(&by_name("sqs-string+xray-merge"));
    assert_eq!(out["source"], "event");
    assert_eq!(out["trace_id"], "2684756524522091840");
    assert_eq!(out["parent_id"], "10713633173203262661");
    assert_eq!(out["sampling_priority"], 1);
    let unmerged = cli(&by_name("xray-event-no-merge"));
    assert_eq!(unmerged["parent_id"], "7431398482019833808");
}

#[test]
fn bad_extractor_configuration_is_reported_and_builtins_run() {
    for (spec, needle) in [
        ("my_module.extractor", "not a registered extractor"),
        ("/detail|gzip", "unknown step"),
    ] {
        let out = run(
            Command::new(ddlambda_bin())
                .arg("extract")
                .arg(fixtures().join("sqs-string.json"))
                .env("DD_TRACE_EXTRACTOR", spec),
            LIMIT,
        );
        assert!(out.status.success(), "{}", output_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{}",
            output_text(&out)
        );
        let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(result["extractor"], "sqs", "{result}");
    }
    for bad in ["no-such-event.json", "cases.json"] {
        let out = run(
            Command::new(ddlambda_bin())
                .arg("extract")
                .arg(fixtures().join(bad))
                .args(["--client-context", "{not json"]),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    }
}
