//! What a platform runs and under which limits: the builder's output, validated once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::PlatformError;

/// Why extensions receive SHUTDOWN (the Extensions API's `shutdownReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The sandbox is retired normally.
    Spindown,
    /// An invocation exceeded the function timeout.
    Timeout,
    /// The runtime or an extension crashed, ran out of memory or failed init.
    Failure,
}

impl ShutdownReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spindown => "spindown",
            Self::Timeout => "timeout",
            Self::Failure => "failure",
        }
    }
}

/// Where the platform's own log output (function and extension lines, START/END/REPORT) goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Write every line to this process's stderr, as CloudWatch would show it.
    Stderr,
    /// Keep quiet; lines still reach Telemetry API subscribers.
    Off,
}

/// A point at which [`Faults::shutdown_at`] sends SHUTDOWN (reason `spindown`) out of turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownPoint {
    /// Once every extension has registered, before the runtime starts.
    Init,
    /// Once the runtime and every INVOKE extension hold the event, before the runtime answers.
    Invoke,
    /// Right after `platform.runtimeDone`, before the extensions' `/next`.
    RuntimeDone,
}

/// Telemetry delivery faults, applied to every subscriber.
#[derive(Clone, Debug, Default)]
pub struct TelemetryFaults {
    /// Wait this long before each batch is sent.
    pub delay: Duration,
    /// Drop every n-th batch (1 drops them all); `None` drops nothing.
    pub drop_every: Option<u32>,
    /// Send every batch twice.
    pub duplicate: bool,
}

/// Fault injection. Crashes, hangs and memory hogs come from the function itself; these are the
/// platform's own misbehaviours.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Telemetry batches: slow, dropped, duplicated.
    pub telemetry: TelemetryFaults,
    /// SIGKILL the function process this long after an invocation was handed to it.
    pub kill_function_after: Option<Duration>,
    /// Send SHUTDOWN at this point of the first invocation (or of init).
    pub shutdown_at: Option<ShutdownPoint>,
}

/// The validated configuration of a platform.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) function: PathBuf,
    pub(crate) function_args: Vec<String>,
    pub(crate) extensions: Vec<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) inherit_env: bool,
    pub(crate) function_name: String,
    pub(crate) function_version: String,
    pub(crate) handler: String,
    pub(crate) region: String,
    pub(crate) account_id: String,
    pub(crate) memory_mb: u32,
    pub(crate) timeout: Duration,
    pub(crate) init_timeout: Duration,
    pub(crate) shutdown_budget: Duration,
    pub(crate) task_root: PathBuf,
    pub(crate) echo: Echo,
    pub(crate) faults: Faults,
}

impl Config {
    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.function_name
        )
    }

    /// The configured memory size in MB.
    pub fn memory_mb(&self) -> u32 {
        self.memory_mb
    }

    /// The function timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Builds a [`crate::Platform`]. Only the function is required.
#[derive(Debug, Default)]
pub struct PlatformBuilder {
    function: Option<PathBuf>,
    function_args: Vec<String>,
    extensions: Vec<PathBuf>,
    env: Vec<(String, String)>,
    inherit_env: bool,
    function_name: Option<String>,
    function_version: Option<String>,
    handler: Option<String>,
    region: Option<String>,
    account_id: Option<String>,
    memory_mb: Option<u32>,
    timeout: Option<Duration>,
    init_timeout: Option<Duration>,
    shutdown_budget: Option<Duration>,
    task_root: Option<PathBuf>,
    echo: Option<Echo>,
    faults: Faults,
}

impl PlatformBuilder {
    /// The function (runtime) executable, Lambda's `bootstrap`.
    pub fn function(mut self, path: impl AsRef<Path>) -> Self {
        self.function = Some(path.as_ref().to_path_buf());
        self
    }

    /// Arguments given to the function executable.
    pub fn function_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.function_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// An external extension executable; its file name is the name it must register with.
    pub fn extension(mut self, path: impl AsRef<Path>) -> Self {
        self.extensions.push(path.as_ref().to_path_buf());
        self
    }

    /// An environment variable for the function and the extensions (overrides the standard ones).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Pass this process's environment on to the children (Lambda starts from a clean one).
    pub fn inherit_env(mut self, inherit: bool) -> Self {
        self.inherit_env = inherit;
        self
    }

