//! A custom extractor configured by `DD_TRACE_EXTRACTOR` alone, with no code: a path from the
//! event to a header map, through decoding steps.
//!
//! ```text
//! DD_TRACE_EXTRACTOR = step ( "|" step )*      the first step must be a pointer
//! step               = /json/pointer           RFC 6901 pointer into the current value
//!                    | base64                  the current string is base64 (standard alphabet)
//!                    | json                    the current string (or base64 bytes) is JSON
//! ```
//!
//! The value the path ends on must be an object of Datadog (`x-datadog-*`) or W3C
//! (`traceparent`, `tracestate`) headers, matched case-insensitively. Examples:
//!
//! - `/detail/headers`: EventBridge events whose producer put headers in `detail.headers`;
//! - `/Records/0/body|json|/traceHeaders`: SQS messages carrying headers inside a JSON body;
//! - `/Records/0/kinesis/data|base64|json|/meta/trace`: Kinesis records with nested headers;
//! - `/Records/0/messageAttributes/trace/stringValue|json`: an SQS attribute not named `_datadog`.
//!
//! A path that does not resolve (missing key, wrong type, bad base64 or JSON) yields no context,
//! with a debug log, and the built-in extractors run next.

use base64::Engine;
use serde_json::Value;

use super::{Extracted, Extractor, InvocationInfo, Propagator};

/// A `DD_TRACE_EXTRACTOR` path that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeclarativeError {
    /// The first step must be a JSON pointer into the event.
    #[error(
        "a declarative extractor must start with a JSON pointer such as /detail/headers, got {0:?}"
    )]
    NoPointer(String),
    /// A step that is none of pointer, `base64`, `json`.
    #[error("unknown step {0:?} in declarative extractor (expected /pointer, base64 or json)")]
    UnknownStep(String),
    /// `a||b` or a trailing `|`.
    #[error("empty step in declarative extractor {0:?}")]
    EmptyStep(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Pointer(String),
    Base64,
    Json,
}

/// The declarative extractor (reported under the name `declarative`).
#[derive(Debug, Clone)]
pub struct Declarative {
    spec: String,
    steps: Vec<Step>,
    propagator: Propagator,
}

/// What a step produced: JSON, or bytes from `base64` awaiting `json`.
enum Current<'a> {
    Borrowed(&'a Value),
    Owned(Value),
    Bytes(Vec<u8>),
}

impl Declarative {
    /// Parses a path such as `/Records/0/body|json|/headers`.
    pub fn parse(spec: &str, propagator: Propagator) -> Result<Self, DeclarativeError> {
        let mut steps = Vec::new();
        for raw in spec.split('|') {
            let step = raw.trim();
            steps.push(match step {
                "" => return Err(DeclarativeError::EmptyStep(spec.to_owned())),
                "base64" => Step::Base64,
                "json" => Step::Json,
                s if s.starts_with('/') => Step::Pointer(s.to_owned()),
                s => return Err(DeclarativeError::UnknownStep(s.to_owned())),
            });
        }
        if !matches!(steps.first(), Some(Step::Pointer(_))) {
            return Err(DeclarativeError::NoPointer(spec.to_owned()));
        }
        Ok(Self {
            spec: spec.to_owned(),
            steps,
            propagator,
        })
    }

    /// The path as configured.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Follows the path; `Err` says which step failed and why (for the debug log).
    fn resolve<'a>(&self, event: &'a Value) -> Result<Current<'a>, String> {
        let mut current = Current::Borrowed(event);
        for step in &self.steps {
            current = match (step, current) {
                (Step::Pointer(p), Current::Borrowed(v)) => {
                    Current::Borrowed(v.pointer(p).ok_or_else(|| format!("{p} not found"))?)
                }
                (Step::Pointer(p), Current::Owned(v)) => Current::Owned(
                    v.pointer(p)
                        .cloned()
                        .ok_or_else(|| format!("{p} not found"))?,
                ),
                (Step::Pointer(p), Current::Bytes(_)) => {
                    return Err(format!("{p} applied to base64 bytes; add `json` before it"));
                }
                (Step::Base64, current) => {
                    let text = match &current {
                        Current::Borrowed(Value::String(s)) => s.as_str(),
                        Current::Owned(Value::String(s)) => s.as_str(),
                        _ => return Err("base64 applied to a non-string".to_owned()),
                    };
                    Current::Bytes(
                        base64::engine::general_purpose::STANDARD
                            .decode(text)
                            .map_err(|e| format!("bad base64: {e}"))?,
                    )
                }
                (Step::Json, current) => {
                    let parsed = match &current {
                        Current::Bytes(b) => serde_json::from_slice(b),
                        Current::Borrowed(Value::String(s)) => serde_json::from_str(s),
                        Current::Owned(Value::String(s)) => serde_json::from_str(s),
                        _ => return Err("json applied to a non-string".to_owned()),
                    };
                    Current::Owned(parsed.map_err(|e| format!("bad JSON: {e}"))?)
                }
            };
        }
        Ok(current)
    }
}

impl Extractor for Declarative {
    fn name(&self) -> &str {
        "declarative"
    }

    fn extract(&self, event: &Value, _info: &InvocationInfo) -> Option<Extracted> {
        let headers = match self.resolve(event) {
            Ok(Current::Borrowed(v)) => self.propagator.extract_value(v),
            Ok(Current::Owned(v)) => self.propagator.extract_value(&v),
            Ok(Current::Bytes(_)) => {
                tracing::debug!(spec = %self.spec, "declarative path ends on bytes; add `json`");
                None
            }
            Err(why) => {
                tracing::debug!(spec = %self.spec, why, "declarative extractor found nothing");
                None
            }
        };
        headers.map(Extracted::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;

    fn run(spec: &str, event: Value) -> Option<(u64, u64)> {
        let d = Declarative::parse(spec, Propagator::default()).unwrap();
        d.extract(&event, &InvocationInfo::default())
            .map(|e| (e.context.trace_id, e.context.parent_id))
    }

    #[test]
    fn pointer_json_base64() {
        let headers = json!({"X-Datadog-Trace-Id": "11", "x-datadog-parent-id": "22"});
        assert_eq!(
            run("/detail/h", json!({"detail": {"h": headers}})),
            Some((11, 22))
        );
        let body = json!({"meta": {"h": headers}}).to_string();
        assert_eq!(
            run(
                "/Records/0/body | json | /meta/h",
                json!({"Records": [{"body": body}]})
            ),
            Some((11, 22))
        );
        let data = base64::engine::general_purpose::STANDARD.encode(body);
        assert_eq!(
            run("/d|base64|json|/meta/h", json!({"d": data})),
            Some((11, 22))
        );
    }

    #[test]
    fn bad_input_yields_nothing() {
        assert_eq!(run("/d|base64|json", json!({"d": "%%%"})), None);
        assert_eq!(run("/d|json", json!({"d": "{not json"})), None);
        assert_eq!(run("/d|json", json!({"d": 5})), None);
        assert_eq!(run("/missing", json!({})), None);
        assert_eq!(run("/d|base64", json!({"d": "e30="})), None);
    }

    #[test]
    fn bad_specs() {
        let p = Propagator::default;
        assert!(matches!(
            Declarative::parse("json|/a", p()),
            Err(DeclarativeError::NoPointer(_))
        ));
        assert!(matches!(
            Declarative::parse("/a||json", p()),
            Err(DeclarativeError::EmptyStep(_))
        ));
        assert!(matches!(
            Declarative::parse("/a|gzip", p()),
            Err(DeclarativeError::UnknownStep(_))
        ));
    }
}
