//! What the benchmarks share: where the peers' Python is.

use std::path::PathBuf;

/// The `tracer` peer venv's python (ddtrace, datadog-lambda): `$DDLAMBDA_PEERS_DIR`, else the
/// default of `tests/peers/install`, `${XDG_CACHE_HOME:-~/.cache}/ddlambda/peers`.
pub fn tracer_python() -> PathBuf {
    std::env::var_os("DDLAMBDA_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_default()
                .join("ddlambda/peers")
        })
        .join("tracer/bin/python")
}
