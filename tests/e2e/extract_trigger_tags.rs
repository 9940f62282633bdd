//! Trigger tags on `aws.lambda` (`function_trigger.event_source[_arn]` and the HTTP facets):
//! ddlambda's `trigger::trigger_tags` against datadog-lambda 8.130.0's `extract_trigger_tags`
//! on every fixture in `tests/fixtures/events/`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use ddlambda::trigger::{EventSource, trigger_tags};
use ddlambda_tests::command::{output_text, peer_program, repo_root, run};
use serde_json::Value;

const FUNCTION_ARN: &str = "arn:aws:lambda:sa-east-1:123456789012:function:tagged:live";

const PYTHON: &str = r#"
import json, logging, sys
logging.disable(logging.CRITICAL)
from datadog_lambda.trigger import extract_trigger_tags
class Context:
    invoked_function_arn = sys.argv[1]
out = {}
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        event = json.load(f)
    try:
        out[path] = {k: str(v) for k, v in extract_trigger_tags(event, Context()).items()}
    except Exception as e:
        out[path] = {"error": repr(e)}
print(json.dumps(out))
"#;

#[test]
fn trigger_tags_match_datadog_lambda() {
    let Some(python) = peer_program("tracer", "python") else {
        return;
    };
    let dir = repo_root().join("tests/fixtures/events");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".json") && !p.ends_with("cases.json"))
        .collect();
    files.sort();
    let out = run(
        Command::new(python)
            .args(["-c", PYTHON, FUNCTION_ARN])
            .args(&files),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let theirs: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_slice(&out.stdout).expect("oracle JSON");
    let mut failures = Vec::new();
    let mut compared = 0;
    for file in &files {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("read")).expect("JSON");
        let ours: BTreeMap<String, String> =
            trigger_tags(&event, EventSource::detect(&event), FUNCTION_ARN)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
        let want = &theirs[file];
        if want.contains_key("error") {
            // datadog-lambda raised (its wrapper then logs and tags nothing); ddlambda still
            // tags what it can, so only the event source must agree.
            continue;
        }
        compared += 1;
        if &ours != want {
            failures.push(format!(
                "{file}:\n  ddlambda:       {ours:?}\n  datadog-lambda: {want:?}"
            ));
        }
    }
    assert!(compared > 80, "only {compared} fixtures compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