    /// `AWS_LAMBDA_FUNCTION_NAME` (default: the function file's name).
    pub fn function_name(mut self, name: impl Into<String>) -> Self {
        self.function_name = Some(name.into());
        self
    }

    /// `AWS_LAMBDA_FUNCTION_VERSION` (default `$LATEST`).
    pub fn function_version(mut self, version: impl Into<String>) -> Self {
        self.function_version = Some(version.into());
        self
    }

    /// `_HANDLER` (default `bootstrap`).
    pub fn handler(mut self, handler: impl Into<String>) -> Self {
        self.handler = Some(handler.into());
        self
    }

    /// `AWS_REGION` (default `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The account id in the function ARN and the register response (default `123456789012`).
    pub fn account_id(mut self, account: impl Into<String>) -> Self {
        self.account_id = Some(account.into());
        self
    }

    /// Memory size in MB (default 128, Lambda's range 128..=10240), enforced on the function.
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = Some(mb);
        self
    }

    /// The function timeout (default 3 s), covering the runtime and the extensions.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The init phase limit (default 10 s, as on Lambda).
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = Some(timeout);
        self
    }

    /// The SHUTDOWN budget for external extensions (default 2000 ms).
    pub fn shutdown_budget(mut self, budget: Duration) -> Self {
        self.shutdown_budget = Some(budget);
        self
    }

    /// `LAMBDA_TASK_ROOT` and the children's working directory (default: the function's directory).
    pub fn task_root(mut self, dir: impl AsRef<Path>) -> Self {
        self.task_root = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Where log lines are echoed (default stderr).
    pub fn echo(mut self, echo: Echo) -> Self {
        self.echo = Some(echo);
        self
    }

    /// Fault injection.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Validates the configuration and binds the API server (no process is started yet).
    pub async fn build(self) -> Result<crate::Platform, PlatformError> {
        crate::Platform::from_config(self.into_config()?).await
    }

    fn into_config(self) -> Result<Config, PlatformError> {
        let function = self
            .function
            .ok_or(PlatformError::Config("no function executable given".into()))?;
        // Absolute paths: children start in the task root, where relative ones would not resolve.
        let absolute = |exe: &PathBuf| {
            if !exe.is_file() {
                return Err(PlatformError::Config(format!(
                    "{} is not a file",
                    exe.display()
                )));
            }
            // Not canonicalized: a symlink's own name is the extension's name.
            std::path::absolute(exe)
                .map_err(|e| PlatformError::Config(format!("{}: {e}", exe.display())))
        };
        let function = absolute(&function)?;
        let extensions = self
            .extensions
            .iter()
            .map(absolute)
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = std::collections::HashSet::new();
        for ext in &extensions {
            if !names.insert(file_name(ext)) {
                return Err(PlatformError::Config(format!(
                    "two extensions named {}: names must be unique, as in /opt/extensions",
                    file_name(ext)
                )));
            }
        }
        let memory_mb = self.memory_mb.unwrap_or(128);
        if !(128..=10_240).contains(&memory_mb) {
            return Err(PlatformError::Config(format!(
                "memory size {memory_mb} MB is outside Lambda's 128..=10240"
            )));
        }
        let timeout = self.timeout.unwrap_or(Duration::from_secs(3));
        if timeout.is_zero() || timeout > Duration::from_secs(900) {
            return Err(PlatformError::Config(format!(
                "timeout {timeout:?} is outside Lambda's 1 ms..=900 s"
            )));
        }
        let task_root = match self.task_root {
            Some(dir) => dir,
            None => function
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        };
        Ok(Config {
            function_name: self.function_name.unwrap_or_else(|| file_name(&function)),
            function,
            function_args: self.function_args,
            extensions,
            env: self.env,
            inherit_env: self.inherit_env,
            function_version: self.function_version.unwrap_or_else(|| "$LATEST".into()),
            handler: self.handler.unwrap_or_else(|| "bootstrap".into()),
            region: self.region.unwrap_or_else(|| "us-east-1".into()),
            account_id: self.account_id.unwrap_or_else(|| "123456789012".into()),
            memory_mb,
            timeout,
            init_timeout: self.init_timeout.unwrap_or(Duration::from_secs(10)),
            shutdown_budget: self.shutdown_budget.unwrap_or(Duration::from_millis(2000)),
            task_root,
            echo: self.echo.unwrap_or(Echo::Stderr),
            faults: self.faults,
        })
    }
}

/// The file name of an executable: an extension's registered name.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
