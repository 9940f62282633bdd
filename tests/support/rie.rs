//! A function (and its extensions) under the AWS Runtime Interface Emulator, without Docker.
//! With extensions, a private mount namespace (`unshare -m`) puts a temporary directory over
//! `/opt` holding `extensions/<name>`, where the RIE discovers them as Lambda would (and logs
//! at debug level). The output of the RIE and everything it runs goes to one log file, for
//! assertions and their messages.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::http::{Response, request};
use crate::{ChildGuard, free_port, wait_until};

const INVOCATIONS: &str = "/2015-03-31/functions/function/invocations";

/// A running RIE, killed (by PID) on drop.
pub struct Rie {
    guard: ChildGuard,
    addr: String,
    dir: tempfile::TempDir,
}

impl Rie {
    /// Starts `rie` running `function`, with each `(name, binary)` of `extensions` installed as
    /// `/opt/extensions/<name>`, and waits (bounded) until it listens.
    pub fn start(
        rie: &Path,
        function: &Path,
        extensions: &[(&str, &Path)],
        env: &[(&str, String)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = File::create(dir.path().join("rie.log")).expect("log file");
        let addr = format!("127.0.0.1:{}", free_port());
        let api = format!("127.0.0.1:{}", free_port());
        let mut cmd = if extensions.is_empty() {
            let mut cmd = Command::new(rie);
            cmd.args([
                "--log-level",
                "debug",
                "--runtime-interface-emulator-address",
            ])
            .arg(&addr)
            .arg("--runtime-api-address")
            .arg(&api)
            .arg(function);
            cmd
        } else {
            std::fs::create_dir_all(dir.path().join("extensions")).expect("mkdir");
            for (name, binary) in extensions {
                std::fs::copy(binary, dir.path().join("extensions").join(name))
                    .unwrap_or_else(|e| panic!("copy {}: {e}", binary.display()));
            }
            let script = format!(
                "mount --bind '{}' /opt && exec '{}' --log-level debug \
                 --runtime-interface-emulator-address {addr} --runtime-api-address {api} '{}'",
                dir.path().display(),
                rie.display(),
                function.display()
            );
            let mut cmd = Command::new("unshare");
            cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
            cmd
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .envs(env.iter().map(|(k, v)| (k, v)));
        let guard = ChildGuard::spawn(&mut cmd).expect("start the RIE");
        let rie = Self { guard, addr, dir };
        let up = wait_until(Duration::from_secs(60), || {
            std::net::TcpStream::connect(&rie.addr).ok()
        });
        assert!(up.is_some(), "the RIE never listened:\n{}", rie.log());
        rie
    }

    /// A scratch directory that lives as long as the RIE (it is also its `/opt`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the RIE (and the processes it ran) wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rie.log")).unwrap_or_default()
    }

    /// One invocation with a JSON `event`.
    pub fn invoke(&self, event: &[u8]) -> std::io::Result<Response> {
        request(
            &self.addr,
            "POST",
            INVOCATIONS,
            &[("Content-Type", "application/json")],
            event,
            Some(Duration::from_secs(60)),
        )
    }

    /// One invocation, retried (bounded) while the RIE cannot answer yet.
    pub fn invoke_when_ready(&self, event: &[u8]) -> Response {
        wait_until(Duration::from_secs(60), || self.invoke(event).ok())
            .unwrap_or_else(|| panic!("the RIE never answered the invocation:\n{}", self.log()))
    }

    /// SIGTERM, as Lambda ends a sandbox (SHUTDOWN to extensions, then SIGKILL after 2 s);
    /// whether the RIE exited within 20 s.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.guard.id().to_string()])
            .status();
        wait_until(Duration::from_secs(20), || {
            self.guard.0.try_wait().ok().flatten()
        })
        .is_some()
    }
}
