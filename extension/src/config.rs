//! The extension's configuration: Datadog's own environment names, validated once at start.
//!
//! An invalid value never stops the extension: it becomes one clear warning (returned with the
//! config, logged once the logger is up) and the default is used. The API key is never logged:
//! [`Config`]'s `Debug` redacts it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::flush::strategy::FlushStrategy;
use crate::sinks::otlp::{OtlpConfig, OtlpConfigError};

/// Default cap on what the buffer holds, in (estimated in-memory) bytes.
pub const DEFAULT_BUFFER_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Everything the extension reads from its environment.
#[derive(Clone)]
pub struct Config {
    /// `DD_API_KEY`; without it (and without [`Config::api_key_secret`]) the local sink is used.
    pub api_key: Option<String>,
    /// `DD_API_KEY_SECRET_ARN` and the AWS settings to read it with (`crate::secrets`); `None`
    /// when `DD_API_KEY` is set, which wins.
    pub api_key_secret: Option<crate::secrets::SecretsManagerConfig>,
    /// `DD_SITE` (default `datadoghq.com`).
    pub site: String,
    /// `DD_APM_DD_URL`: base URL of the trace intake (`https://trace.agent.<site>` otherwise).
    pub apm_dd_url: Option<String>,
    /// `DD_APM_TELEMETRY_DD_URL`: base URL for the tracer telemetry proxy
    /// (`https://instrumentation-telemetry-intake.<site>` otherwise).
    pub apm_telemetry_dd_url: Option<String>,
    /// `DD_DD_URL` (or `DD_URL`): base URL of the metrics intake (`https://api.<site>`).
    pub metrics_dd_url: Option<String>,
    pub env: Option<String>,
    pub service: Option<String>,
    pub version: Option<String>,
    /// `DD_TAGS`, `key:value` pairs separated by commas or spaces.
    pub tags: BTreeMap<String, String>,
    /// `DD_LOG_LEVEL` as a `tracing` filter directive.
    pub log_level: String,
    /// `DD_SERVERLESS_FLUSH_STRATEGY`.
    pub flush_strategy: FlushStrategy,
    /// `DD_FLUSH_TIMEOUT` (seconds, default 30): the most one flush may take, and so the most
    /// one upstream request may take. SHUTDOWN's own deadline bounds it further.
    pub flush_timeout: Duration,
    /// `DD_TRACE_ENABLED` (default true). When false, spans are accepted (tracers must not
    /// see errors) but neither buffered nor sent; they are counted as disabled.
    pub trace_enabled: bool,
    /// `DD_ENHANCED_METRICS` (default true): the `aws.lambda.enhanced.*` metrics.
    pub enhanced_metrics: bool,
    /// `DD_LAMBDA_PROC_ENHANCED_METRICS` (default true): the `/proc` sampled ones among them.
    pub proc_enhanced_metrics: bool,
    /// `DDLAMBDA_BUFFER_MAX_BYTES`: the buffer's bound.
    pub buffer_max_bytes: usize,
    /// `DDLAMBDA_WRAPPER_GRACE_MS` (default 200): how long, after `runtimeDone`, to wait for a
    /// wrapper's end-of-invocation signal.
    pub wrapper_grace: Duration,
    /// `DDLAMBDA_TELEMETRY_PROBE_MS` (default 150): after an INVOKE, how long to wait for a first
    /// Telemetry record before concluding that the platform delivers none (RIE, cargo-lambda).
    pub telemetry_probe: Duration,
    /// `DDLAMBDA_SHUTDOWN_MARGIN_MS` (default 250): kept free before SHUTDOWN's deadline.
    pub shutdown_margin: Duration,
    /// `DD_APM_RECEIVER_PORT` (default 8126), on 127.0.0.1.
    pub trace_agent_port: u16,
    /// `DD_DOGSTATSD_PORT` (default 8125), on 127.0.0.1.
    pub dogstatsd_port: u16,
    /// `DDLAMBDA_TELEMETRY_PORT` (default 8999): where the Telemetry API posts records.
    pub telemetry_port: u16,
    /// `DDLAMBDA_TELEMETRY_HOST` (default `sandbox.localdomain`): the host name given to the
    /// Telemetry API as destination; Lambda resolves it to the sandbox's own address.
    pub telemetry_host: String,
    /// `DDLAMBDA_LOCAL_OUTPUT`: a file the local sink appends JSON lines to (stdout otherwise).
    pub local_output: Option<String>,
    /// Where the proxied tracer routes go: `DD_SITE` and the Go agent's overrides
    /// (`DD_APM_PROFILING_DD_URL`, `DD_APM_DEBUGGER_DD_URL`, `DD_APM_DEBUGGER_DIAGNOSTICS_DD_URL`,
    /// `DD_EVP_PROXY_CONFIG_DD_URL`).
    pub proxy_intakes: crate::sinks::datadog::proxy::ProxyIntakes,
    /// The function, from the environment Lambda sets.
    pub function: FunctionEnv,
    /// The OTLP exporter (`OTEL_EXPORTER_OTLP_*`): `Ok(None)` when no endpoint is set; an
    /// error (logged at start-up, OTLP not used) for a protocol other than `http/protobuf` or
    /// an endpoint that is not a URL.
    pub otlp: Result<Option<OtlpConfig>, OtlpConfigError>,
}

