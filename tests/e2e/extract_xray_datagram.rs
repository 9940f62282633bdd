//! The "datadog-metadata" X-Ray subsegment: what ddlambda sends to `AWS_XRAY_DAEMON_ADDRESS`
//! for an extracted context, byte for byte what datadog-lambda 8.130.0's wrapper sends for the
//! same event and trace header (apart from the random id and the clock), over UDP on loopback.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use ddlambda::extract::{Chain, InvocationInfo};
use ddlambda_tests::command::{output_text, peer_program, repo_root, run};
use serde_json::Value;

const SAMPLED: &str = "Root=1-5e272390-8c398be037738dc042009320;Parent=94ae789b969f1cc5;Sampled=1";

/// (event fixture, X-Ray header)
fn cases() -> Vec<(&'static str, String)> {
    vec![
        ("sqs-string.json", SAMPLED.to_owned()),
        ("api-gateway-128.json", SAMPLED.to_owned()),
        ("eventbridge.json", format!("{SAMPLED};Lineage=c6c5b1b9:0")),
        ("sqs-string.json", SAMPLED.replace("Sampled=1", "Sampled=0")),
        ("direct-invoke.json", SAMPLED.to_owned()),
    ]
}

/// Runs datadog-lambda's wrapper on each case (tracing off: the subsegment is sent before the
/// tracer is involved) and prints, per case, the `trace` subsegments its daemon socket received.
const PYTHON: &str = r#"
import json, os, socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
sock.settimeout(0.5)
os.environ["AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1:%d" % sock.getsockname()[1]
os.environ["AWS_LAMBDA_FUNCTION_NAME"] = "datagram-oracle"
os.environ["DD_TRACE_ENABLED"] = "false"
os.environ["DD_ENHANCED_METRICS"] = "false"
from datadog_lambda.wrapper import datadog_lambda_wrapper

class Context:
    client_context = None
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:datagram-oracle"
    function_name = "datagram-oracle"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    def get_remaining_time_in_millis(self):
        return 60000

handler = datadog_lambda_wrapper(lambda event, context: {"statusCode": 200})
results = []
for event_path, header in json.loads(sys.argv[1]):
    os.environ["_X_AMZN_TRACE_ID"] = header
    with open(event_path) as f:
        handler(json.load(f), Context())
    got = []
    try:
        while True:
            got.append(sock.recv(65535).decode())
    except socket.timeout:
        pass
    results.append([d for d in got if '"trace":{' in d])
print("RESULTS " + json.dumps(results))
"#;

fn python_datagrams() -> Option<Vec<Vec<String>>> {
    let python = peer_program("tracer", "python")?;
    let fixtures = repo_root().join("tests/fixtures/events");
    let args: Vec<(String, String)> = cases()
        .into_iter()
        .map(|(f, h)| (fixtures.join(f).display().to_string(), h))
        .collect();
    let out = run(
        Command::new(python)
            .args(["-c", PYTHON])
            .arg(serde_json::to_string(&args).expect("json"))
            .env_remove("DD_MERGE_XRAY_TRACES")
            .env_remove("DD_TRACE_EXTRACTOR"),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULTS "))
        .unwrap_or_else(|| panic!("no RESULTS line: {}", output_text(&out)));
    Some(serde_json::from_str(line).expect("results JSON"))
}

/// What ddlambda sends for each case, received on a loopback UDP socket.
fn ddlambda_datagrams() -> Vec<Vec<String>> {
    let daemon = UdpSocket::bind("127.0.0.1:0").expect("bind");
    daemon
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let address = daemon.local_addr().expect("addr").to_string();
    let fixtures = repo_root().join("tests/fixtures/events");
    cases()
        .into_iter()
        .map(|(file, header)| {
            let raw = std::fs::read_to_string(fixtures.join(file)).expect("fixture");
            let event: Value = serde_json::from_str(&raw).expect("fixture JSON");
            let decision = Chain::new().decide(&event, &InvocationInfo::default(), Some(&header));
            let Some(datagram) = decision.metadata_datagram() else {
                return Vec::new();
            };
            assert!(ddlambda::xray::send_to(&address, &datagram).expect("send"));
            let mut buf = [0u8; 65535];
            let n = daemon.recv(&mut buf).expect("datagram within 10 s");
            vec![String::from_utf8_lossy(&buf[..n]).into_owned()]
        })
        .collect()
}

/// Replaces the random id and the timestamps, keeping everything else byte for byte.
fn normalize(datagram: &str) -> String {
    let mut out = datagram.to_owned();
    for (key, end) in [
        ("\"id\":\"", '"'),
        ("\"start_time\":", ','),
        ("\"end_time\":", ','),
    ] {
        let start = out
            .find(key)
            .unwrap_or_else(|| panic!("{key} in {datagram}"))
            + key.len();
        let len = out[start..].find(end).expect("value end");
        out.replace_range(start..start + len, "_");
    }
    out
}

#[test]
fn metadata_subsegment_matches_datadog_lambda() {
    let Some(theirs) = python_datagrams() else {
        return;
    };
    let ours = ddlambda_datagrams();
    assert_eq!(theirs.len(), ours.len());
    for (((file, header), theirs), ours) in cases().iter().zip(&theirs).zip(&ours) {
        assert_eq!(
            theirs.len(),
            ours.len(),
            "{file} with {header}: {theirs:?} vs {ours:?}"
        );
        for (t, o) in theirs.iter().zip(ours) {
            assert_eq!(normalize(o), normalize(t), "{file} with {header}");
            let id = o.split("\"id\":\"").nth(1).expect("id");
            assert!(id[..16].bytes().all(|b| b.is_ascii_hexdigit()), "{o}");
        }
    }
    // The sampled cases did send (the comparison above is not vacuous).
    assert_eq!(
        ours.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 1, 1, 0, 0]
    );
}
