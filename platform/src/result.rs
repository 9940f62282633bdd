//! What an invocation returns: the outcome, the status Lambda reports and the REPORT figures.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

/// `platform.runtimeDone` / `platform.report` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The runtime answered and every extension finished in time.
    Success,
    /// The function answered with an error.
    Error,
    /// The function timeout passed (runtime or extensions).
    Timeout,
    /// The runtime or an extension crashed, ran out of memory, failed init, or the sandbox was
    /// shut down under it.
    Failure,
}

impl Status {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Failure => "failure",
        }
    }
}

/// An error the caller of the function receives.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionError {
    /// `Unhandled`, `Runtime.ExitError`, `Runtime.OutOfMemory`, `Sandbox.Timedout`, …
    pub error_type: String,
    /// The JSON body (`{"errorMessage", "errorType", …}`).
    pub body: Bytes,
}

impl FunctionError {
    pub(crate) fn new(error_type: &str, message: &str) -> Self {
        let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
        Self {
            error_type: error_type.into(),
            body: body.to_string().into(),
        }
    }

    /// The `errorMessage`, if the body has one.
    pub fn message(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("errorMessage")?.as_str().map(String::from)
    }
}

/// What the caller receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The response payload.
    Response(Bytes),
    /// A function or platform error.
    Error(FunctionError),
}

/// The figures of a `platform.report` / REPORT line.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The request id.
    pub request_id: String,
    /// The report status.
    pub status: Status,
    /// The error type, if not a success.
    pub error_type: Option<String>,
    /// `platform.start` → end of the invocation (runtime and extensions), ms.
    pub duration_ms: f64,
    /// Billed: duration plus init on a cold start (as for `provided` runtimes), rounded up to 1 ms.
    pub billed_duration_ms: u64,
    /// Configured memory, MB.
    pub memory_size_mb: u32,
    /// Peak resident memory of the function process, MB (rounded up).
    pub max_memory_used_mb: u32,
    /// Init duration on a cold start, ms.
    pub init_duration_ms: Option<f64>,
}

impl fmt::Display for Report {
    /// Lambda's REPORT line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            self.duration_ms,
            self.billed_duration_ms,
            self.memory_size_mb,
            self.max_memory_used_mb
        )?;
        if let Some(init) = self.init_duration_ms {
            write!(f, "\tInit Duration: {init:.2} ms")?;
        }
        if self.status != Status::Success {
            write!(f, "\tStatus: {}", self.status.as_str())?;
            if let Some(t) = &self.error_type {
                write!(f, "\tError Type: {t}")?;
            }
        }
        Ok(())
    }
}

/// Options of one invocation.
#[derive(Clone, Debug, Default)]
pub struct InvokeOptions {
    /// The X-Ray header (`Root=…;Parent=…;Sampled=…`); a fresh unsampled one when `None`.
    pub xray_header: Option<String>,
    /// The base64 client context, passed as `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// The Cognito identity JSON, passed as `Lambda-Runtime-Cognito-Identity`.
    pub cognito_identity: Option<String>,
}

/// The result of one invocation.
#[derive(Clone, Debug)]
pub struct InvokeResult {
    /// The request id.
    pub request_id: String,
    /// What the caller receives.
    pub outcome: Outcome,
    /// The report figures and status.
    pub report: Report,
    /// This invocation ran init first.
    pub cold_start: bool,
    /// Runtime part: `platform.start` → the runtime's answer (`platform.runtimeDone`).
    pub runtime_duration: Duration,
}

impl InvokeResult {
    /// The function errored, timed out or failed.
    pub fn is_error(&self) -> bool {
        self.report.status != Status::Success || matches!(self.outcome, Outcome::Error(_))
    }

    /// The response payload, if there is one.
    pub fn response(&self) -> Option<&Bytes> {
        match &self.outcome {
            Outcome::Response(b) => Some(b),
            Outcome::Error(_) => None,
        }
    }

    /// The error, if there is one.
    pub fn error(&self) -> Option<&FunctionError> {
        match &self.outcome {
            Outcome::Error(e) => Some(e),
            Outcome::Response(_) => None,
        }
    }
}

/// The result of init.
#[derive(Clone, Debug)]
pub struct InitReport {
    /// `platform.initStart` → the runtime and every extension called `/next` (or init failed).
    pub duration: Duration,
    /// Why init failed.
    pub error: Option<FunctionError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_line_matches_lambda() {
        let mut r = Report {
            request_id: "r".into(),
            status: Status::Success,
            error_type: None,
            duration_ms: 1.234,
            billed_duration_ms: 48,
            memory_size_mb: 128,
            max_memory_used_mb: 20,
            init_duration_ms: Some(45.871),
        };
        assert_eq!(
            r.to_string(),
            "REPORT RequestId: r\tDuration: 1.23 ms\tBilled Duration: 48 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 45.87 ms"
        );
        r.status = Status::Timeout;
        r.error_type = Some("Sandbox.Timedout".into());
        r.init_duration_ms = None;
        assert!(
            r.to_string()
                .ends_with("Max Memory Used: 20 MB\tStatus: timeout\tError Type: Sandbox.Timedout")
        );
    }
}