/// What Lambda's environment says about the function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionEnv {
    pub name: Option<String>,
    pub version: Option<String>,
    pub memory_mb: Option<String>,
    pub region: Option<String>,
    /// From `AWS_EXECUTION_ENV` (`AWS_Lambda_python3.12` → `python3.12`).
    pub runtime: Option<String>,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// `AWS_LAMBDA_RUNTIME_API`.
    pub runtime_api: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_secret", &self.api_key_secret)
            .field("site", &self.site)
            .field("apm_dd_url", &self.apm_dd_url)
            .field("apm_telemetry_dd_url", &self.apm_telemetry_dd_url)
            .field("metrics_dd_url", &self.metrics_dd_url)
            .field("env", &self.env)
            .field("service", &self.service)
            .field("version", &self.version)
            .field("tags", &self.tags)
            .field("log_level", &self.log_level)
            .field("flush_strategy", &self.flush_strategy)
            .field("flush_timeout", &self.flush_timeout)
            .field("trace_enabled", &self.trace_enabled)
            .field("enhanced_metrics", &self.enhanced_metrics)
            .field("proc_enhanced_metrics", &self.proc_enhanced_metrics)
            .field("buffer_max_bytes", &self.buffer_max_bytes)
            .field("wrapper_grace", &self.wrapper_grace)
            .field("telemetry_probe", &self.telemetry_probe)
            .field("shutdown_margin", &self.shutdown_margin)
            .field("trace_agent_port", &self.trace_agent_port)
            .field("dogstatsd_port", &self.dogstatsd_port)
            .field("telemetry_port", &self.telemetry_port)
            .field("telemetry_host", &self.telemetry_host)
            .field("local_output", &self.local_output)
            .field("proxy_intakes", &self.proxy_intakes)
            .field("function", &self.function)
            .field("otlp", &self.otlp)
            .finish()
    }
}

impl Config {
    /// Reads the process environment. Returns the config and one warning per invalid value.
    pub fn from_env() -> (Config, Vec<String>) {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> (Config, Vec<String>) {
        let mut warnings = Vec::new();
        // Empty values count as unset, as in the Datadog agent.
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let log_level = match get("DD_LOG_LEVEL").map(|v| v.to_ascii_lowercase()) {
            None => "info".to_owned(),
            Some(v) => match v.as_str() {
                "trace" | "debug" | "info" | "warn" | "error" | "off" => v,
                "warning" => "warn".to_owned(),
                "critical" => "error".to_owned(),
                _ => {
                    warnings.push(format!(
                        "DD_LOG_LEVEL={v:?} is not one of trace, debug, info, warn, error, off; using info"
                    ));
                    "info".to_owned()
                }
            },
        };

        let flush_strategy = match get("DD_SERVERLESS_FLUSH_STRATEGY") {
            None => FlushStrategy::Adaptive,
            Some(v) => FlushStrategy::parse(&v).unwrap_or_else(|e| {
                warnings.push(format!(
                    "DD_SERVERLESS_FLUSH_STRATEGY={v:?}: {e}; using the adaptive default"
                ));
                FlushStrategy::Adaptive
            }),
        };

        let mut num = |key: &str, default: u64, min: u64, max: u64| -> u64 {
            match get(key) {
                None => default,
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => {
                        warnings.push(format!(
                            "{key}={v:?} is not a whole number in {min}..={max}; using {default}"
                        ));
                        default
                    }
                },
            }
        };
        let flush_timeout = Duration::from_secs(num("DD_FLUSH_TIMEOUT", 30, 1, 900));
        let buffer_max_bytes = num(
            "DDLAMBDA_BUFFER_MAX_BYTES",
            DEFAULT_BUFFER_MAX_BYTES as u64,
            64 * 1024,
            16 * 1024 * 1024 * 1024,
        ) as usize;
        let wrapper_grace = Duration::from_millis(num("DDLAMBDA_WRAPPER_GRACE_MS", 200, 0, 60_000));
        let telemetry_probe =
            Duration::from_millis(num("DDLAMBDA_TELEMETRY_PROBE_MS", 150, 0, 60_000));
        let shutdown_margin =
            Duration::from_millis(num("DDLAMBDA_SHUTDOWN_MARGIN_MS", 250, 0, 2_000));
        let trace_agent_port = num("DD_APM_RECEIVER_PORT", 8126, 1, 65535) as u16;
        let dogstatsd_port = num("DD_DOGSTATSD_PORT", 8125, 1, 65535) as u16;
        let telemetry_port = num("DDLAMBDA_TELEMETRY_PORT", 8999, 1, 65535) as u16;

        let mut flag = |key: &str, default: bool| -> bool {
            match get(key).map(|v| v.to_ascii_lowercase()) {
                None => default,
                Some(v) => match v.as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => {
                        warnings.push(format!("{key}={v:?} is not a boolean; using {default}"));
                        default
                    }
                },
            }
        };
        let trace_enabled = flag("DD_TRACE_ENABLED", true);
        let enhanced_metrics = flag("DD_ENHANCED_METRICS", true);
        let proc_enhanced_metrics = flag("DD_LAMBDA_PROC_ENHANCED_METRICS", true);

