//! Where the proxied tracer routes ([`PROXY_ROUTES`]) go upstream, resolved once at start.
//!
//! bottlecap sends each to `https://<subdomain>.<site><intake_path>` and reads no override.
//! The Go agent's overrides are honoured on top, so a proxy or a test intake can stand in:
//! `DD_APM_PROFILING_DD_URL`, `DD_APM_DEBUGGER_DD_URL` (`/debugger/v1/input`) and
//! `DD_APM_DEBUGGER_DIAGNOSTICS_DD_URL` (`/debugger/v2/input`, `/debugger/v1/diagnostics`) name
//! the whole URL, as in the Go agent; `DD_EVP_PROXY_CONFIG_DD_URL` (LLM Observability) names the
//! domain that replaces `<site>`, as in the Go agent, or, given with a scheme, a base URL the
//! intake path is appended to (the Go agent takes no scheme there; this form exists so a
//! loopback intake can receive EVP traffic).

use crate::event::{PROXY_ROUTES, ProxyRoute};

/// The header the agents add proxied data's host-level tags in (bottlecap:
/// `DD_ADDITIONAL_TAGS_HEADER`; the Go agent's profiling and pipeline-stats proxies).
pub const ADDITIONAL_TAGS_HEADER: &str = "X-Datadog-Additional-Tags";

/// Every proxied route's upstream URL, and the tags added to what goes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyIntakes {
    /// One URL per entry of [`PROXY_ROUTES`], in its order.
    urls: Vec<String>,
    /// `_dd.origin:lambda,functionname:<name>`, as bottlecap tags proxied requests.
    additional_tags: String,
}

impl Default for ProxyIntakes {
    /// The default site (`datadoghq.com`), no function name.
    fn default() -> Self {
        Self::from_lookup(|_| None, "datadoghq.com", None, &mut Vec::new())
    }
}

/// How an override names the destination.
enum Form {
    /// The whole URL.
    Url,
    /// The domain replacing `<site>` (or, with a scheme, a base URL).
    Domain,
}

/// The Go agent's setting that redirects `route`.
fn override_of(route: &ProxyRoute) -> (&'static str, Form) {
    match route.subdomain {
        "intake.profile" => ("DD_APM_PROFILING_DD_URL", Form::Url),
        "http-intake.logs" => ("DD_APM_DEBUGGER_DD_URL", Form::Url),
        "debugger-intake" => ("DD_APM_DEBUGGER_DIAGNOSTICS_DD_URL", Form::Url),
        // The LLM Observability routes, which the Go agent serves through its EVP proxy.
        _ => ("DD_EVP_PROXY_CONFIG_DD_URL", Form::Domain),
    }
}

