//! Shared support for the end-to-end tests: locating workspace binaries, the real peers (with
//! the `DDLAMBDA_REQUIRE_PEERS` rule), killing children by PID, free loopback ports; and one
//! module per helper: a tiny blocking HTTP client, a fake Datadog intake, moto, the AWS RIE,
//! the local platform's fixtures, the tracer peers, the local sink's output.

pub mod command;
pub mod http;
pub mod intake;
pub mod local_output;
pub mod moto;
pub mod peers_tracer;
pub mod platform;
pub mod rie;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// An event fixture, `tests/fixtures/events/<name>`, parsed; panics naming the file otherwise.
pub fn event_fixture(name: &str) -> serde_json::Value {
    let path = workspace_root().join("tests/fixtures/events").join(name);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Path of a workspace binary in the debug profile, building it (`cargo build --bin`) when it
/// is missing. `tests/run` builds every binary first, so the build is only a fallback.
pub fn bin_path(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let path = target_dir().join("debug").join(name);
    if path.is_file() {
        return path;
    }
    let _one_at_a_time = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--bin", name])
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo build --bin {name}: {e}"));
        assert!(status.success(), "cargo build --bin {name} failed");
    }
    assert!(
        path.is_file(),
        "{} missing after building it",
        path.display()
    );
    path
}

/// Where `tests/peers/install` put the real peers: `DDLAMBDA_PEERS_DIR` (always set by
/// `tests/run`), else the installer's default `${XDG_CACHE_HOME:-$HOME/.cache}/ddlambda/peers`.
pub fn peers_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DDLAMBDA_PEERS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| workspace_root().join(".cache"));
    cache.join("ddlambda").join("peers")
}

/// `path` if it exists; otherwise reports `what` as a [`missing_peer`] (a panic under
/// `DDLAMBDA_REQUIRE_PEERS=1`) and returns `None` so the caller skips.
pub fn require_peer(what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    missing_peer(&format!("{what} at {}", path.display()));
    None
}

/// Whether missing peers must fail the test (`DDLAMBDA_REQUIRE_PEERS=1`, set by `tests/run`).
pub fn peers_required() -> bool {
    std::env::var("DDLAMBDA_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Reports a missing peer: panics when peers are required, else prints a loud notice; the
/// caller then skips its test.
pub fn missing_peer(what: &str) {
    let msg = format!("real peer missing: {what} (run `eval \"$(tests/peers/install)\"`)");
    assert!(
        !peers_required(),
        "{msg}; DDLAMBDA_REQUIRE_PEERS=1 forbids skipping"
    );
    eprintln!("\n!!!!!!!! SKIPPING: {msg} !!!!!!!!\n");
}

/// The AWS RIE binary, or `None` (after [`missing_peer`]).
pub fn rie() -> Option<PathBuf> {
    let rie = rie_path();
    if rie.is_none() {
        missing_peer("DDLAMBDA_RIE (the AWS Runtime Interface Emulator)");
    }
    rie
}

/// `DDLAMBDA_RIE`, when it names a file.
fn rie_path() -> Option<PathBuf> {
    std::env::var_os("DDLAMBDA_RIE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
}

/// A child process killed (SIGKILL, by PID) and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Spawns a command under the guard.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        cmd.spawn().map(Self)
    }

    /// The PID.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Tokio task (a server in the test's process) aborted when dropped.
#[derive(Debug)]
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A currently free port on 127.0.0.1 (bound then released: use it promptly).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"))
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub fn wait_until<T>(limit: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= end {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