        let mut url = |key: &str| -> Option<String> {
            let v = get(key)?;
            if v.starts_with("http://") || v.starts_with("https://") {
                Some(v.trim_end_matches('/').to_owned())
            } else {
                warnings.push(format!(
                    "{key}={v:?} is not an http(s) URL; using the default intake"
                ));
                None
            }
        };
        let apm_dd_url = url("DD_APM_DD_URL");
        let apm_telemetry_dd_url = url("DD_APM_TELEMETRY_DD_URL");
        let metrics_dd_url = url("DD_DD_URL").or_else(|| url("DD_URL"));

        let site = get("DD_SITE").unwrap_or_else(|| "datadoghq.com".to_owned());
        let tags = get("DD_TAGS")
            .map(|v| parse_tags(&v, &mut warnings))
            .unwrap_or_default();

        let function = FunctionEnv {
            name: get("AWS_LAMBDA_FUNCTION_NAME"),
            version: get("AWS_LAMBDA_FUNCTION_VERSION"),
            memory_mb: get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            runtime: get("AWS_EXECUTION_ENV").map(|v| {
                v.strip_prefix("AWS_Lambda_")
                    .map(str::to_owned)
                    .unwrap_or(v)
            }),
            architecture: architecture(std::env::consts::ARCH).to_owned(),
            runtime_api: get("AWS_LAMBDA_RUNTIME_API"),
        };

        let proxy_intakes = crate::sinks::datadog::proxy::ProxyIntakes::from_lookup(
            get,
            &site,
            function.name.as_deref(),
            &mut warnings,
        );

        let api_key = get("DD_API_KEY");
        let api_key_secret = match api_key {
            Some(_) => None,
            None => crate::secrets::SecretsManagerConfig::from_lookup(get).unwrap_or_else(|e| {
                warnings.push(format!(
                    "{e}; without an API key, data goes to the local sink"
                ));
                None
            }),
        };

        let otlp = OtlpConfig::from_lookup(get, &mut warnings);

        let config = Config {
            otlp,
            api_key,
            api_key_secret,
            site,
            apm_dd_url,
            apm_telemetry_dd_url,
            metrics_dd_url,
            env: get("DD_ENV"),
            service: get("DD_SERVICE"),
            version: get("DD_VERSION"),
            tags,
            log_level,
            flush_strategy,
            flush_timeout,
            trace_enabled,
            enhanced_metrics,
            proc_enhanced_metrics,
            buffer_max_bytes,
            wrapper_grace,
            telemetry_probe,
            shutdown_margin,
            trace_agent_port,
            dogstatsd_port,
            telemetry_port,
            telemetry_host: get("DDLAMBDA_TELEMETRY_HOST")
                .unwrap_or_else(|| "sandbox.localdomain".to_owned()),
            local_output: get("DDLAMBDA_LOCAL_OUTPUT"),
            proxy_intakes,
            function,
        };
        (config, warnings)
    }

    /// Base URL of the trace intake: `DD_APM_DD_URL` or `https://trace.agent.<site>`.
    pub fn trace_intake_base(&self) -> String {
        self.apm_dd_url
            .clone()
            .unwrap_or_else(|| format!("https://trace.agent.{}", self.site))
    }

    /// Base URL of the metrics intake: `DD_DD_URL` or `https://api.<site>`.
    pub fn metrics_intake_base(&self) -> String {
        self.metrics_dd_url
            .clone()
            .unwrap_or_else(|| format!("https://api.{}", self.site))
    }

    /// Base URL of the tracer-telemetry intake.
    pub fn telemetry_intake_base(&self) -> String {
        self.apm_telemetry_dd_url
            .clone()
            .unwrap_or_else(|| format!("https://instrumentation-telemetry-intake.{}", self.site))
    }
}

