//! moto (`moto_server` from the peers' `aws` venv) on a free loopback port, killed on drop, with
//! the venv's Python (boto3) for setting up resources.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::command::{output_text, run};
use crate::{ChildGuard, free_port, peers_dir, require_peer, wait_until};

/// A running moto server.
pub struct Moto {
    _child: ChildGuard,
    /// `http://127.0.0.1:<port>`, for SDK endpoint overrides.
    pub url: String,
    python: PathBuf,
}

impl Moto {
    /// Starts moto and waits (bounded) until it listens; `None` when the peer is absent and
    /// peers are optional.
    pub fn start() -> Option<Self> {
        let venv = peers_dir().join("aws").join("bin");
        let moto = require_peer("moto_server (venv aws)", venv.join("moto_server"))?;
        let port = free_port();
        let child = ChildGuard::spawn(
            Command::new(moto)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("start moto_server");
        let addr = format!("127.0.0.1:{port}");
        let up = wait_until(Duration::from_secs(60), || {
            std::net::TcpStream::connect(&addr).ok()
        });
        assert!(up.is_some(), "moto did not listen on {addr} within 60 s");
        Some(Self {
            _child: child,
            url: format!("http://{addr}"),
            python: venv.join("python"),
        })
    }

    /// Runs a boto3 `script` with the venv's Python as `python -c script <url> args…`, and
    /// returns its stdout; panics (with its output) when it fails.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        assert!(
            self.python.is_file(),
            "python missing from venv aws: {}",
            self.python.display()
        );
        let out = run(
            Command::new(&self.python)
                .arg("-c")
                .arg(script)
                .arg(&self.url)
                .args(args),
            Duration::from_secs(120),
        );
        assert!(out.status.success(), "boto3 script: {}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
