//! The wrapper's configuration: the `DD_*` environment, read once.

use std::collections::HashMap;

/// Everything the wrapper reads from the environment. Build it with [`Config::from_env`], or
/// by hand in tests.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DD_SERVICE`: the service of `aws.lambda` (the function name when unset).
    pub service: Option<String>,
    /// `DD_ENV`, set as the `env` tag on every span.
    pub env: Option<String>,
    /// `DD_VERSION`, set as the `version` tag on every span.
    pub version: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME`; the runtime's own value wins when there is one.
    pub function_name: Option<String>,
    /// `DD_TRACE_ENABLED` (default true): false sends no spans at all.
    pub trace_enabled: bool,
    /// `DD_TRACE_MANAGED_SERVICES` (default true): infer spans for the managed service that
    /// triggered the function.
    pub managed_services: bool,
    /// `DD_SERVICE_MAPPING`, `key:value,...`: service names for inferred spans, by resource
    /// name (queue, topic, stream, table, bucket, source, api id) or generic key (`lambda_sqs`, ...).
    pub service_mapping: HashMap<String, String>,
    /// `DD_TRACE_AWS_SERVICE_REPRESENTATION_ENABLED` (default true): inferred spans are named
    /// after the resource (`my-queue`) rather than the service kind (`sqs`).
    pub aws_service_representation: bool,
    /// `DD_BOTOCORE_ADD_SPAN_POINTERS` (default true): span pointers from an S3 or DynamoDB
    /// stream trigger to the span that wrote the object or item.
    pub add_span_pointers: bool,
    /// `DD_TRACE_REMOVE_INTEGRATION_SERVICE_NAMES_ENABLED`: inferred spans take `DD_SERVICE`.
    pub remove_integration_service_names: bool,
    /// Where the extension's trace agent listens: `DD_TRACE_AGENT_URL` (`http://host:port`),
    /// else `DD_AGENT_HOST` / `DD_TRACE_AGENT_PORT`, else `127.0.0.1:8126`.
    pub agent_addr: String,
    /// `DDLAMBDA_RESOLVE_AFTER_MS` (default 1; `off` for never): parsing the event and
    /// extraction wait until they are needed (ids asked for in the handler, a log span to
    /// correlate, the spans after the response), so a quick handler's response never waits for
    /// them. A handler still running after this delay has them done in the background and the
    /// invocation announced to the extension (`invocation/start`), so a timeout or crash is
    /// still reported with the right parent.
    pub resolve_after: Option<std::time::Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: None,
            env: None,
            version: None,
            function_name: None,
            trace_enabled: true,
            managed_services: true,
            service_mapping: HashMap::new(),
            aws_service_representation: true,
            add_span_pointers: true,
            remove_integration_service_names: false,
            agent_addr: ddlambda_wire::invocation::DEFAULT_AGENT_ADDR.to_owned(),
            resolve_after: Some(std::time::Duration::from_millis(1)),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let text = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let flag = |key: &str, default: bool| match text(key).map(|v| v.to_ascii_lowercase()) {
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            _ => default,
        };
        let agent_addr = text("DD_TRACE_AGENT_URL")
            .and_then(|url| agent_addr_from_url(&url))
            .unwrap_or_else(|| {
                let host = text("DD_AGENT_HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
                let port = text("DD_TRACE_AGENT_PORT").unwrap_or_else(|| "8126".to_owned());
                format!("{host}:{port}")
            });
        Self {
            service: text("DD_SERVICE"),
            env: text("DD_ENV"),
            version: text("DD_VERSION"),
            function_name: text("AWS_LAMBDA_FUNCTION_NAME"),
            trace_enabled: flag("DD_TRACE_ENABLED", true),
            managed_services: flag("DD_TRACE_MANAGED_SERVICES", true),
            service_mapping: text("DD_SERVICE_MAPPING")
                .map(|v| parse_service_mapping(&v))
                .unwrap_or_default(),
            aws_service_representation: flag("DD_TRACE_AWS_SERVICE_REPRESENTATION_ENABLED", true),
            add_span_pointers: flag("DD_BOTOCORE_ADD_SPAN_POINTERS", true),
            remove_integration_service_names: flag(
                "DD_TRACE_REMOVE_INTEGRATION_SERVICE_NAMES_ENABLED",
                false,
            ),
            agent_addr,
            resolve_after: match text("DDLAMBDA_RESOLVE_AFTER_MS") {
                None => Some(std::time::Duration::from_millis(1)),
                Some(v) => v.parse().ok().map(std::time::Duration::from_millis),
            },
        }
    }

    /// The service of an inferred span, as datadog-lambda's `determine_service_name` picks it:
    /// the mapping by specific key, then by generic key, then `DD_SERVICE` when integration
    /// names are removed, then `fallback` when the AWS representation is off, else the
    /// extracted name (or `fallback` when it is blank).
    pub fn inferred_service(
        &self,
        specific_key: &str,
        generic_key: &str,
        extracted: &str,
        fallback: &str,
    ) -> String {
        if let Some(mapped) = self
            .service_mapping
            .get(specific_key)
            .or_else(|| self.service_mapping.get(generic_key))
        {
            return mapped.clone();
        }
        if self.remove_integration_service_names
            && let Some(service) = &self.service
        {
            return service.clone();
        }
        if !self.aws_service_representation {
            return fallback.to_owned();
        }
        match extracted.trim() {
            "" => fallback.to_owned(),
            name => name.to_owned(),
        }
    }
}

