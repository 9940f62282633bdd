//! A function speaking the raw Runtime API, whose behaviour each event chooses:
//! `{"mode": "echo" | "error" | "crash" | "hang" | "alloc" | "big", "mb": N, "bytes": N,
//! "sleep_ms": N, "exit_code": N, "log": ["line", …]}`. `FIXTURE_INIT` picks an init
//! behaviour: `init_error`, `crash`, `sleep:<ms>`, `hang`. `FIXTURE_INTERNAL_EXT=1` registers
//! an internal extension (`fixture-internal`, INVOKE only) from this process first, as
//! lambda_runtime's graceful-shutdown helper does.

use std::time::Duration;

use ddlambda_tests::http::{Response, request};
use serde_json::{Value, json};

/// Variables echoed back so tests can check the standard environment.
const ECHOED_ENV: &[&str] = &[
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LAMBDA_TASK_ROOT",
    "_HANDLER",
    "AWS_XRAY_DAEMON_ADDRESS",
    "TZ",
    "FIXTURE_CUSTOM",
    "HOME",
];

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .unwrap_or_else(|_| fail("AWS_LAMBDA_RUNTIME_API unset"));
    let api = api.trim_start_matches("http://").to_string();
    match std::env::var("FIXTURE_INIT").unwrap_or_default().as_str() {
        "init_error" => {
            let body =
                json!({"errorMessage": "fixture init failed", "errorType": "Fixture.InitError"});
            let _ = post(
                &api,
                "/2018-06-01/runtime/init/error",
                "Fixture.InitError",
                &body.to_string().into_bytes(),
            );
            std::process::exit(1);
        }
        "crash" => std::process::exit(3),
        "hang" => hang(),
        s if s.starts_with("sleep:") => {
            std::thread::sleep(Duration::from_millis(s[6..].parse().unwrap_or(0)));
        }
        _ => {}
    }
    if std::env::var("FIXTURE_INTERNAL_EXT").is_ok_and(|v| v == "1") {
        internal_extension(&api);
    }
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let next = request(
            &api,
            "GET",
            "/2018-06-01/runtime/invocation/next",
            &[],
            b"",
            None,
        )
        .unwrap_or_else(|e| fail(&format!("next: {e}")));
        if next.status != 200 {
            fail(&format!("next answered {}", next.status));
        }
        let id = next
            .header("lambda-runtime-aws-request-id")
            .unwrap_or_default()
            .to_string();
        let event: Value = serde_json::from_slice(&next.body).unwrap_or(Value::Null);
        for line in event["log"].as_array().into_iter().flatten() {
            println!("{}", line.as_str().unwrap_or_default());
        }
        if let Some(ms) = event["sleep_ms"].as_u64() {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let response_path = format!("/2018-06-01/runtime/invocation/{id}/response");
        match event["mode"].as_str().unwrap_or("echo") {
            "error" => {
                let body = json!({"errorMessage": "asked to fail", "errorType": "Fixture.Error", "stackTrace": []});
                let path = format!("/2018-06-01/runtime/invocation/{id}/error");
                let _ = post(&api, &path, "Fixture.Error", &body.to_string().into_bytes());
            }
            "crash" => std::process::exit(event["exit_code"].as_i64().unwrap_or(1) as i32),
            "hang" => hang(),
            "big" => {
                let n = event["bytes"].as_u64().unwrap_or(0) as usize;
                let body = format!("\"{}\"", "x".repeat(n.saturating_sub(2)));
                let resp = post(&api, &response_path, "", body.as_bytes());
                eprintln!("big response answered {}", resp.map_or(0, |r| r.status));
            }
            mode => {
                if mode == "alloc" {
                    let mb = event["mb"].as_u64().unwrap_or(0) as usize;
                    // Touch every page so the memory is resident, in 1 MiB steps.
                    for _ in 0..mb {
                        hoard.push(vec![1u8; 1 << 20]);
                    }
                }
                let env: serde_json::Map<String, Value> = ECHOED_ENV
                    .iter()
                    .filter_map(|k| {
                        std::env::var(k)
                            .ok()
                            .map(|v| ((*k).to_string(), Value::String(v)))
                    })
                    .collect();
                let h = |name: &str| next.header(name).map(String::from);
                let body = json!({
                    "event": event,
                    "request_id": id,
                    "deadline_ms": h("lambda-runtime-deadline-ms"),
                    "function_arn": h("lambda-runtime-invoked-function-arn"),
                    "trace_id": h("lambda-runtime-trace-id"),
                    "client_context": h("lambda-runtime-client-context"),
                    "env": env,
                    "pid": std::process::id(),
                    "hoard_mb": hoard.len(),
                });
                let _ = post(&api, &response_path, "", body.to_string().as_bytes());
            }
        }
    }
}

fn post(api: &str, path: &str, error_type: &str, body: &[u8]) -> std::io::Result<Response> {
    let headers: &[(&str, &str)] = if error_type.is_empty() {
        &[]
    } else {
        &[("Lambda-Runtime-Function-Error-Type", error_type)]
    };
    request(
        api,
        "POST",
        path,
        headers,
        body,
        Some(Duration::from_secs(30)),
    )
}

/// Registers before the runtime's first `/next`, then answers every event from a thread.
fn internal_extension(api: &str) {
    let headers = [("Lambda-Extension-Name", "fixture-internal")];
    let body = br#"{"events":["INVOKE"]}"#;
    let reg = request(
        api,
        "POST",
        "/2020-01-01/extension/register",
        &headers,
        body,
        Some(Duration::from_secs(30)),
    )
    .unwrap_or_else(|e| fail(&format!("internal register: {e}")));
    let id = reg
        .header("lambda-extension-identifier")
        .unwrap_or_default()
        .to_string();
    let api = api.to_string();
    std::thread::spawn(move || {
        loop {
            let h = [("Lambda-Extension-Identifier", id.as_str())];
            match request(
                &api,
                "GET",
                "/2020-01-01/extension/event/next",
                &h,
                b"",
                None,
            ) {
                Ok(r) if r.status == 200 => {}
                _ => return,
            }
        }
    });
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("fixture-fn: {msg}");
    std::process::exit(70)
}
