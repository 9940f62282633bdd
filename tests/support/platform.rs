//! Helpers for tests on the local platform: the fixture function and extension, named
//! extension copies, and reading what the fixture extension recorded.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::bin_path;

/// The fixture function (`tests/src/bin/fixture-fn.rs`).
pub fn fixture_fn() -> PathBuf {
    bin_path("fixture-fn")
}

/// The fixture extension (`tests/src/bin/fixture-ext.rs`).
pub fn fixture_ext() -> PathBuf {
    bin_path("fixture-ext")
}

/// A scratch directory holding named extensions (symlinks to the fixture extension, which
/// registers under its file name) and the files they record to.
pub struct ExtDir {
    dir: tempfile::TempDir,
}

impl ExtDir {
    /// A fresh directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    /// The directory (give it to extensions as `FIXTURE_EXT_DIR`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `FIXTURE_EXT_DIR` as a string.
    pub fn env_value(&self) -> String {
        self.path().display().to_string()
    }

    /// A fixture extension registering as `name`.
    pub fn extension(&self, name: &str) -> PathBuf {
        let link = self.path().join("opt").join(name);
        if !link.exists() {
            std::fs::create_dir_all(self.path().join("opt"))
                .unwrap_or_else(|e| panic!("mkdir: {e}"));
            std::os::unix::fs::symlink(fixture_ext(), &link)
                .unwrap_or_else(|e| panic!("symlink: {e}"));
        }
        link
    }

    /// Everything extension `name` recorded: `{"t_ms", "name", "kind", "data"}` objects.
    pub fn records(&self, name: &str) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.path().join(format!("{name}.jsonl"))).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The `data` of every record of one kind.
    pub fn of_kind(&self, name: &str, kind: &str) -> Vec<Value> {
        self.records(name)
            .into_iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| r["data"].clone())
            .collect()
    }

    /// The events (`/next` answers) extension `name` received.
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.of_kind(name, "event")
    }

    /// Every Telemetry API record extension `name` received, in arrival order.
    pub fn telemetry(&self, name: &str) -> Vec<Value> {
        self.of_kind(name, "telemetry")
            .into_iter()
            .flat_map(|t| t["batch"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Default for ExtDir {
    fn default() -> Self {
        Self::new()
    }
}

/// A platform builder with the fixture function and `FIXTURE_EXT_DIR` set to `ext`.
pub fn builder(ext: &ExtDir) -> ddlambda_platform::PlatformBuilder {
    ddlambda_platform::Platform::builder()
        .function(fixture_fn())
        .env("FIXTURE_EXT_DIR", ext.env_value())
}

/// A platform running the Python `script` (with the `tracer` peer's `python`, so ddtrace) under
/// the real `datadog-agent` extension. ddtrace sends to the extension's trace agent on
/// `agent_port`, quietly (no instrumentation telemetry, no remote configuration); the
/// extension sends to `intake_base` with a test API key, its DogStatsD and Telemetry listeners
/// on free ports. The script can `from lambda_loop import serve` (the Runtime API loop in
/// `tests/fixtures/payloads`). Later `env` calls override these; callers add their own and build.
pub fn ddtrace_under_extension(
    python: &std::path::Path,
    script: &std::path::Path,
    function_name: &str,
    intake_base: &str,
    agent_port: u16,
) -> ddlambda_platform::PlatformBuilder {
    ddlambda_platform::Platform::builder()
        .function(python)
        .function_args([script.to_string_lossy().into_owned()])
        .extension(crate::bin_path("datadog-agent"))
        .function_name(function_name)
        .region("eu-west-1")
        .account_id("123456789012")
        .memory_mb(256)
        .timeout(std::time::Duration::from_secs(60))
        .env(
            "PYTHONPATH",
            crate::peers_tracer::fixtures_dir().display().to_string(),
        )
        // The function's tracer.
        .env(
            "DD_TRACE_AGENT_URL",
            format!("http://127.0.0.1:{agent_port}"),
        )
        .env("DD_ENV", "demo")
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .env("DD_REMOTE_CONFIGURATION_ENABLED", "false")
        // The extension.
        .env("DD_API_KEY", "e2e-key")
        .env("DD_APM_DD_URL", intake_base)
        .env("DD_DD_URL", intake_base)
        .env("DD_APM_RECEIVER_PORT", agent_port.to_string())
        .env("DD_DOGSTATSD_PORT", crate::free_port().to_string())
        .env("DDLAMBDA_TELEMETRY_PORT", crate::free_port().to_string())
}

/// An event for the fixture function.
pub fn event(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// A built platform: the fixture function and one fixture extension per name.
pub async fn with_extensions(ext: &ExtDir, names: &[&str]) -> ddlambda_platform::Platform {
    names
        .iter()
        .fold(builder(ext), |b, name| b.extension(ext.extension(name)))
        .build()
        .await
        .expect("platform")
}

/// One invocation of the fixture function with `v`, default options.
pub async fn invoke(
    platform: &ddlambda_platform::Platform,
    v: Value,
) -> ddlambda_platform::InvokeResult {
    platform
        .invoke(event(v), ddlambda_platform::InvokeOptions::default())
        .await
        .expect("invoke")
}

/// An `X-Amzn-Trace-Id` for invocations (sampled).
pub const XRAY_HEADER: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
