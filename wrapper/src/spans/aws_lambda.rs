//! The `aws.lambda` span: one per invocation, the function's own work.

use std::sync::atomic::{AtomicBool, Ordering};

use ddlambda_wire::Span;

use crate::config::Config;

static COLD: AtomicBool = AtomicBool::new(true);

/// True for the first invocation of this sandbox (process) only.
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

/// The function as the runtime describes it.
#[derive(Debug, Clone, Default)]
pub struct Function<'a> {
    pub name: &'a str,
    pub invoked_arn: &'a str,
    pub request_id: &'a str,
}

/// An error to report on a span: `error.type`, `error.message`, `error.stack`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    pub r#type: String,
    pub message: String,
    pub stack: Option<String>,
}

impl ErrorInfo {
    /// Marks `span` as an error with these tags.
    pub fn apply(&self, span: &mut Span) {
        span.error = 1;
        span.meta.insert("error.type".into(), self.r#type.clone());
        span.meta
            .insert("error.message".into(), self.message.clone());
        if let Some(stack) = &self.stack {
            span.meta.insert("error.stack".into(), stack.clone());
        }
    }
}

/// `aws.lambda`, started at `start` (ids and parent are the caller's), with datadog-lambda's
/// service choice and
/// tags: the function ARN without qualifier (lowercased) and the version it names
/// (`$LATEST` when unqualified), request id, function name, cold start.
pub fn start_span(config: &Config, function: &Function<'_>, cold_start: bool, start: i64) -> Span {
    // datadog-lambda: DD_SERVICE, else "aws.lambda" when the AWS service representation is
    // off, else the function name.
    let service = match &config.service {
        Some(service) => service.clone(),
        None if !config.aws_service_representation || function.name.is_empty() => {
            "aws.lambda".to_owned()
        }
        None => function.name.to_owned(),
    };
    let mut span = Span {
        service,
        name: "aws.lambda".into(),
        resource: function.name.to_owned(),
        start,
        r#type: "serverless".into(),
        ..Span::default()
    };
    let arn = function.invoked_arn.to_lowercase();
    let parts: Vec<&str> = arn.split(':').collect();
    let (function_arn, version) = if parts.len() > 7 {
        (parts[..7].join(":"), parts[7].to_owned())
    } else {
        (arn.clone(), "$LATEST".to_owned())
    };
    let meta = &mut span.meta;
    meta.insert("span.kind".into(), "server".into());
    meta.insert("cold_start".into(), cold_start.to_string());
    meta.insert("function_arn".into(), function_arn);
    meta.insert("function_version".into(), version);
    meta.insert("request_id".into(), function.request_id.to_owned());
    meta.insert("resource_names".into(), function.name.to_owned());
    meta.insert("functionname".into(), function.name.to_lowercase());
    meta.insert("ddlambda".into(), env!("CARGO_PKG_VERSION").into());
    meta.insert("span.name".into(), "aws.lambda".into());
    meta.insert("language".into(), "rust".into());
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_arn_splits_version() {
        let f = Function {
            name: "My-Fn",
            invoked_arn: "arn:aws:lambda:us-east-1:123456789012:function:My-Fn:prod",
            request_id: "req-1",
        };
        let span = start_span(&Config::default(), &f, true, 5);
        assert_eq!(span.service, "My-Fn");
        assert_eq!(span.resource, "My-Fn");
        assert_eq!(span.r#type, "serverless");
        assert_eq!(
            span.meta["function_arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
        );
        assert_eq!(span.meta["function_version"], "prod");
        assert_eq!(span.meta["functionname"], "my-fn");
        assert_eq!(span.meta["cold_start"], "true");
        let config = Config {
            service: Some("svc".into()),
            ..Config::default()
        };
        let f = Function {
            invoked_arn: "arn:aws:lambda:us-east-1:1:function:f",
            ..f
        };
        let span = start_span(&config, &f, false, 5);
        assert_eq!(span.service, "svc");
        assert_eq!(span.meta["function_version"], "$LATEST");
        assert_eq!(span.meta["cold_start"], "false");
    }
}
