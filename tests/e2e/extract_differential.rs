//! `ddlambda extract` against datadog-lambda 8.130.0 (the `tracer` peer venv) on the same
//! fixtures (`tests/fixtures/events/`, cases in `cases.json`): the same answer everywhere except
//! the deliberate differences, which are asserted one by one. A case's `env` sets the tracer's
//! propagation settings (`DD_TRACE_PROPAGATION_STYLE[_EXTRACT]`, `DD_TRACE_BAGGAGE_TAG_KEYS`, …)
//! for both sides.
//!
//! The tags extraction leaves for the first span (`_dd.p.*`, `_dd.parent_id`,
//! `_dd.propagation_error`, `baggage.*`) are not part of `ddlambda extract`'s output: they are
//! compared from the same decision made in-process against the meta of ddtrace 4.16.0's extracted
//! context.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ddlambda::extract::{Chain, Decision, InvocationInfo, Propagator, Registry};
use ddlambda_tests::bin_path;
use ddlambda_tests::command::{output_text, peer_program, repo_root, run};
use serde_json::Value;

/// The tracer settings a case's `env` may set; removed from the command's environment otherwise.
const TRACER_SETTINGS: [&str; 6] = [
    "DD_TRACE_PROPAGATION_STYLE",
    "DD_TRACE_PROPAGATION_STYLE_EXTRACT",
    "DD_TRACE_PROPAGATION_EXTRACT_FIRST",
    "DD_TRACE_PROPAGATION_BEHAVIOR_EXTRACT",
    "DD_TRACE_BAGGAGE_TAG_KEYS",
    "OTEL_PROPAGATORS",
];

const XRAY_TRACE_ID: &str = "3995693151288333088";
const LIMIT: Duration = Duration::from_secs(120);

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/events")
}

fn cases() -> Vec<Value> {
    let raw = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    serde_json::from_str::<Vec<Value>>(&raw).expect("cases.json is a JSON array")
}

/// `ddlambda extract` for one case, configured through the environment as a function would be.
fn cli(case: &Value) -> Value {
    let mut cmd = Command::new(bin_path("ddlambda"));
    cmd.arg("extract")
        .arg(fixtures().join(case["event"].as_str().expect("event")))
        .env_remove("_X_AMZN_TRACE_ID")
        .env_remove("DD_TRACE_EXTRACTOR")
        .env(
            "DD_MERGE_XRAY_TRACES",
            if case["merge"] == true {
                "true"
            } else {
                "false"
            },
        );
    for name in TRACER_SETTINGS {
        cmd.env_remove(name);
    }
    for (name, value) in case_env(case) {
        cmd.env(name, value);
    }
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

/// The tracer settings of a case.
fn case_env(case: &Value) -> BTreeMap<String, String> {
    let Some(env) = case["env"].as_object() else {
        return BTreeMap::new();
    };
    env.iter()
        .map(|(k, v)| {
            assert!(
                TRACER_SETTINGS.contains(&k.as_str()),
                "{}: {k}",
                case["name"]
            );
            (
                k.clone(),
                v.as_str().expect("env values are strings").to_owned(),
            )
        })
        .collect()
}

/// The decision `ddlambda extract` makes for a case, made in-process with the case's settings.
fn decide(case: &Value) -> Decision {
    let env = case_env(case);
    let propagator = Propagator::from_lookup(|name| env.get(name).cloned());
    let mut chain = Chain::new()
        .with_propagator(propagator)
        .with_merge_xray_traces(case["merge"] == true);
    if let Some(spec) = case["extractor"].as_str() {
        chain = chain
            .with_custom_spec(&Registry::new(), spec)
            .expect("the cases' extractors are valid");
    }
    let path = fixtures().join(case["event"].as_str().expect("event"));
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("event")).expect("JSON");
    let info = InvocationInfo {
        client_context: Some(case["client_context"].clone()).filter(|c| !c.is_null()),
        ..InvocationInfo::default()
    };
    chain.decide(&event, &info, case["xray"].as_str())
}

