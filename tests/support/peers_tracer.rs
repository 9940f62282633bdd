//! Real tracer peers installed by `tests/peers/install`: ddtrace (Python), dd-trace (Node) and
//! ddapm-test-agent, with the house rule for absent peers (fail under
//! `DDLAMBDA_REQUIRE_PEERS=1`, skip loudly otherwise) and processes killed by PID on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::{ChildGuard, free_port, peers_dir, require_peer as require};

/// The `tracer` venv's Python, with ddtrace 4.16.0.
pub fn python() -> Option<PathBuf> {
    require(
        "ddtrace (venv tracer)",
        peers_dir().join("tracer/bin/python"),
    )
}

/// The `node_modules` holding dd-trace 5.132.0, for `NODE_PATH`.
pub fn node_modules() -> Option<PathBuf> {
    let modules = require("dd-trace (node)", peers_dir().join("node/node_modules"))?;
    require("dd-trace (node)", modules.join("dd-trace"))?;
    Some(modules)
}

/// The recorded payloads and the workloads that produced them.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/payloads")
}

/// Runs a tracer workload to completion (bounded, output drained while it runs, as
/// [`crate::command::run`] does), returning its output on failure.
pub fn run_workload(mut cmd: Command, timeout: Duration) -> Result<(), String> {
    let out = crate::command::run(&mut cmd, timeout);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} exited with {}: {}",
            out.status,
            crate::command::output_text(&out)
        ))
    }
}

/// ddapm-test-agent 1.69.1 on free loopback ports, optionally proxying to `agent_url` (it then
/// validates every request and forwards it there).
pub struct TestAgent {
    pub port: u16,
    /// Its stderr, shown if it fails to start; removed with it.
    log_path: PathBuf,
    _child: ChildGuard,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log_path);
    }
}

impl TestAgent {
    pub fn start(agent_url: Option<&str>, checks: &[&str]) -> Option<Self> {
        let bin = require(
            "ddapm-test-agent (venv testagent)",
            peers_dir().join("testagent/bin/ddapm-test-agent"),
        )?;
        let port = free_port();
        let log_path = std::env::temp_dir().join(format!("ddapm-test-agent-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("test agent log file");
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--otlp-http-port", &free_port().to_string()])
            .args(["--otlp-grpc-port", &free_port().to_string()])
            // Its `--enabled-checks` flag does not parse (argparse `type=List[str]`); the
            // variable does.
            .env("ENABLED_CHECKS", checks.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().expect("log file"));
        if let Some(url) = agent_url {
            cmd.args(["--agent-url", url]);
        }
        let child = ChildGuard(cmd.spawn().expect("ddapm-test-agent starts"));
        let agent = TestAgent {
            port,
            log_path: log_path.clone(),
            _child: child,
        };
        let up = crate::wait_until(Duration::from_secs(60), || {
            agent.get("/test/session/traces").ok()
        });
        assert!(
            up.is_some(),
            "ddapm-test-agent did not answer on port {port} within 60 s: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        Some(agent)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The traces it received, as it decoded them (JSON: a list of traces of spans).
    pub fn traces(&self) -> serde_json::Value {
        let body = self
            .get("/test/session/traces")
            .expect("test agent answers");
        serde_json::from_str(&body).expect("test agent returns JSON")
    }

    /// Waits (bounded) until it holds at least `spans` spans.
    pub fn wait_for_spans(&self, spans: usize, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let traces = self.traces();
            let count: usize = traces.as_array().map_or(0, |t| {
                t.iter().filter_map(|t| t.as_array()).map(Vec::len).sum()
            });
            if count >= spans || Instant::now() >= deadline {
                return traces;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts that each of `checks` ran at least `times` times and never failed, by the test
    /// agent's `/test/trace_check/summary`.
    pub fn assert_checks_passed(&self, checks: &[&str], times: u64) {
        let body = self.get("/test/trace_check/summary").expect("summary");
        let summary: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        for check in checks {
            let result = &summary[check];
            assert!(
                result["Passed_Checks"].as_u64().unwrap_or(0) >= times
                    && result["Failed_Checks"].as_u64() == Some(0),
                "check {check}: {summary:#}"
            );
        }
    }

    /// A GET to the test agent: the body, or an error unless it answers 200.
    fn get(&self, path: &str) -> std::io::Result<String> {
        let r = crate::http::request(
            &format!("127.0.0.1:{}", self.port),
            "GET",
            path,
            &[],
            b"",
            Some(Duration::from_secs(10)),
        )?;
        if r.status != 200 {
            return Err(std::io::Error::other(format!("HTTP {}", r.status)));
        }
        Ok(String::from_utf8_lossy(&r.body).into_owned())
    }
}

/// Every span of a list of traces of spans, flattened.
pub fn flatten(traces: &serde_json::Value) -> Vec<serde_json::Value> {
    traces
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_array)
        .flatten()
        .cloned()
        .collect()
}
