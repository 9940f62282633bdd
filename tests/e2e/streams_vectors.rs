//! Data-streams vectors computed live by ddtrace 4.16.0 (`tests/peers/dsm_oracle.py`, process
//! tags off): random services, envs, tags and times, root and chained checkpoints. Our hash,
//! encoding and latencies (the `ddlambda_wire::pathway` library and the `ddlambda pathway` CLI)
//! must equal ddtrace's, and we must decode every context ddtrace makes.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use ddlambda_wire::pathway::{Pathway, node_hash};
use serde_json::{Value, json};

const NS_PER_MS: i64 = 1_000_000;

/// The ddtrace oracle process, killed on drop.
struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    /// `None` (with a loud message) when the tracer venv is absent and peers are optional.
    fn start() -> Option<Self> {
        let python = ddlambda_tests::peers_tracer::python()?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/dsm_oracle.py");
        let mut child = Command::new(python)
            .arg(script)
            .env("DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED", "false")
            .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
            .env("DD_TRACE_ENABLED", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the ddtrace oracle");
        let stdin = child.stdin.take().expect("oracle stdin");
        let stdout = BufReader::new(child.stdout.take().expect("oracle stdout"));
        Some(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn ask(&mut self, req: &Value) -> Value {
        writeln!(self.stdin, "{req}").expect("write to the oracle");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the oracle");
        assert!(!line.is_empty(), "the oracle exited on {req}");
        serde_json::from_str(&line).expect("oracle JSON")
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.:/ABCXYZ";
        let len = 1 + self.below(24) as usize;
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
    /// One `direction:` tag, as every real checkpoint has (ddtrace's loop detection treats a
    /// checkpoint without one as a repeat of its parent's direction and restarts the pathway),
    /// plus random others.
    fn tags(&mut self) -> Vec<String> {
        let keys = [
            "topic",
            "type",
            "group",
            "exchange",
            "partition",
            "event_type",
            "x",
        ];
        let n = self.below(5) as usize;
        let direction = if self.below(2) == 0 { "in" } else { "out" };
        let mut tags = vec![format!("direction:{direction}")];
        tags.extend((0..n).map(|_| {
            format!(
                "{}:{}",
                keys[self.below(keys.len() as u64) as usize],
                self.word()
            )
        }));
        // Unsorted input: both sides sort.
        if tags.len() > 1 {
            let i = self.below(tags.len() as u64) as usize;
            tags.swap(0, i);
        }
        tags
    }
}

fn ours(service: &str, env: &str, tags: &[String], now_ms: i64, parent: Option<&str>) -> Value {
    let parent = parent.map(|p| Pathway::from_base64(p).expect("our parent decodes"));
    let c = Pathway::checkpoint(
        parent.as_ref(),
        node_hash(service, env, tags),
        now_ms * NS_PER_MS,
    );
    json!({
        "hash": c.pathway.hash.to_string(),
        "parent_hash": c.parent_hash.to_string(),
        "encoded": c.pathway.to_base64(),
        "pathway_latency_ms": c.pathway_latency_ns / NS_PER_MS,
        "edge_latency_ms": c.edge_latency_ns / NS_PER_MS,
    })
}

fn seed() -> u64 {
    std::env::var("DDLAMBDA_DSM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

#[test]
fn checkpoints_match_ddtrace_root_and_chained() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let seed = seed();
    eprintln!("data-streams vectors: DDLAMBDA_DSM_SEED={seed}");
    let mut rng = Rng(seed);
    let mut compared = 0;
    for chain in 0..40 {
        let service = rng.word();
        let env = if chain % 5 == 0 {
            "none".to_owned()
        } else {
            rng.word()
        };
        let mut now_ms = 1_600_000_000_000 + rng.below(200_000_000_000) as i64;
        let mut parent: Option<String> = None;
        for hop in 0..1 + rng.below(5) {
            // Services and tags change along the chain, as a pathway crosses services.
            let service = if hop % 2 == 0 {
                service.clone()
            } else {
                rng.word()
            };
            let tags = rng.tags();
            let req = json!({
                "op": "checkpoint", "service": service, "env": env, "tags": tags,
                "now_ms": now_ms, "parent": parent,
            });
            let theirs = oracle.ask(&req);
            let mine = ours(&service, &env, &tags, now_ms, parent.as_deref());
            assert_eq!(mine, theirs, "seed {seed}, request {req}");
            // And we decode what ddtrace encoded, as ddtrace does.
            let encoded = theirs["encoded"].as_str().expect("encoded");
            let decoded = oracle.ask(&json!({"op": "decode", "b64": encoded}));
            let p = Pathway::from_base64(encoded).expect("we decode ddtrace's context");
            assert_eq!(decoded["hash"], p.hash.to_string(), "seed {seed}");
            assert_eq!(
                decoded["pathway_start_ms"],
                p.pathway_start_ms(),
                "seed {seed}"
            );
            assert_eq!(decoded["edge_start_ms"], p.edge_start_ms(), "seed {seed}");
            parent = Some(encoded.to_owned());
            now_ms += rng.below(30_000) as i64;
            compared += 1;
        }
    }
    assert!(compared >= 40);
}

#[test]
fn cli_matches_ddtrace() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    // Built on demand when missing, so the CLI vectors never skip.
    let bin = ddlambda_tests::bin_path("ddlambda");
    let seed = seed();
    eprintln!("ddlambda pathway CLI vectors: DDLAMBDA_DSM_SEED={seed}");
    let mut rng = Rng(seed);
    let mut parent: Option<String> = None;
    let mut now_ms = 1_700_000_000_000 + rng.below(1_000_000_000) as i64;
    for _ in 0..6 {
        let (service, env) = (rng.word(), rng.word());
        let tags = rng.tags();
        let mut cmd = Command::new(&bin);
        cmd.args([
            "pathway",
            "checkpoint",
            "--service",
            &service,
            "--env",
            &env,
        ])
        .args(["--now-ms", &now_ms.to_string()]);
        if let Some(p) = &parent {
            cmd.args(["--parent", p]);
        }
        for t in &tags {
            cmd.args(["--tag", t]);
        }
        let out = cmd.output().expect("run ddlambda pathway checkpoint");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mine: Value = serde_json::from_slice(&out.stdout).expect("CLI JSON");
        let theirs = oracle.ask(&json!({
            "op": "checkpoint", "service": service, "env": env, "tags": tags,
            "now_ms": now_ms, "parent": parent,
        }));
        assert_eq!(mine, theirs, "seed {seed}");
        let encoded = theirs["encoded"].as_str().expect("encoded").to_owned();
        let out = Command::new(&bin)
            .args(["pathway", "decode", &encoded])
            .output()
            .expect("run ddlambda pathway decode");
        let decoded: Value = serde_json::from_slice(&out.stdout).expect("CLI JSON");
        assert_eq!(
            decoded,
            oracle.ask(&json!({"op": "decode", "b64": encoded}))
        );
        parent = Some(encoded);
        now_ms += rng.below(5_000) as i64;
    }
    // Invalid input: a non-zero exit and a message on stderr.
    for bad in ["", "AAAA", "not base64!", "AQIDBAUGBwg="] {
        let out = Command::new(&bin)
            .args(["pathway", "decode", bad])
            .output()
            .expect("run ddlambda pathway decode");
        assert!(!out.status.success(), "{bad:?} decoded");
        assert!(!out.stderr.is_empty(), "{bad:?}: no message");
    }
}
