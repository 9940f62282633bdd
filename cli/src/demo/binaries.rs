//! The demo's executables: the extension and the three functions, found next to the running
//! `ddlambda` (the same cargo target directory and profile). When some are missing, or when run
//! by `cargo run`, and the workspace this binary was built from is still there, `cargo build`
//! makes them, so `cargo run -p ddlambda-cli -- demo` works from a fresh checkout and runs
//! functions built from the current sources. `--bin-dir` names the directory and builds nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::DemoError;

/// `(cargo package, binary)` of everything the demo runs.
const NEEDED: [(&str, &str); 4] = [
    ("ddlambda-extension", EXTENSION),
    ("ddlambda-examples", PRODUCER),
    ("ddlambda-examples", RELAY),
    ("ddlambda-examples", CONSUMER),
];
pub const EXTENSION: &str = "datadog-agent";
pub const PRODUCER: &str = "demo-producer";
pub const RELAY: &str = "demo-relay";
pub const CONSUMER: &str = "kinesis-consumer";

/// Where the executables live.
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// `dir` (`--bin-dir`), or the running executable's directory, building what is missing.
    pub fn locate(dir: Option<PathBuf>, note: &mut dyn FnMut(&str)) -> Result<Self, DemoError> {
        let explicit = dir.is_some();
        let dir = match dir {
            Some(d) => d,
            None => std::env::current_exe()
                .map_err(|e| DemoError::Binaries(format!("cannot find this executable: {e}")))?
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| DemoError::Binaries("this executable has no directory".into()))?,
        };
        let this = Self { dir };
        let missing = this.missing();
        // Under `cargo run` (which sets CARGO) rebuild even when nothing is missing: the
        // functions must match the sources the user just ran; a no-op build takes a second.
        let under_cargo = !explicit && std::env::var_os("CARGO").is_some();
        if missing.is_empty() && !under_cargo {
            return Ok(this);
        }
        if explicit {
            return Err(DemoError::Binaries(format!(
                "not in {}: {}",
                this.dir.display(),
                missing.join(", ")
            )));
        }
        this.build(under_cargo, note)?;
        match this.missing().as_slice() {
            [] => Ok(this),
            still => Err(DemoError::Binaries(format!(
                "still missing after cargo build in {}: {}",
                this.dir.display(),
                still.join(", ")
            ))),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn missing(&self) -> Vec<&'static str> {
        NEEDED
            .iter()
            .map(|(_, bin)| *bin)
            .filter(|bin| !self.path(bin).is_file())
            .collect()
    }

    /// `cargo build --bins` of the packages holding the executables (only those missing unless
    /// `all`), with the profile of this directory (`target/<profile>`), in the workspace this
    /// binary was built from.
    fn build(&self, all: bool, note: &mut dyn FnMut(&str)) -> Result<(), DemoError> {
        let missing = self.missing();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        if !workspace.join("Cargo.toml").is_file() {
            if missing.is_empty() {
                return Ok(());
            }
            return Err(DemoError::Binaries(format!(
                "{} are not in {} and the workspace to build them is gone; pass --bin-dir",
                missing.join(", "),
                self.dir.display()
            )));
        }
        let profile = self
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&workspace).arg("build").arg("--bins");
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let mut packages: Vec<&str> = NEEDED
            .iter()
            .filter(|(_, bin)| all || missing.contains(bin))
            .map(|(pkg, _)| *pkg)
            .collect();
        packages.dedup();
        for p in &packages {
            cmd.args(["-p", p]);
        }
        // `cargo run` gives this process its package's CARGO_PKG_* and friends; build scripts
        // that watch them (ring's) would see a change and rebuild on every run.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || matches!(
                    &*key,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_MANIFEST_LINKS"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                )
            {
                cmd.env_remove(&*key);
            }
        }
        // Build into the directory the binaries are expected in, whatever CARGO_TARGET_DIR says.
        if let Some(target) = self.dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let what = if missing.is_empty() {
            "the extension and the demo functions".to_owned()
        } else {
            missing.join(", ")
        };
        note(&format!(
            "building {what} (cargo build --bins -p {}, profile {profile})",
            packages.join(" -p ")
        ));
        let status = cmd
            .status()
            .map_err(|e| DemoError::Binaries(format!("cannot run cargo: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(DemoError::Binaries(format!(
                "cargo build failed ({status})"
            )))
        }
    }
}
