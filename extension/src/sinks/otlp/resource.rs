//! The OTLP `Resource` of a span or a metric series: its service and the function tags the
//! flusher put on it (`flush::enrich`), under the OpenTelemetry semantic-convention names.
//!
//! The Datadog tags stay on every span and data point as they are (a consumer keyed on
//! Datadog's names still finds them); the resource says the same in OpenTelemetry's words, and
//! items that share it are grouped under one `ResourceSpans` / `ResourceMetrics`.

use super::proto::{Writer, common};

/// One resource attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
}

/// Resource attributes, in a fixed order: equal resources compare equal.
pub type Attributes<'a> = Vec<(&'static str, Value<'a>)>;

/// Datadog function tag → semantic-convention resource attribute, for the string-valued ones.
const FROM_TAGS: &[(&str, &str)] = &[
    ("env", "deployment.environment.name"),
    ("version", "service.version"),
    ("functionname", "faas.name"),
    ("executedversion", "faas.version"),
    ("function_arn", "cloud.resource_id"),
    ("region", "cloud.region"),
    ("account_id", "cloud.account.id"),
];

/// The resource of an item whose service is `service` and whose tags `tag` looks up.
pub fn attributes<'a>(
    service: Option<&'a str>,
    tag: impl Fn(&str) -> Option<&'a str>,
) -> Attributes<'a> {
    let mut out = Attributes::with_capacity(12);
    if let Some(s) = service.filter(|s| !s.is_empty()) {
        out.push(("service.name", Value::Str(s)));
    }
    if tag("functionname").is_some() {
        out.push(("cloud.provider", Value::Str("aws")));
        out.push(("cloud.platform", Value::Str("aws_lambda")));
    }
    for (dd, otel) in FROM_TAGS {
        if let Some(v) = tag(dd).filter(|v| !v.is_empty()) {
            out.push((otel, Value::Str(v)));
        }
    }
    // Semantic conventions: bytes; Lambda: MB.
    if let Some(mb) = tag("memorysize").and_then(|v| v.parse::<i64>().ok()) {
        out.push(("faas.max_memory", Value::Int(mb.saturating_mul(1 << 20))));
    }
    if let Some(arch) = tag("architecture") {
        let arch = match arch {
            "x86_64" => "amd64",
            other => other,
        };
        out.push(("host.arch", Value::Str(arch)));
    }
    out
}

/// Writes a `Resource` message in field `tag`, with `extra` attributes after `attrs`.
pub fn put(w: &mut Writer, tag: u32, attrs: &Attributes<'_>, extra: &[(&str, &str)]) {
    w.message(tag, |w| {
        for (k, v) in attrs {
            match v {
                Value::Str(s) => common::kv_str(w, 1, k, s),
                Value::Int(n) => common::kv_int(w, 1, k, *n),
            }
        }
        for (k, v) in extra.iter().filter(|(_, v)| !v.is_empty()) {
            common::kv_str(w, 1, k, v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn function_tags_become_semantic_conventions() {
        let tags: BTreeMap<&str, &str> = [
            ("functionname", "my-fn"),
            ("region", "eu-west-1"),
            ("account_id", "123456789012"),
            ("memorysize", "256"),
            ("architecture", "x86_64"),
            ("env", "prod"),
        ]
        .into();
        let attrs = attributes(Some("svc"), |k| tags.get(k).copied());
        let get = |k: &str| attrs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("service.name"), Some(Value::Str("svc")));
        assert_eq!(get("cloud.provider"), Some(Value::Str("aws")));
        assert_eq!(get("faas.name"), Some(Value::Str("my-fn")));
        assert_eq!(get("cloud.account.id"), Some(Value::Str("123456789012")));
        assert_eq!(get("faas.max_memory"), Some(Value::Int(256 << 20)));
        assert_eq!(get("host.arch"), Some(Value::Str("amd64")));
        assert_eq!(get("deployment.environment.name"), Some(Value::Str("prod")));
        // Not a function: no cloud attributes.
        assert_eq!(attributes(None, |_| None), vec![]);
    }
}
