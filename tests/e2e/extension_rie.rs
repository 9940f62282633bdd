//! `datadog-agent` under the AWS Runtime Interface Emulator, which accepts the Telemetry
//! subscription and never sends a record: the extension must not hold `/next` waiting for a
//! `runtimeDone` that never comes, and every span a real tracer (ddtrace) sent during the
//! sandbox's life must still be flushed by SHUTDOWN (here to the local sink's file).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ddlambda_tests::local_output::span_ids;
use ddlambda_tests::platform::fixture_fn;
use ddlambda_tests::rie::Rie;
use ddlambda_tests::{bin_path, free_port, rie, wait_until};

#[test]
fn every_span_ddtrace_sent_under_the_rie_is_flushed_by_shutdown() {
    let Some(rie) = rie() else { return };
    let Some(python) = ddlambda_tests::peers_tracer::python() else {
        return;
    };
    let agent = bin_path("datadog-agent");

    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().join("flushed.jsonl");
    let trace_port = free_port();
    let mut rie = Rie::start(
        &rie,
        &fixture_fn(),
        &[("datadog-agent", &agent)],
        &[
            ("DD_APM_RECEIVER_PORT", trace_port.to_string()),
            ("DD_DOGSTATSD_PORT", free_port().to_string()),
            ("DDLAMBDA_TELEMETRY_PORT", free_port().to_string()),
            ("DDLAMBDA_LOCAL_OUTPUT", out.display().to_string()),
            ("DD_LOG_LEVEL", "debug".to_owned()),
        ],
    );

    // The RIE starts the extension on the first invocation; the tracer sends while it runs.
    let mut sent = std::thread::scope(|scope| {
        let invoke = scope.spawn(|| rie.invoke(br#"{"mode": "echo", "sleep_ms": 1500}"#));
        let trace_addr = format!("127.0.0.1:{trace_port}");
        assert!(
            wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(
                &trace_addr
            )
            .ok())
            .is_some(),
            "the extension's trace agent never listened:\n{}",
            rie.log()
        );
        let sent = run_ddtrace(&python, &trace_addr);
        let resp = invoke
            .join()
            .expect("invoke thread")
            .expect("invoke through the RIE");
        assert_eq!(resp.status, 200, "{}", rie.log());
        sent
    });

    // SIGTERM: SHUTDOWN to the extension, 2 s before SIGKILL.
    let exited = rie.terminate();
    let log = rie.log();
    assert!(exited, "the RIE did not exit:\n{log}");
    assert!(
        !log.contains("did not exit after deadline"),
        "datadog-agent must exit inside the SHUTDOWN deadline:\n{log}"
    );

    let got = span_ids(&out);
    sent.sort_unstable();
    assert_eq!(got, sent, "every span by SHUTDOWN:\n{log}");
}

/// Ten two-span traces from ddtrace to `trace_addr`; their span ids.
fn run_ddtrace(python: &Path, trace_addr: &str) -> Vec<u64> {
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
    serde_json::from_slice(&tracer.stdout).expect("span ids")
}
