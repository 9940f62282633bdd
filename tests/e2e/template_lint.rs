//! template.yaml passes cfn-lint and `sam validate --lint` (the real tools, offline, no AWS
//! credentials), a broken copy does not, and the names it builds exist in the repository.
//!
//! Lint is a partial check (a misspelled event property passes both tools), so the test of
//! names covers what matters most for `sam build`: the binaries and the Makefile target.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ddlambda_tests::command::{output_text as text, peer_program, repo_root, run};

/// Far above the 1–3 s either tool takes, for a loaded 2-core machine.
const LINT_LIMIT: Duration = Duration::from_secs(300);

fn aws_tool(name: &str) -> Option<PathBuf> {
    peer_program("aws", name)
}

/// A lint command: offline, no credentials, no telemetry, run from the repository root.
fn lint_command(tool: &Path) -> Command {
    let mut cmd = Command::new(tool);
    cmd.current_dir(repo_root())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_CONFIG_FILE", "/dev/null");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn cfn_lint(tool: &Path, template: &Path) -> Output {
    // Informational checks too: the template sets every retention and deletion policy.
    run(
        lint_command(tool)
            .args(["--include-checks", "I", "--"])
            .arg(template),
        LINT_LIMIT,
    )
}

fn sam_validate_lint(tool: &Path, template: &Path) -> Output {
    run(
        lint_command(tool)
            .args(["validate", "--lint", "--template"])
            .arg(template),
        LINT_LIMIT,
    )
}

fn template() -> PathBuf {
    repo_root().join("template.yaml")
}

#[test]
fn cfn_lint_finds_nothing_in_the_template() {
    let Some(tool) = aws_tool("cfn-lint") else {
        return;
    };
    let out = cfn_lint(&tool, &template());
    assert!(out.status.success(), "cfn-lint failed:\n{}", text(&out));
    assert_eq!(text(&out).trim(), "", "cfn-lint reported findings");
}

#[test]
fn sam_validate_lint_accepts_the_template() {
    let Some(tool) = aws_tool("sam") else {
        return;
    };
    let out = sam_validate_lint(&tool, &template());
    assert!(
        out.status.success(),
        "sam validate --lint failed:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("is a valid SAM Template"),
        "unexpected output:\n{}",
        text(&out)
    );
}

/// Both tools must flag an out-of-range memory size, or the clean results above prove nothing.
#[test]
fn both_tools_flag_a_broken_copy() {
    let (Some(cfn), Some(sam)) = (aws_tool("cfn-lint"), aws_tool("sam")) else {
        return;
    };
    let good = std::fs::read_to_string(template()).expect("read template.yaml");
    let bad = good.replacen("MemorySize: 256", "MemorySize: 99999", 1);
    assert_ne!(good, bad, "template.yaml no longer sets `MemorySize: 256`");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("template_lint");
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let broken = dir.join("broken-template.yaml");
    std::fs::write(&broken, bad).expect("write broken template");

    for (name, out) in [
        ("cfn-lint", cfn_lint(&cfn, &broken)),
        ("sam validate --lint", sam_validate_lint(&sam, &broken)),
    ] {
        assert!(
            !out.status.success(),
            "{name} accepted MemorySize 99999:\n{}",
            text(&out)
        );
        assert!(
            text(&out).contains("E3034"),
            "{name} failed without the range finding E3034:\n{}",
            text(&out)
        );
    }
}

/// `sam build` resolves these by name: each `Binary:` must be a binary of the examples crate,
/// and the layer's logical id must have its `build-<id>` target in layer/Makefile.
#[test]
fn template_names_binaries_and_makefile_target_that_exist() {
    let template = std::fs::read_to_string(template()).expect("read template.yaml");
    let binaries: Vec<&str> = template
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Binary:"))
        .map(str::trim)
        .collect();
    assert_eq!(
        binaries,
        [
            "sqs-consumer",
            "sns-consumer",
            "kinesis-consumer",
            "producer"
        ],
        "the template's function binaries changed; update this test and the README"
    );

    let metadata = run(
        Command::new(env!("CARGO")).current_dir(repo_root()).args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
        ]),
        LINT_LIMIT,
    );
    assert!(
        metadata.status.success(),
        "cargo metadata failed:\n{}",
        text(&metadata)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).expect("cargo metadata prints JSON");
    let example_bins: Vec<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["name"] == "ddlambda-examples")
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|t| t["name"].as_str())
        .collect();
    for bin in &binaries {
        assert!(
            example_bins.contains(bin),
            "template.yaml builds binary {bin:?}, which ddlambda-examples lacks (it has {example_bins:?})"
        );
    }

    assert!(
        template.contains("\n  DatadogExtensionLayer:\n    Type: AWS::Serverless::LayerVersion"),
        "the layer's logical id changed; layer/Makefile's target must follow"
    );
    let makefile =
        std::fs::read_to_string(repo_root().join("layer/Makefile")).expect("read layer/Makefile");
    assert!(
        makefile
            .lines()
            .any(|line| line.starts_with("build-DatadogExtensionLayer:")),
        "layer/Makefile lacks the target build-DatadogExtensionLayer that SAM runs"
    );
}
