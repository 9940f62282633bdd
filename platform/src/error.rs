//! Errors of the platform itself. A function's own failure is not one: it is an
//! [`crate::InvokeResult`] with an error outcome.

/// Why the platform could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The builder was given something Lambda would not accept.
    #[error("invalid platform configuration: {0}")]
    Config(String),
    /// The API server could not bind its loopback port.
    #[error("cannot bind the Lambda APIs on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// A function or extension executable could not be started.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The executable.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}