/// `DD_SERVICE_MAPPING` as datadog-lambda parses it: comma-separated `key:value` pairs; an
/// entry without exactly one colon, with an empty side, or mapping a key to itself is ignored.
pub fn parse_service_mapping(text: &str) -> HashMap<String, String> {
    text.split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(':');
            let (key, value) = (parts.next()?.trim(), parts.next()?.trim());
            let valid =
                parts.next().is_none() && !key.is_empty() && !value.is_empty() && key != value;
            valid.then(|| (key.to_owned(), value.to_owned()))
        })
        .collect()
}

fn agent_addr_from_url(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    Some(if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn service_mapping_parses_like_datadog_lambda() {
        let map = parse_service_mapping("a:b, lambda_sqs : queues ,bad,c:c,x:y:z,:v,k:");
        assert_eq!(map.len(), 2);
        assert_eq!(map["a"], "b");
        assert_eq!(map["lambda_sqs"], "queues");
    }

    #[test]
    fn inferred_service_order() {
        let c = config(&[("DD_SERVICE_MAPPING", "q1:mapped,lambda_sqs:all-queues")]);
        assert_eq!(
            c.inferred_service("q1", "lambda_sqs", "q1", "sqs"),
            "mapped"
        );
        assert_eq!(
            c.inferred_service("q2", "lambda_sqs", "q2", "sqs"),
            "all-queues"
        );
        assert_eq!(
            config(&[]).inferred_service("q2", "lambda_sqs", "q2", "sqs"),
            "q2"
        );
        assert_eq!(
            config(&[]).inferred_service("", "lambda_sqs", " ", "sqs"),
            "sqs"
        );
        let off = config(&[("DD_TRACE_AWS_SERVICE_REPRESENTATION_ENABLED", "false")]);
        assert_eq!(off.inferred_service("q2", "lambda_sqs", "q2", "sqs"), "sqs");
        let removed = config(&[
            ("DD_TRACE_REMOVE_INTEGRATION_SERVICE_NAMES_ENABLED", "true"),
            ("DD_SERVICE", "svc"),
        ]);
        assert_eq!(
            removed.inferred_service("q2", "lambda_sqs", "q2", "sqs"),
            "svc"
        );
    }

    #[test]
    fn agent_address_sources() {
        assert_eq!(config(&[]).agent_addr, "127.0.0.1:8126");
        assert_eq!(
            config(&[("DD_TRACE_AGENT_URL", "http://127.0.0.1:9999/")]).agent_addr,
            "127.0.0.1:9999"
        );
        assert_eq!(
            config(&[("DD_AGENT_HOST", "localhost"), ("DD_TRACE_AGENT_PORT", "1")]).agent_addr,
            "localhost:1"
        );
        assert!(!config(&[("DD_TRACE_MANAGED_SERVICES", "false")]).managed_services);
        assert!(config(&[]).add_span_pointers);
        assert!(!config(&[("DD_BOTOCORE_ADD_SPAN_POINTERS", "false")]).add_span_pointers);
    }
}
