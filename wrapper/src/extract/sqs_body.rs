//! The envelope another service may wrap an SQS message body in (EventBridge → SQS, SNS → SQS
//! without raw delivery), read straight from the body's JSON text: only the fields that decide
//! the envelope and carry a context are kept, everything else (the message itself, often the
//! bulk of the body) is skipped without building a `Value` or allocating, and the EventBridge
//! carrier is kept as JSON text, for `attribute::carrier_context` to read its headers from.
//!
//! Answers are those of parsing the body into a `Value` and looking the fields up: duplicate
//! keys keep the last occurrence, and the body must be one valid JSON object.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::propagation::CowStr;

/// The envelope fields of an SQS body that is a JSON object.
#[derive(Debug, Default)]
pub(crate) struct Envelope<'a> {
    /// `detail`, when present.
    detail: Option<Detail<'a>>,
    /// `detail-type` is truthy.
    detail_type: bool,
    /// `source` is truthy.
    source: bool,
    /// `Type` is the string `Notification`.
    notification: bool,
    /// `TopicArn` is present (whatever its value).
    topic_arn: bool,
    /// `MessageAttributes`, when present.
    message_attributes: Option<Value>,
}

/// `detail`: an object (with its `_datadog` member's JSON text, if any), or something else.
#[derive(Debug)]
enum Detail<'a> {
    Object(Option<&'a RawValue>),
    NotObject,
}

impl<'a> Envelope<'a> {
    /// Parses a body; `None` unless it is a JSON object.
    pub(crate) fn parse(body: &'a str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }

    /// The JSON text of `detail._datadog` of an EventBridge envelope (an object with a
    /// `detail` object, a truthy `detail-type` and a truthy `source`), if it is an object.
    pub(crate) fn eventbridge_carrier(&self) -> Option<&'a str> {
        let Some(Detail::Object(carrier)) = &self.detail else {
            return None;
        };
        if !self.detail_type || !self.source {
            return None;
        }
        // datadog-lambda raises on a missing `_datadog` and falls through to the plain SQS path.
        carrier.map(|c| c.get()).filter(|c| c.starts_with('{'))
    }

    /// `MessageAttributes` of an SNS notification (`Type: Notification` with a `TopicArn`);
    /// the outer `None` when the body is not one.
    pub(crate) fn sns_attributes(&self) -> Option<Option<&Value>> {
        (self.notification && self.topic_arn).then_some(self.message_attributes.as_ref())
    }
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
                let mut envelope = Envelope::default();
                while let Some(CowStr(key)) = map.next_key()? {
                    match &*key {
                        "detail" => envelope.detail = Some(map.next_value::<Detail>()?),
                        "detail-type" => envelope.detail_type = map.next_value::<Truthy>()?.0,
                        "source" => envelope.source = map.next_value::<Truthy>()?.0,
                        "Type" => {
                            envelope.notification = map.next_value::<IsNotification>()?.0;
                        }
                        "TopicArn" => {
                            map.next_value::<IgnoredAny>()?;
                            envelope.topic_arn = true;
                        }
                        "MessageAttributes" => {
                            envelope.message_attributes = Some(map.next_value()?);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(envelope)
            }
        }
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

/// Implements the visits of booleans, numbers and null of a [`Visitor`] that answers the same
/// for all of them.
macro_rules! same_for_other_scalars {
    ($value:ty, $answer:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($answer)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            Ok($answer)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok($answer)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($answer)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok($answer)
        }
    };
}

/// Skips the rest of an array; whether it had any element.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<bool, A::Error> {
    let mut any = false;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        any = true;
    }
    Ok(any)
}

/// Skips the rest of an object; whether it had any member.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<bool, A::Error> {
    let mut any = false;
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
        any = true;
    }
    Ok(any)
}

/// Python truthiness of any JSON value (as `trigger::truthy`), without keeping it.
struct Truthy(bool);

