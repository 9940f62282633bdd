//! Telemetry API records (schema 2022-12-13), each `{"time", "type", "record"}`.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::ids::rfc3339_ms;

/// The subscription type a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// `platform.*` records.
    Platform,
    /// Function output lines.
    Function,
    /// Extension output lines.
    Extension,
}

impl Category {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "platform" => Some(Self::Platform),
            "function" => Some(Self::Function),
            "extension" => Some(Self::Extension),
            _ => None,
        }
    }
}

/// One record, serialized once.
#[derive(Clone, Debug)]
pub struct Record {
    pub(crate) category: Category,
    pub(crate) json: Value,
    /// Serialized size, for `maxBytes`.
    pub(crate) bytes: usize,
}

impl Record {
    fn new(category: Category, kind: &str, at: SystemTime, record: Value) -> Self {
        let json = json!({ "time": rfc3339_ms(at), "type": kind, "record": record });
        let bytes = json.to_string().len();
        Self {
            category,
            json,
            bytes,
        }
    }

    /// A `platform.*` record.
    pub(crate) fn platform(kind: &str, at: SystemTime, record: Value) -> Self {
        Self::new(Category::Platform, kind, at, record)
    }

    /// A function output line.
    pub(crate) fn function(at: SystemTime, line: &str) -> Self {
        Self::new(
            Category::Function,
            "function",
            at,
            Value::String(line.to_string()),
        )
    }

    /// An extension output line.
    pub(crate) fn extension(at: SystemTime, line: &str) -> Self {
        Self::new(
            Category::Extension,
            "extension",
            at,
            Value::String(line.to_string()),
        )
    }
}

/// Milliseconds as Lambda writes them: a float with three decimals.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
