//! Running the repository's tools and peers' command-line programs from tests: bounded in
//! time, output captured, and never left behind.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The repository root (the parent of the tests crate).
pub fn repo_root() -> PathBuf {
    crate::workspace_root()
}

/// A program from a peers venv (`<peers_dir>/<venv>/bin/<name>`), or `None` when it is absent,
/// after [`crate::missing_peer`] (which panics instead when the test command requires peers, so
/// a missing peer cannot pass as a skip).
pub fn peer_program(venv: &str, name: &str) -> Option<PathBuf> {
    let program = crate::peers_dir().join(venv).join("bin").join(name);
    crate::require_peer(name, program)
}

/// Kills the child's whole process group (it leads its own) unless it has already exited,
/// so a failing test leaves no build or server behind.
struct GroupGuard(Child);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `cmd` to completion in its own process group, stdin closed, output captured.
/// Panics if it cannot start or is still running after `limit` (then the group is killed).
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut guard = GroupGuard(child);
    // Read both pipes while waiting: a child blocked on a full pipe would never exit.
    let stdout = drain(guard.0.stdout.take());
    let stderr = drain(guard.0.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match guard.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => panic!("{cmd:?} still running after {limit:?}; killed"),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error ends the capture; the exit status still tells what happened.
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Stdout then stderr, as text, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
