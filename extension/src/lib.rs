//! The ddlambda Lambda extension as a library: the `datadog-agent` binary wires these parts,
//! and benches and tests drive them directly.
//!
//! Data flows one way: listeners (`intake`) → [`buffer`] / `aggregate` → [`flush`] → [`sinks`],
//! driven by the [`lifecycle`].

pub mod aggregate;
pub mod buffer;
pub mod config;
pub mod enhanced;
pub mod event;
pub mod flush;
pub mod intake;
pub mod lifecycle;
pub mod secrets;
pub mod sinks;

/// An error and its sources on one line: reqwest's own text ("error sending request") says
/// little without the cause beneath it.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The extension's HTTP client (for `user_agent`): ring is the rustls crypto provider (reqwest
/// is built without a bundled one; a second install is harmless), and no idle socket is pooled
/// (Lambda freezes the sandbox between invocations: a pooled socket is stale after a thaw).
/// Its TLS set-up loads root certificates, so it is built off the init path.
pub(crate) fn http_client(user_agent: &str) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .user_agent(user_agent)
        .build()
        .map_err(|e| error_chain(&e))
}

/// The `User-Agent` of the extension's own requests.
pub(crate) const USER_AGENT: &str = concat!("ddlambda-extension/", env!("CARGO_PKG_VERSION"));
