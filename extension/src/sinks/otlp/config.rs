//! The OTLP exporter's configuration, from the standard OpenTelemetry variables
//! (`OTEL_EXPORTER_OTLP_*`, the "OTLP Exporter" section of the OpenTelemetry specification).
//!
//! OTLP is used only when an endpoint is set: the general `OTEL_EXPORTER_OTLP_ENDPOINT` (a base
//! URL, `/v1/traces` and `/v1/metrics` appended) or a per-signal one (`…_TRACES_ENDPOINT`,
//! `…_METRICS_ENDPOINT`, used as-is). A signal with no endpoint of its own and no general one
//! is not exported over OTLP (it goes where it would without OTLP): unlike an SDK, the
//! extension never defaults to `localhost:4318`, which in Lambda is nothing. Every other option
//! has a general and a per-signal variable; the per-signal one wins.

use std::time::Duration;

/// The OTLP transport the extension speaks.
pub const HTTP_PROTOBUF: &str = "http/protobuf";
/// The specification's default export timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The configuration cannot be used: OTLP is not exported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpConfigError {
    #[error(
        "{var}={value:?}: only {HTTP_PROTOBUF} is supported (not grpc or http/json); OTLP export is off"
    )]
    UnsupportedProtocol { var: String, value: String },
    #[error("{var}={value:?} is not an http(s) URL; OTLP export is off")]
    BadEndpoint { var: String, value: String },
}

/// Where and how one signal is exported. `Debug` shows header names, never values: they
/// usually carry credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SignalConfig {
    /// The full URL requests are POSTed to.
    pub url: String,
    /// Extra request headers (`OTEL_EXPORTER_OTLP[_<SIGNAL>]_HEADERS`), decoded.
    pub headers: Vec<(String, String)>,
    pub gzip: bool,
    /// Cap on one request; the flush budget may cut it shorter.
    pub timeout: Duration,
}

impl std::fmt::Debug for SignalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("SignalConfig")
            .field("url", &self.url)
            .field("headers", &names)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The OTLP exporter: at least one signal is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    pub traces: Option<SignalConfig>,
    pub metrics: Option<SignalConfig>,
}

/// The two signals the extension exports, as the variables and URL paths name them.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    fn var(self, option: &str) -> String {
        let signal = match self {
            Self::Traces => "TRACES",
            Self::Metrics => "METRICS",
        };
        format!("OTEL_EXPORTER_OTLP_{signal}_{option}")
    }

    fn path(self) -> &'static str {
        match self {
            Self::Traces => "v1/traces",
            Self::Metrics => "v1/metrics",
        }
    }
}

impl OtlpConfig {
    /// Reads the variables through `get` (empty values already count as unset). `Ok(None)`:
    /// no endpoint is set, OTLP is not wanted. Values that are wrong but not fatal (a header
    /// entry without `=`, an unknown compression) become `warnings`.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<OtlpConfig>, OtlpConfigError> {
        let before = warnings.len();
        let traces = signal(&get, Signal::Traces, warnings)?;
        let metrics = signal(&get, Signal::Metrics, warnings)?;
        // A bad general variable is read for both signals: say it once.
        let mut seen = std::collections::HashSet::new();
        let mine = warnings.split_off(before);
        warnings.extend(mine.into_iter().filter(|w| seen.insert(w.clone())));
        if traces.is_none() && metrics.is_none() {
            return Ok(None);
        }
        Ok(Some(OtlpConfig { traces, metrics }))
    }
}

fn signal(
    get: &impl Fn(&str) -> Option<String>,
    signal: Signal,
    warnings: &mut Vec<String>,
) -> Result<Option<SignalConfig>, OtlpConfigError> {
    // The signal's own variable, else the general one, with the name that was used.
    let option = |name: &str| -> Option<(String, String)> {
        let own = signal.var(name);
        if let Some(v) = get(&own) {
            return Some((own, v));
        }
        let general = format!("OTEL_EXPORTER_OTLP_{name}");
        get(&general).map(|v| (general, v))
    };

    let url = if let Some(v) = get(&signal.var("ENDPOINT")) {
        checked_url(&signal.var("ENDPOINT"), v)?
    } else if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        let base = checked_url("OTEL_EXPORTER_OTLP_ENDPOINT", v)?;
        // The specification's rule: the signal path is appended relative to the base path.
        let sep = if base.ends_with('/') { "" } else { "/" };
        format!("{base}{sep}{}", signal.path())
    } else {
        return Ok(None);
    };

    if let Some((var, value)) = option("PROTOCOL")
        && value != HTTP_PROTOBUF
    {
        return Err(OtlpConfigError::UnsupportedProtocol { var, value });
    }
    let headers = option("HEADERS")
        .map(|(var, v)| parse_headers(&var, &v, warnings))
        .unwrap_or_default();
    let gzip = match option("COMPRESSION") {
        None => false,
        Some((var, v)) => match v.to_ascii_lowercase().as_str() {
            "gzip" => true,
            "none" => false,
            _ => {
                warnings.push(format!(
                    "{var}={v:?} is not gzip or none; sending uncompressed"
                ));
                false
            }
        },
    };
    let timeout = match option("TIMEOUT") {
        None => DEFAULT_TIMEOUT,
        Some((var, v)) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                warnings.push(format!(
                    "{var}={v:?} is not a positive number of milliseconds; using {} ms",
                    DEFAULT_TIMEOUT.as_millis()
                ));
                DEFAULT_TIMEOUT
            }
        },
    };
    Ok(Some(SignalConfig {
        url,
        headers,
        gzip,
        timeout,
    }))
}

