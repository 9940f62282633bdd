//! `datadog-agent` under the AWS Runtime Interface Emulator, which accepts the Telemetry
//! subscription and never sends a record: the extension must not hold `/next` waiting for a
//! `runtimeDone` that never comes, and every span a real tracer (ddtrace) sent during the
//! sandbox's life must still be flushed by SHUTDOWN (here to the local sink's file).

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use ddlambda_tests::http::request;
use ddlambda_tests::platform::fixture_fn;
use ddlambda_tests::{ChildGuard, bin_path, free_port, peers, rie, wait_until};
use serde_json::Value;

#[test]
fn every_span_ddtrace_sent_under_the_rie_is_flushed_by_shutdown() {
    let Some(rie) = rie() else { return };
    let Some(peers) = peers() else { return };
    let python = peers.venv_bin("tracer", "python");
    let agent = bin_path("datadog-agent");

    let opt = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(opt.path().join("extensions")).expect("mkdir");
    std::fs::copy(&agent, opt.path().join("extensions/datadog-agent")).expect("copy");
    let out = opt.path().join("flushed.jsonl");
    let log_path = opt.path().join("rie.log");
    let log = File::create(&log_path).expect("log file");
    let (invoke_port, api_port, trace_port) = (free_port(), free_port(), free_port());
    let script = format!(
        "mount --bind '{}' /opt && exec '{}' --log-level debug --runtime-interface-emulator-address 127.0.0.1:{invoke_port} \
         --runtime-api-address 127.0.0.1:{api_port} '{}'",
        opt.path().display(),
        rie.display(),
        fixture_fn().display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .env("DD_APM_RECEIVER_PORT", trace_port.to_string())
        .env("DD_DOGSTATSD_PORT", free_port().to_string())
        .env("DDLAMBDA_TELEMETRY_PORT", free_port().to_string())
        .env("DDLAMBDA_LOCAL_OUTPUT", out.display().to_string())
        .env("DD_LOG_LEVEL", "debug");
    let mut guard = ChildGuard::spawn(&mut cmd).expect("start the RIE under unshare");
    let rie_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let addr = format!("127.0.0.1:{invoke_port}");
    assert!(
        wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(
            &addr
        )
        .ok())
        .is_some(),
        "the RIE never listened:\n{}",
        rie_log()
    );

    // The RIE starts the extension on the first invocation; the tracer sends while it runs.
    let invoke = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            request(
                &addr,
                "POST",
                "/2015-03-31/functions/function/invocations",
                &[("Content-Type", "application/json")],
                br#"{"mode": "echo", "sleep_ms": 1500}"#,
                Some(Duration::from_secs(60)),
            )
        })
    };
    let trace_addr = format!("127.0.0.1:{trace_port}");
    assert!(
        wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(
            &trace_addr
        )
        .ok())
        .is_some(),
        "the extension's trace agent never listened:\n{}",
        rie_log()
    );
    let tracer = Command::new(python)
        .arg("-c")
        .arg(
            r#"
import json
from ddtrace import tracer
ids = []
for i in range(10):
    with tracer.trace("web.request", service="demo-svc", resource=f"GET /{i}") as root:
        ids.append(root.span_id)
        with tracer.trace("db.query", service="demo-db") as child:
            ids.append(child.span_id)
tracer.flush()
tracer.shutdown()
print(json.dumps(ids))
"#,
        )
        .env("DD_TRACE_AGENT_URL", format!("http://{trace_addr}"))
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .output()
        .expect("run ddtrace");
    assert!(
        tracer.status.success(),
        "{}",
        String::from_utf8_lossy(&tracer.stderr)
    );
    let mut sent: Vec<u64> = serde_json::from_slice(&tracer.stdout).expect("span ids");
    let resp = invoke
        .join()
        .expect("invoke thread")
        .expect("invoke through the RIE");
    assert_eq!(resp.status, 200, "{}", rie_log());

    // SIGTERM: SHUTDOWN to the extension, 2 s before SIGKILL.
    let _ = Command::new("kill")
        .args(["-TERM", &guard.id().to_string()])
        .status();
    let exited = wait_until(Duration::from_secs(20), || {
        guard.0.try_wait().ok().flatten()
    });
    let log = rie_log();
    assert!(exited.is_some(), "the RIE did not exit:\n{log}");
    assert!(
        !log.contains("did not exit after deadline"),
        "datadog-agent must exit inside the SHUTDOWN deadline:\n{log}"
    );

    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let mut got: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["ddlambda"] == "traces")
        .flat_map(|v| {
            v["traces"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .flat_map(|t| t.as_array().cloned().unwrap_or_default())
        })
        .filter(|s| s["meta"]["_dd.ddlambda.source"] != "telemetry")
        .filter_map(|s| s["span_id"].as_u64())
        .collect();
    sent.sort();
    got.sort();
    assert_eq!(got, sent, "every span by SHUTDOWN:\n{log}");
}
