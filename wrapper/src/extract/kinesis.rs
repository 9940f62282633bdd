//! Kinesis: ddtrace injects `_datadog` into the record's JSON data (base64 in the event).
//!
//! Deliberate difference from datadog-lambda (Python): the data is decoded as UTF-8, not ASCII,
//! so JSON payloads with non-ASCII text keep their context.

use ddlambda_wire::SpanContext;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::propagation::{CowStr, HeaderSet};
use super::{Env, attribute, usable};
use crate::trigger::truthy;

/// `Records[0]`'s context.
pub(crate) fn extract(env: &Env<'_>) -> Option<SpanContext> {
    record_context(env.shape.first_record()?, env)
}

/// One record's context: `kinesis.data` → base64 → UTF-8 JSON object → `_datadog`.
pub(crate) fn record_context(record: &Value, env: &Env<'_>) -> Option<SpanContext> {
    let kinesis = record.get("kinesis").filter(|k| truthy(Some(k)))?;
    let data = kinesis.get("data")?.as_str()?;
    match attribute::with_base64(data, |bytes| match DatadogField::read(bytes) {
        Ok(DatadogField(Some(headers))) => usable(env.propagator.extract_set(&headers)),
        Ok(DatadogField(None)) => None,
        Err(e) => {
            tracing::debug!(error = %e, "kinesis data is not a UTF-8 JSON object with _datadog headers");
            None
        }
    }) {
        Ok(ctx) => ctx,
        Err(e) => {
            tracing::debug!(error = %e, "kinesis data is not base64");
            None
        }
    }
}

/// The `_datadog` header map of a JSON object, other fields skipped.
struct DatadogField<'de>(Option<HeaderSet<'de>>);

impl<'de> DatadogField<'de> {
    /// serde_json validates UTF-8 itself; only `_datadog` is read, the rest is skipped.
    fn read(json: &'de [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

impl<'de> Deserialize<'de> for DatadogField<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = DatadogField<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(CowStr(key)) = map.next_key()? {
                    if key == "_datadog" {
                        found = Some(map.next_value::<HeaderSet<'de>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(DatadogField(found))
            }
        }
        deserializer.deserialize_map(FieldVisitor)
    }
}