impl<'de> Deserialize<'de> for Truthy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TruthyVisitor;
        impl<'de> Visitor<'de> for TruthyVisitor {
            type Value = Truthy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Truthy, E> {
                Ok(Truthy(!v.is_empty()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Truthy, E> {
                Ok(Truthy(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Truthy, E> {
                Ok(Truthy(v != 0))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Truthy, E> {
                Ok(Truthy(v != 0))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Truthy, E> {
                Ok(Truthy(v != 0.0))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Truthy, E> {
                Ok(Truthy(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Truthy, A::Error> {
                skip_seq(seq).map(Truthy)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Truthy, A::Error> {
                skip_map(map).map(Truthy)
            }
        }
        deserializer.deserialize_any(TruthyVisitor)
    }
}

/// Whether any JSON value is the string `Notification`.
struct IsNotification(bool);

impl<'de> Deserialize<'de> for IsNotification {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NotificationVisitor;
        impl<'de> Visitor<'de> for NotificationVisitor {
            type Value = IsNotification;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IsNotification, E> {
                Ok(IsNotification(v == "Notification"))
            }
            same_for_other_scalars!(IsNotification, IsNotification(false));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<IsNotification, A::Error> {
                skip_seq(seq).map(|_| IsNotification(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<IsNotification, A::Error> {
                skip_map(map).map(|_| IsNotification(false))
            }
        }
        deserializer.deserialize_any(NotificationVisitor)
    }
}

impl<'de> Deserialize<'de> for Detail<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DetailVisitor;
        impl<'de> Visitor<'de> for DetailVisitor {
            type Value = Detail<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Detail<'de>, E> {
                Ok(Detail::NotObject)
            }
            same_for_other_scalars!(Detail<'de>, Detail::NotObject);
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Detail<'de>, A::Error> {
                skip_seq(seq).map(|_| Detail::NotObject)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Detail<'de>, A::Error> {
                let mut carrier = None;
                while let Some(CowStr(key)) = map.next_key()? {
                    if key == "_datadog" {
                        carrier = Some(map.next_value::<&'de RawValue>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Detail::Object(carrier))
            }
        }
        deserializer.deserialize_any(DetailVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The probe's answers against the `Value` lookups it replaces.
    fn by_value(body: &str) -> Option<(Option<Value>, Option<Option<Value>>)> {
        let body: Value = serde_json::from_str(body).ok()?;
        body.as_object()?;
        let truthy = |k: &str| crate::trigger::truthy(body.get(k));
        let carrier = body
            .get("detail")
            .filter(|d| d.is_object() && truthy("detail-type") && truthy("source"))
            .and_then(|d| d.get("_datadog"))
            .filter(|c| c.is_object())
            .cloned();
        let sns = (body.get("Type").and_then(Value::as_str) == Some("Notification")
            && body.get("TopicArn").is_some())
        .then(|| body.get("MessageAttributes").cloned());
        Some((carrier, sns))
    }

    #[test]
    fn matches_value_lookups() {
        let dd = json!({"x-datadog-trace-id": "1", "x-datadog-parent-id": "2"});
        let bodies = [
            json!({"detail-type": "t", "source": "s", "detail": {"a": [1, {"b": null}], "_datadog": dd}}),
            json!({"detail-type": "t", "source": "s", "detail": {"_datadog": "text"}}),
            json!({"detail-type": "", "source": "s", "detail": {"_datadog": dd}}),
            json!({"detail-type": 0.0, "source": [1], "detail": {"_datadog": dd}}),
            json!({"detail-type": {"k": 1}, "source": true, "detail": {"_datadog": dd}}),
            json!({"detail-type": "t", "source": -1, "detail": [dd]}),
            json!({"detail-type": "t", "source": null, "detail": {"_datadog": dd}}),
            json!({"Type": "Notification", "TopicArn": null, "MessageAttributes": {"_datadog": 1}}),
            json!({"Type": "Notification", "TopicArn": "arn"}),
            json!({"Type": "notification", "TopicArn": "arn", "MessageAttributes": {}}),
            json!({"Type": ["Notification"], "TopicArn": "arn", "MessageAttributes": {}}),
            json!({"Message": "{\"detail\": {}}", "nested": {"detail": {"_datadog": dd}}}),
        ];
        let mut texts: Vec<String> = bodies.iter().map(Value::to_string).collect();
        texts.extend(
            [
                // Duplicate keys: the last one wins, as in a `Value`.
                r#"{"detail-type":"t","source":"s","detail":{"_datadog":{"a":"1"}},"detail":{}}"#,
                r#"{"detail-type":"t","source":"s","detail":{"_datadog":{"a":"1"},"_datadog":2}}"#,
                r#"{"Type":"Notification","Type":"x","TopicArn":"a"}"#,
                // Escaped keys are unescaped, as in a `Value`.
                r#"{"detail\u002dtype":"t","source":"s","detail":{"_datadog":{"a":"1"}}}"#,
                // Not one valid object: nothing.
                r#"{"detail-type":"t","source":"s","detail":{"_datadog":{}}} trailing"#,
                r#"{"detail-type":"t","source":"s","detail":{"_datadog":{}}"#,
                r#"["Notification"]"#,
            ]
            .map(str::to_owned),
        );
        for text in &texts {
            let probe = Envelope::parse(text).map(|e| {
                (
                    e.eventbridge_carrier()
                        .map(|c| serde_json::from_str::<Value>(c).expect("carrier JSON")),
                    e.sns_attributes().map(|a| a.cloned()),
                )
            });
            assert_eq!(probe, by_value(text), "{text}");
        }
    }
}