/// The span tags (`_dd.parent_id`, `_dd.propagation_error`, `baggage.*`) and the propagation
/// tags of a decision, as the oracle prints them.
fn tags(decision: &Decision) -> (Value, Value) {
    let json = |map| serde_json::to_value(map).expect("tags");
    match &decision.context {
        Some(c) => (json(&c.span_tags), json(&c.propagation_tags)),
        None => (
            Value::Object(Default::default()),
            Value::Object(Default::default()),
        ),
    }
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
    assert!(cases.len() > 260, "the case list shrank");
    let mut failures = Vec::new();
    let mut deviations = [0usize; 6];
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let ours = cli(case);
        let theirs = &oracle[name];
        assert!(theirs.is_object(), "oracle has no answer for {name}");
        let decision = decide(case);
        assert_eq!(
            (
                decision.source.as_str(),
                decision.context.as_ref().map(|c| c.parent_id.to_string())
            ),
            (
                ours["source"].as_str().expect("source"),
                ours["parent_id"].as_str().map(str::to_owned)
            ),
            "{name}: the in-process decision differs from ddlambda extract's"
        );
        let mut diff = differing(&ours, theirs);
        let (span_tags, propagation_tags) = tags(&decision);
        if theirs["span_tags"].is_object() && ours["source"] == theirs["source"] {
            if span_tags != theirs["span_tags"] {
                diff.push("span_tags");
            }
            if propagation_tags != theirs["propagation_tags"] {
                diff.push("propagation_tags");
            }
        }
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
                "{name} (deviation {}): differs in {diff:?}\n  ddlambda:       {ours} span tags {span_tags} propagation tags {propagation_tags}\n  datadog-lambda: {theirs}",
                case["deviation"],
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
            Command::new(bin_path("ddlambda"))
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
            Command::new(bin_path("ddlambda"))
                .arg("extract")
                .arg(fixtures().join(bad))
                .args(["--client-context", "{not json"]),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    }
}

/// The propagation styles beyond Datadog and W3C, with values checked against ddtrace 4.16.0
/// (the differential test above compares every case; these hold without the peer too).
#[test]
fn b3_baggage_and_last_parent() {
    let out = cli(&by_name("propagation-b3multi-128[b3multi]"));
    assert_eq!(out["trace_id_high"], "80f198ee56343ba8", "{out}");
    assert_eq!(out["parent_id"], "16453819474850114513", "{out}");
    assert_eq!(out["sampling_priority"], 2, "{out}");
    // B3 headers are read only when a B3 style is configured.
    assert_eq!(cli(&by_name("propagation-b3multi-64"))["source"], "none");
    assert_eq!(
        cli(&by_name("propagation-b3-sampled-0[b3]"))["sampling_priority"],
        0
    );
    assert_eq!(
        cli(&by_name("propagation-b3-sampled-d[b3]"))["sampling_priority"],
        2
    );
    // Order decides between B3 and Datadog.
    assert_eq!(
        cli(&by_name("propagation-b3-and-datadog[datadog,b3]"))["trace_id"],
        "7"
    );
    assert_eq!(
        cli(&by_name("propagation-b3-and-datadog[b3,datadog]"))["trace_id_high"],
        "80f198ee56343ba8"
    );
    for none in [
        "propagation-datadog[none]",
        "propagation-datadog[empty-extract]",
        "propagation-b3-sampled-1[legacy-name]",
        "propagation-baggage-only",
        "propagation-b3-deny-then-datadog[b3,datadog]",
    ] {
        assert_eq!(cli(&by_name(none))["source"], "none", "{none}");
    }

    let tags = |name: &str| {
        let decision = decide(&by_name(name));
        decision.context.map(|c| c.span_tags).unwrap_or_default()
    };
    let with_p = decide(&by_name("propagation-parent-id-with-p"));
    assert_eq!(with_p.context.as_ref().map(|c| c.parent_id), Some(456));
    assert_eq!(
        tags("propagation-parent-id-with-p")["_dd.parent_id"],
        "0000000000000abc"
    );
    assert_eq!(
        tags("propagation-parent-id-without-p")["_dd.parent_id"],
        "0000000000000141"
    );
    assert!(tags("propagation-parent-id-with-p[extract-first]").is_empty());
    let baggage = tags("propagation-baggage");
    assert_eq!(baggage["baggage.user.id"], "al ice");
    assert_eq!(baggage["baggage.session.id"], "sé%zz");
    assert_eq!(baggage.len(), 3, "{baggage:?}");
    assert_eq!(
        tags("propagation-baggage-too-many")
            .keys()
            .collect::<Vec<_>>(),
        ["baggage.session.id"]
    );
}
