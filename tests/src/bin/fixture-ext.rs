//! An external extension that records what it sees, one JSON line per fact, to
//! `$FIXTURE_EXT_DIR/<name>.jsonl` (its name is its file name, as Lambda requires).
//!
//! Knobs (each read as `<KNOB>_<NAME>` first, name upper-cased with `-` → `_`, then `<KNOB>`):
//! - `FIXTURE_EXT_EVENTS`: events to register for (default `INVOKE,SHUTDOWN`).
//! - `FIXTURE_EXT_TELEMETRY=1`: subscribe to the Telemetry API and record every batch.
//! - `FIXTURE_EXT_INIT`: `crash` (exit before registering), `init_error`, `never_next`.
//! - `FIXTURE_EXT_INVOKE_WORK_MS`: work this long after INVOKE before calling `/next`.
//! - `FIXTURE_EXT_HOLD_INVOKE=1`: never call `/next` after an INVOKE.
//! - `FIXTURE_EXT_ON_SHUTDOWN`: `exit` (default), `linger` (never exit), `work:<ms>`,
//!   `exit_error` (report `/exit/error`, then exit 1).

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ddlambda_tests::http::{read_request, request, respond};
use serde_json::{Value, json};

struct Recorder {
    name: String,
    file: Option<Mutex<std::fs::File>>,
    /// When the last telemetry batch arrived, ms since the epoch.
    last_batch_ms: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Recorder {
    fn record(&self, kind: &str, data: Value) {
        let t_ms = now_ms();
        let line = json!({ "t_ms": t_ms, "name": self.name, "kind": kind, "data": data })
            .to_string()
            + "\n";
        match &self.file {
            Some(f) => {
                let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = f.write_all(line.as_bytes());
            }
            None => print!("{line}"),
        }
    }
}

fn main() {
    let name = std::env::args()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "fixture-ext".into());
    let knob = |key: &str| {
        let own = format!("{key}_{}", name.to_ascii_uppercase().replace('-', "_"));
        std::env::var(own)
            .or_else(|_| std::env::var(key))
            .unwrap_or_default()
    };
    let file = std::env::var_os("FIXTURE_EXT_DIR").map(|dir| {
        let path = PathBuf::from(dir).join(format!("{name}.jsonl"));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        Mutex::new(f.unwrap_or_else(|e| fail(&format!("cannot open {}: {e}", path.display()))))
    });
    let rec = Arc::new(Recorder {
        name: name.clone(),
        file,
        last_batch_ms: AtomicU64::new(0),
    });
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        fail("AWS_LAMBDA_RUNTIME_API unset")
    };
    let api = api.trim_start_matches("http://").to_string();
    let init = knob("FIXTURE_EXT_INIT");
    if init == "crash" {
        std::process::exit(2);
    }
    let events = knob("FIXTURE_EXT_EVENTS");
    let events: Vec<&str> = if events.is_empty() {
        vec!["INVOKE", "SHUTDOWN"]
    } else {
        events.split(',').collect()
    };
    let body = json!({ "events": events }).to_string();
    let headers = [
        ("Lambda-Extension-Name", name.as_str()),
        ("Lambda-Extension-Accept-Feature", "accountId"),
    ];
    let reg = request(
        &api,
        "POST",
        "/2020-01-01/extension/register",
        &headers,
        body.as_bytes(),
        Some(Duration::from_secs(30)),
    )
    .unwrap_or_else(|e| fail(&format!("register: {e}")));
    let id = reg
        .header("lambda-extension-identifier")
        .unwrap_or_default()
        .to_string();
    rec.record(
        "registered",
        json!({ "status": reg.status, "id": id, "body": reg.json() }),
    );
    println!("fixture-ext {name} registered ({})", reg.status);
    if reg.status != 200 {
        fail(&format!("register answered {}", reg.status));
    }
    let id_header = [("Lambda-Extension-Identifier", id.as_str())];

    if init == "init_error" {
        let h = [
            ("Lambda-Extension-Identifier", id.as_str()),
            ("Lambda-Extension-Function-Error-Type", "Fixture.ExtInit"),
        ];
        let _ = request(
            &api,
            "POST",
            "/2020-01-01/extension/init/error",
            &h,
            b"{}",
            Some(Duration::from_secs(30)),
        );
        std::process::exit(1);
    }
    let telemetry = knob("FIXTURE_EXT_TELEMETRY") == "1";
    if telemetry {
        subscribe(&api, &id, &rec);
    }
    if init == "never_next" {
        hang();
    }
    let work_ms: u64 = knob("FIXTURE_EXT_INVOKE_WORK_MS").parse().unwrap_or(0);
    let hold = knob("FIXTURE_EXT_HOLD_INVOKE") == "1";
    let on_shutdown = knob("FIXTURE_EXT_ON_SHUTDOWN");
    loop {
        let next = request(
            &api,
            "GET",
            "/2020-01-01/extension/event/next",
            &id_header,
            b"",
            None,
        )
        .unwrap_or_else(|e| fail(&format!("next: {e}")));
        let event = next.json();
        rec.record("event", event.clone());
        if next.status != 200 {
            fail(&format!("next answered {}: {event}", next.status));
        }
        match event["eventType"].as_str() {
            Some("INVOKE") => {
                if hold {
                    hang();
                }
                std::thread::sleep(Duration::from_millis(work_ms));
            }
            Some("SHUTDOWN") => {
                if on_shutdown == "linger" {
                    hang();
                }
                if telemetry {
                    // Like a real subscriber: take the batches still on their way (until
                    // 150 ms pass without one), staying well inside the deadline.
                    let deadline = event["deadlineMs"]
                        .as_u64()
                        .unwrap_or(0)
                        .saturating_sub(500);
                    while now_ms() < deadline
                        // Saturating: a batch may land between the two reads.
                        && now_ms().saturating_sub(rec.last_batch_ms.load(Ordering::SeqCst)) < 150
                    {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                if on_shutdown == "exit_error" {
                    let h = [
                        ("Lambda-Extension-Identifier", id.as_str()),
                        ("Lambda-Extension-Function-Error-Type", "Fixture.ExitError"),
                    ];
                    let _ = request(
                        &api,
                        "POST",
                        "/2020-01-01/extension/exit/error",
                        &h,
                        b"{}",
                        Some(Duration::from_secs(30)),
                    );
                    rec.record("exit", json!({ "error": true }));
                    std::process::exit(1);
                }
                if let Some(ms) = on_shutdown.strip_prefix("work:") {
                    std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
                }
                rec.record("exit", json!({}));
                std::process::exit(0);
            }
            _ => fail(&format!("unexpected event {event}")),
        }
    }
}

/// Listens on a free loopback port and subscribes, as a Telemetry API extension does.
fn subscribe(api: &str, id: &str, rec: &Arc<Recorder>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(&format!("addr: {e}")));
    let rec2 = rec.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            match read_request(&mut stream) {
                Ok(req) => {
                    let batch: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                    rec2.record("telemetry", json!({ "path": req.path, "batch": batch }));
                    rec2.last_batch_ms.store(now_ms(), Ordering::SeqCst);
                    let _ = respond(&mut stream, 200);
                }
                Err(e) => rec2.record("telemetry_error", json!(e.to_string())),
            }
        }
    });
    let body = json!({
        "schemaVersion": "2022-12-13",
        "destination": { "protocol": "HTTP", "URI": format!("http://sandbox.localdomain:{port}/telemetry") },
        "types": ["platform", "function", "extension"],
        "buffering": { "maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25 },
    });
    let headers = [("Lambda-Extension-Identifier", id)];
    let resp = request(
        api,
        "PUT",
        "/2022-07-01/telemetry",
        &headers,
        body.to_string().as_bytes(),
        Some(Duration::from_secs(30)),
    );
    let status = resp.as_ref().map_or(0, |r| r.status);
    rec.record("subscribed", json!({ "status": status, "port": port }));
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("fixture-ext: {msg}");
    std::process::exit(70)
}
