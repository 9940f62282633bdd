//! The function tags every span gets before it leaves (bottlecap's `tags/lambda/tags.rs`
//! subset the issue names), plus `_dd.origin: lambda` and the invocation's `cold_start`.
//! Which invocation a span belongs to, and so its `cold_start`, is the buffer's decision, made
//! per trace chunk on arrival (`crate::buffer`'s module doc: request id, trace, timing).

use ddlambda_wire::Span;

use crate::config::Config;

/// Tags computed once from the environment and the register response.
#[derive(Debug, Clone, Default)]
pub struct FunctionTags {
    /// Set on every span, replacing what a tracer put there: the platform knows better.
    always: Vec<(String, String)>,
    /// Set only where the tracer did not: `env`, `service`, `version`, `DD_TAGS`.
    if_absent: Vec<(String, String)>,
}

impl FunctionTags {
    /// `account_id` comes from the register response (`accountId` feature).
    pub fn new(config: &Config, account_id: Option<&str>) -> Self {
        let f = &config.function;
        let mut always = Vec::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                always.push((k.to_owned(), v.to_owned()));
            }
        };
        let name = f.name.as_deref().map(str::to_ascii_lowercase);
        put("functionname", name.as_deref());
        if let (Some(region), Some(account), Some(name)) =
            (f.region.as_deref(), account_id, f.name.as_deref())
        {
            let arn = format!("arn:aws:lambda:{region}:{account}:function:{name}");
            put("function_arn", Some(&arn.to_ascii_lowercase()));
        }
        put("region", f.region.as_deref());
        put("account_id", account_id);
        put("aws_account", account_id);
        put("memorysize", f.memory_mb.as_deref());
        put("runtime", f.runtime.as_deref());
        put("architecture", Some(&f.architecture));
        put("executedversion", f.version.as_deref());

        let mut if_absent = Vec::new();
        for (k, v) in [
            ("env", &config.env),
            ("service", &config.service),
            ("version", &config.version),
        ] {
            if let Some(v) = v {
                if_absent.push((k.to_owned(), v.clone()));
            }
        }
        if_absent.extend(config.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self { always, if_absent }
    }

    /// Every tag as `key:value`, for metrics.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.always
            .iter()
            .chain(&self.if_absent)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Tags one span.
    pub fn apply(&self, span: &mut Span, cold_start: bool) {
        span.meta
            .insert("_dd.origin".to_owned(), "lambda".to_owned());
        for (k, v) in &self.always {
            span.meta.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.if_absent {
            if !span.meta.contains_key(k) {
                span.meta.insert(k.clone(), v.clone());
            }
        }
        span.meta.insert(
            "cold_start".to_owned(),
            if cold_start { "true" } else { "false" }.to_owned(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn tags_every_span() {
        let env: HashMap<&str, &str> = [
            ("AWS_LAMBDA_FUNCTION_NAME", "My-Fn"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_nodejs20.x"),
            ("DD_ENV", "prod"),
            ("DD_SERVICE", "svc"),
            ("DD_TAGS", "team:a"),
        ]
        .into_iter()
        .collect();
        let (config, _) = Config::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        let tags = FunctionTags::new(&config, Some("123456789012"));
        let mut span = Span::default();
        span.meta.insert("env".into(), "tracer-env".into());
        tags.apply(&mut span, true);
        let m = &span.meta;
        assert_eq!(m["_dd.origin"], "lambda");
        assert_eq!(m["functionname"], "my-fn");
        assert_eq!(
            m["function_arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
        );
        assert_eq!(m["account_id"], "123456789012");
        assert_eq!(m["memorysize"], "128");
        assert_eq!(m["runtime"], "nodejs20.x");
        assert_eq!(m["region"], "us-east-1");
        assert_eq!(m["cold_start"], "true");
        assert_eq!(m["env"], "tracer-env", "a tracer's own env is kept");
        assert_eq!(m["service"], "svc");
        assert_eq!(m["team"], "a");
        assert!(m.contains_key("architecture"));
        assert!(tags.pairs().all(|(k, _)| !k.starts_with("_dd.")));
    }
}