fn checked_url(var: &str, value: String) -> Result<String, OtlpConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(value),
        _ => Err(OtlpConfigError::BadEndpoint {
            var: var.to_owned(),
            value,
        }),
    }
}

/// `key1=value1,key2=value2`: the specification's W3C-Baggage-like list, surrounding spaces
/// trimmed, values percent-decoded. A malformed entry is skipped with a warning (its value is
/// never echoed: headers usually carry credentials).
pub fn parse_headers(var: &str, raw: &str, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, entry) in raw.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let parsed = entry.split_once('=').and_then(|(k, v)| {
            let key = k.trim();
            let valid_name = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let value = percent_decode(v.trim())?;
            (valid_name && !value.contains(['\r', '\n'])).then(|| (key.to_owned(), value))
        });
        match parsed {
            Some(kv) => out.push(kv),
            None => warnings.push(format!(
                "{var}: entry {} is not key=value with a valid header name and value; skipped",
                i + 1
            )),
        }
    }
    out
}

/// `%XX` escapes to bytes; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> (Result<Option<OtlpConfig>, OtlpConfigError>, Vec<String>) {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut warnings = Vec::new();
        let c = OtlpConfig::from_lookup(|k| map.get(k).cloned(), &mut warnings);
        (c, warnings)
    }

    #[test]
    fn off_without_an_endpoint() {
        let (c, w) = parse(&[("OTEL_EXPORTER_OTLP_HEADERS", "a=b")]);
        assert_eq!(c, Ok(None));
        assert!(w.is_empty());
    }

    #[test]
    fn base_endpoint_gets_signal_paths_appended() {
        for (base, traces) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://gw.example/otlp",
                "https://gw.example/otlp/v1/traces",
            ),
        ] {
            let (c, _) = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", base)]);
            let c = c.unwrap().unwrap();
            assert_eq!(c.traces.unwrap().url, traces);
            assert!(c.metrics.unwrap().url.ends_with("/v1/metrics"));
        }
    }

    #[test]
    fn signal_endpoints_are_used_as_is_and_override_the_base() {
        let (c, w) = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
        ]);
        let c = c.unwrap().unwrap();
        assert!(w.is_empty());
        assert_eq!(c.traces.unwrap().url, "http://t:1/custom");
        assert_eq!(c.metrics.unwrap().url, "http://base:4318/v1/metrics");

        // Only a metrics endpoint: traces are not exported over OTLP.
        let (c, _) = parse(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:2")]);
        let c = c.unwrap().unwrap();
        assert_eq!(c.traces, None);
        assert_eq!(c.metrics.unwrap().url, "http://m:2");
    }

    #[test]
    fn options_with_per_signal_overrides() {
        let (c, w) = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%3Dcr%2Ct , x-team = a b",
            ),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "only=metrics"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        let c = c.unwrap().unwrap();
        let (t, m) = (c.traces.unwrap(), c.metrics.unwrap());
        assert_eq!(
            t.headers,
            [
                ("api-key".to_owned(), "s=cr,t".to_owned()),
                ("x-team".to_owned(), "a b".to_owned())
            ]
        );
        assert_eq!(m.headers, [("only".to_owned(), "metrics".to_owned())]);
        assert!(!t.gzip && m.gzip);
        assert_eq!(t.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn other_protocols_turn_otlp_off() {
        let (c, _) = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        assert!(matches!(
            c,
            Err(OtlpConfigError::UnsupportedProtocol { ref var, .. }) if var == "OTEL_EXPORTER_OTLP_PROTOCOL"
        ));
        let (c, _) = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
        ]);
        assert!(matches!(
            c,
            Err(OtlpConfigError::UnsupportedProtocol { .. })
        ));
        let (c, _) = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        assert!(matches!(c, Err(OtlpConfigError::BadEndpoint { .. })));
    }

    #[test]
    fn bad_values_warn_without_echoing_secrets() {
        let (c, w) = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "good=1,secret-without-equals,bad=%zz,=v",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ]);
        let t = c.unwrap().unwrap().traces.unwrap();
        assert_eq!(t.headers, [("good".to_owned(), "1".to_owned())]);
        assert_eq!(t.timeout, DEFAULT_TIMEOUT);
        assert!(!t.gzip);
        // Three header entries, compression and timeout, said once for both signals.
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w.iter().all(|w| !w.contains("secret")));
        let (c, _) = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20s3cr3t",
            ),
        ]);
        let shown = format!("{c:?}");
        assert!(
            shown.contains("authorization") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}