/// Maps Rust's architecture names to Lambda's.
fn architecture(arch: &str) -> &str {
    match arch {
        "aarch64" => "arm64",
        other => other,
    }
}

/// Parses `DD_TAGS`: `k:v` pairs separated by commas and/or spaces; a bare key gets an empty
/// value, as in the Datadog agent.
fn parse_tags(raw: &str, warnings: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in raw
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match item.split_once(':') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_owned(), v.to_owned());
            }
            Some(_) => warnings.push(format!("DD_TAGS: {item:?} has no key; skipped")),
            None => {
                out.insert(item.to_owned(), String::new());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_without_environment() {
        let (c, w) = config(&[]);
        assert!(w.is_empty());
        assert_eq!(c.site, "datadoghq.com");
        assert_eq!(c.flush_strategy, FlushStrategy::Adaptive);
        assert_eq!(c.flush_timeout, Duration::from_secs(30));
        assert_eq!(c.trace_agent_port, 8126);
        assert_eq!(c.buffer_max_bytes, DEFAULT_BUFFER_MAX_BYTES);
        assert_eq!(c.trace_intake_base(), "https://trace.agent.datadoghq.com");
        assert!(c.trace_enabled);
        assert!(c.enhanced_metrics && c.proc_enhanced_metrics);
    }

    #[test]
    fn enhanced_metric_switches() {
        let (c, w) = config(&[
            ("DD_ENHANCED_METRICS", "FALSE"),
            ("DD_LAMBDA_PROC_ENHANCED_METRICS", "0"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert!(!c.enhanced_metrics && !c.proc_enhanced_metrics);
        let (c, w) = config(&[("DD_LAMBDA_PROC_ENHANCED_METRICS", "nope")]);
        assert_eq!(
            w,
            ["DD_LAMBDA_PROC_ENHANCED_METRICS=\"nope\" is not a boolean; using true"]
        );
        assert!(c.enhanced_metrics && c.proc_enhanced_metrics);
    }

    #[test]
    fn invalid_values_warn_and_fall_back() {
        let (c, w) = config(&[
            ("DD_FLUSH_TIMEOUT", "soon"),
            ("DD_SERVERLESS_FLUSH_STRATEGY", "sometimes"),
            ("DD_LOG_LEVEL", "loud"),
            ("DD_TRACE_ENABLED", "maybe"),
            ("DD_APM_DD_URL", "localhost:1"),
            ("DD_APM_RECEIVER_PORT", "70000"),
        ]);
        assert_eq!(w.len(), 6, "{w:?}");
        assert_eq!(c.flush_timeout, Duration::from_secs(30));
        assert_eq!(c.flush_strategy, FlushStrategy::Adaptive);
        assert_eq!(c.log_level, "info");
        assert!(c.trace_enabled);
        assert_eq!(c.apm_dd_url, None);
        assert_eq!(c.trace_agent_port, 8126);
    }

    #[test]
    fn api_key_is_never_in_debug_output() {
        let (c, _) = config(&[("DD_API_KEY", "s3cr3t-key")]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-key"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn tags_urls_and_function_env() {
        let (c, w) = config(&[
            ("DD_TAGS", "team:a, tier:gold solo  :x"),
            ("DD_APM_DD_URL", "http://127.0.0.1:9/"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(c.tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(c.tags.get("tier").map(String::as_str), Some("gold"));
        assert_eq!(c.tags.get("solo").map(String::as_str), Some(""));
        assert_eq!(c.trace_intake_base(), "http://127.0.0.1:9");
        assert_eq!(c.function.runtime.as_deref(), Some("python3.12"));
        assert_eq!(c.function.region.as_deref(), Some("eu-west-1"));
        assert_eq!(architecture("aarch64"), "arm64");
        assert_eq!(architecture("x86_64"), "x86_64");
    }
}