impl ProxyIntakes {
    /// Resolves every route for `site`, with the overrides `get` finds; an unusable override is
    /// one warning and the default URL.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        site: &str,
        function_name: Option<&str>,
        warnings: &mut Vec<String>,
    ) -> Self {
        let mut warned: Vec<&str> = Vec::new();
        let urls = PROXY_ROUTES
            .iter()
            .map(|route| {
                let default = format!("https://{}.{site}{}", route.subdomain, route.intake_path);
                let (key, form) = override_of(route);
                let Some(value) = get(key) else {
                    return default;
                };
                let value = value.trim().trim_end_matches('/');
                let has_scheme = value.starts_with("https://") || value.starts_with("http://");
                match form {
                    Form::Url if has_scheme => value.to_owned(),
                    Form::Domain if has_scheme => format!("{value}{}", route.intake_path),
                    Form::Domain if !value.is_empty() && !value.contains('/') => {
                        format!("https://{}.{value}{}", route.subdomain, route.intake_path)
                    }
                    _ => {
                        if !warned.contains(&key) {
                            warned.push(key);
                            warnings.push(format!(
                                "{key}={value:?} is not {}; using the default intake",
                                match form {
                                    Form::Url => "an http(s) URL",
                                    Form::Domain => "a domain or an http(s) URL",
                                }
                            ));
                        }
                        default
                    }
                }
            })
            .collect();
        let mut additional_tags = "_dd.origin:lambda".to_owned();
        if let Some(name) = function_name.filter(|n| !n.is_empty()) {
            additional_tags.push_str(",functionname:");
            additional_tags.push_str(&name.to_lowercase());
        }
        Self {
            urls,
            additional_tags,
        }
    }

    /// Where `route`'s bodies go; `None` for a route not in [`PROXY_ROUTES`].
    pub fn url(&self, route: &ProxyRoute) -> Option<&str> {
        PROXY_ROUTES
            .iter()
            .position(|r| r == route)
            .and_then(|i| self.urls.get(i))
            .map(String::as_str)
    }

    /// The [`ADDITIONAL_TAGS_HEADER`] value for a request whose tracer sent `theirs`: the
    /// tracer's tags are kept and ours follow (the Go agent's symdb proxy merges the same way;
    /// bottlecap replaces them).
    pub fn additional_tags(&self, theirs: Option<&str>) -> String {
        match theirs.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => format!("{t},{}", self.additional_tags),
            None => self.additional_tags.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::proxy_route;
    use std::collections::BTreeMap;

    fn resolve(env: &[(&str, &str)]) -> (ProxyIntakes, Vec<String>) {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut warnings = Vec::new();
        let intakes = ProxyIntakes::from_lookup(
            |k| env.get(k).cloned(),
            "datadoghq.eu",
            Some("My-Function"),
            &mut warnings,
        );
        (intakes, warnings)
    }

    fn url<'a>(intakes: &'a ProxyIntakes, local_path: &str) -> &'a str {
        intakes
            .url(proxy_route(local_path).expect("a proxied route"))
            .expect("resolved")
    }

    #[test]
    fn every_route_goes_to_its_bottlecap_intake_on_the_site() {
        let (intakes, warnings) = resolve(&[]);
        assert!(warnings.is_empty());
        for (local, upstream) in [
            (
                "/profiling/v1/input",
                "https://intake.profile.datadoghq.eu/api/v2/profile",
            ),
            (
                "/evp_proxy/v2/api/v2/llmobs",
                "https://llmobs-intake.datadoghq.eu/api/v2/llmobs",
            ),
            (
                "/evp_proxy/v2/api/intake/llm-obs/v1/eval-metric",
                "https://api.datadoghq.eu/api/intake/llm-obs/v1/eval-metric",
            ),
            (
                "/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric",
                "https://api.datadoghq.eu/api/intake/llm-obs/v2/eval-metric",
            ),
            (
                "/debugger/v1/input",
                "https://http-intake.logs.datadoghq.eu/api/v2/logs",
            ),
            (
                "/debugger/v2/input",
                "https://debugger-intake.datadoghq.eu/api/v2/debugger",
            ),
            (
                "/debugger/v1/diagnostics",
                "https://debugger-intake.datadoghq.eu/api/v2/debugger",
            ),
        ] {
            assert_eq!(url(&intakes, local), upstream, "{local}");
        }
        assert_eq!(
            intakes.additional_tags(None),
            "_dd.origin:lambda,functionname:my-function"
        );
        assert_eq!(
            intakes.additional_tags(Some("team:a")),
            "team:a,_dd.origin:lambda,functionname:my-function"
        );
    }

    #[test]
    fn the_go_agents_overrides_redirect_their_routes() {
        let (intakes, warnings) = resolve(&[
            ("DD_APM_PROFILING_DD_URL", "http://127.0.0.1:9/p/"),
            ("DD_APM_DEBUGGER_DD_URL", "https://logs.example/api/v2/logs"),
            ("DD_APM_DEBUGGER_DIAGNOSTICS_DD_URL", "http://127.0.0.1:9/d"),
            ("DD_EVP_PROXY_CONFIG_DD_URL", "example.org"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(url(&intakes, "/profiling/v1/input"), "http://127.0.0.1:9/p");
        assert_eq!(
            url(&intakes, "/debugger/v1/input"),
            "https://logs.example/api/v2/logs"
        );
        assert_eq!(url(&intakes, "/debugger/v2/input"), "http://127.0.0.1:9/d");
        assert_eq!(
            url(&intakes, "/debugger/v1/diagnostics"),
            "http://127.0.0.1:9/d"
        );
        assert_eq!(
            url(&intakes, "/evp_proxy/v2/api/v2/llmobs"),
            "https://llmobs-intake.example.org/api/v2/llmobs"
        );
        assert_eq!(
            url(&intakes, "/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric"),
            "https://api.example.org/api/intake/llm-obs/v2/eval-metric"
        );

        // A base URL for the EVP routes keeps each intake path.
        let (intakes, _) = resolve(&[("DD_EVP_PROXY_CONFIG_DD_URL", "http://127.0.0.1:9")]);
        assert_eq!(
            url(&intakes, "/evp_proxy/v2/api/v2/llmobs"),
            "http://127.0.0.1:9/api/v2/llmobs"
        );
    }

    #[test]
    fn an_unusable_override_is_one_warning_and_the_default() {
        let (intakes, warnings) = resolve(&[
            ("DD_APM_DEBUGGER_DIAGNOSTICS_DD_URL", "debugger.example"),
            ("DD_EVP_PROXY_CONFIG_DD_URL", "example.org/path"),
        ]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        for key in [
            "DD_APM_DEBUGGER_DIAGNOSTICS_DD_URL",
            "DD_EVP_PROXY_CONFIG_DD_URL",
        ] {
            assert!(warnings.iter().any(|w| w.contains(key)), "{warnings:?}");
        }
        assert_eq!(
            url(&intakes, "/debugger/v1/diagnostics"),
            "https://debugger-intake.datadoghq.eu/api/v2/debugger"
        );
        assert_eq!(
            url(&intakes, "/evp_proxy/v2/api/v2/llmobs"),
            "https://llmobs-intake.datadoghq.eu/api/v2/llmobs"
        );
    }
}
