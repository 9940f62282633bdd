//! The trace headers of a carrier: found case-insensitively in one pass, borrowed when they
//! can be, and remembered as not-a-string when ddtrace's reading them would raise.

use std::borrow::Cow;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{Abort, Read};

const TRACE_ID: &str = "x-datadog-trace-id";
pub(super) const PARENT_ID: &str = "x-datadog-parent-id";
const SAMPLING_PRIORITY: &str = "x-datadog-sampling-priority";
const ORIGIN: &str = "x-datadog-origin";
const TAGS: &str = "x-datadog-tags";
const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const B3_TRACE_ID: &str = "x-b3-traceid";
const B3_SPAN_ID: &str = "x-b3-spanid";
const B3_SAMPLED: &str = "x-b3-sampled";
const B3_FLAGS: &str = "x-b3-flags";
const B3: &str = "b3";
const BAGGAGE: &str = "baggage";

/// The header names extraction reads, by slot.
const NAMES: [&str; 13] = [
    TRACE_ID,
    PARENT_ID,
    SAMPLING_PRIORITY,
    ORIGIN,
    TAGS,
    TRACEPARENT,
    TRACESTATE,
    B3_TRACE_ID,
    B3_SPAN_ID,
    B3_SAMPLED,
    B3_FLAGS,
    B3,
    BAGGAGE,
];

/// Positions in [`NAMES`] and in a [`HeaderSet`].
pub(super) mod at {
    pub(in crate::extract::propagation) const TRACE_ID: usize = 0;
    pub(in crate::extract::propagation) const PARENT_ID: usize = 1;
    pub(in crate::extract::propagation) const SAMPLING_PRIORITY: usize = 2;
    pub(in crate::extract::propagation) const ORIGIN: usize = 3;
    pub(in crate::extract::propagation) const TAGS: usize = 4;
    pub(in crate::extract::propagation) const TRACEPARENT: usize = 5;
    pub(in crate::extract::propagation) const TRACESTATE: usize = 6;
    pub(in crate::extract::propagation) const B3_TRACE_ID: usize = 7;
    pub(in crate::extract::propagation) const B3_SPAN_ID: usize = 8;
    pub(in crate::extract::propagation) const B3_SAMPLED: usize = 9;
    pub(in crate::extract::propagation) const B3_FLAGS: usize = 10;
    pub(in crate::extract::propagation) const B3: usize = 11;
    pub(in crate::extract::propagation) const BAGGAGE: usize = 12;
}

/// The slot of a header name in [`NAMES`], case-insensitively. A key's length, and for three
/// lengths one letter, picks the only name it can be, so each key costs one comparison.
pub(super) fn slot(key: &str) -> Option<usize> {
    let b = key.as_bytes();
    let i = match b.len() {
        18 => at::TRACE_ID,
        19 => at::PARENT_ID,
        27 => at::SAMPLING_PRIORITY,
        16 => at::ORIGIN,
        14 => at::TAGS,
        // traceparent / x-b3-spanid
        11 if b[0] | 0x20 == b't' => at::TRACEPARENT,
        11 => at::B3_SPAN_ID,
        // tracestate / x-b3-flags
        10 if b[0] | 0x20 == b't' => at::TRACESTATE,
        10 => at::B3_FLAGS,
        // x-b3-traceid / x-b3-sampled
        12 if b[5] | 0x20 == b't' => at::B3_TRACE_ID,
        12 => at::B3_SAMPLED,
        2 => at::B3,
        7 => at::BAGGAGE,
        _ => return None,
    };
    key.eq_ignore_ascii_case(NAMES[i]).then_some(i)
}

/// The trace headers of a carrier, found case-insensitively in one pass (the last of several
/// keys differing only in case wins, as in ddtrace, which lowercases keys into a dict). Values
/// borrow from the carrier when they can; a header whose value is not a string is remembered
/// as such, for ddtrace's rule that reading it aborts the extraction.
#[derive(Debug, Default, Clone)]
pub struct HeaderSet<'a> {
    /// The Datadog and W3C tracecontext headers (ddtrace's default styles).
    common: [Option<Cow<'a, str>>; COMMON],
    /// The B3 and baggage headers, boxed on the first one seen: most carriers have none, and
    /// the set is built and moved on every invocation.
    rare: Option<Box<[Option<Cow<'a, str>>; NAMES.len() - COMMON]>>,
    /// Bit `i`: header `NAMES[i]` is present with a value that is not a string.
    not_string: u16,
}

/// The slots below this index live in [`HeaderSet::common`].
const COMMON: usize = at::B3_TRACE_ID;

impl<'a> HeaderSet<'a> {
    /// The trace headers of a JSON header map.
    pub fn from_map(map: &'a Map<String, Value>) -> Self {
        let mut set = Self::default();
        for (key, value) in map {
            if let Some(i) = slot(key) {
                set.put(i, value);
            }
        }
        set
    }

    /// The trace headers of a `multiValueHeaders` map (the first value of each list).
    pub fn from_multi_value(map: &'a Map<String, Value>) -> Self {
        let mut set = Self::default();
        for (key, value) in map {
            let Some(i) = slot(key) else { continue };
            match value {
                Value::Array(values) => {
                    if let Some(first) = values.first() {
                        set.put(i, first);
                    }
                }
                Value::String(_) => set.put(i, value),
                _ => {}
            }
        }
        set
    }

    fn put(&mut self, i: usize, value: &'a Value) {
        match value {
            Value::String(s) => self.set(i, Some(Cow::Borrowed(s))),
            _ => self.set(i, None),
        }
    }

    /// Header `i` is `value`, or a non-string value when `None`.
    #[inline(always)]
    fn set(&mut self, i: usize, value: Option<Cow<'a, str>>) {
        match value {
            Some(_) => self.not_string &= !(1 << i),
            None => self.not_string |= 1 << i,
        }
        match i.checked_sub(COMMON) {
            None => self.common[i] = value,
            Some(r) => self.rare.get_or_insert_with(Box::default)[r] = value,
        }
    }

    /// The value of `NAMES[i]` as ddtrace reads it: absent, a string, or an abort.
    #[inline]
    pub(super) fn read(&self, i: usize) -> Read<Option<&str>> {
        if self.not_string & (1 << i) != 0 {
            return Err(Abort(NAMES[i]));
        }
        Ok(self.get(i))
    }

    /// The string value of `NAMES[i]`, for a header already [read](Self::read).
    #[inline]
    pub(super) fn get(&self, i: usize) -> Option<&str> {
        match i.checked_sub(COMMON) {
            None => self.common[i].as_deref(),
            Some(r) => self.rare.as_ref()?[r].as_deref(),
        }
    }
}

impl<'de> HeaderSet<'de> {
    /// Reads the value of the map entry whose key was just read: kept if `key` is a trace
    /// header, skipped otherwise.
    pub(crate) fn read_entry<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match slot(key) {
            Some(i) => {
                let HeaderValue(value) = map.next_value()?;
                self.set(i, value);
            }
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Parses a header map straight from JSON text, keeping only the trace headers (other keys are
/// skipped without allocating). Fails only on JSON that is not an object.
impl<'de> Deserialize<'de> for HeaderSet<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> Visitor<'de> for SetVisitor {
            type Value = HeaderSet<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of trace headers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut set = HeaderSet::default();
                while let Some(CowStr(key)) = map.next_key()? {
                    set.read_entry(&key, &mut map)?;
                }
                Ok(set)
            }
        }
        deserializer.deserialize_map(SetVisitor)
    }
}

/// A header's value: a string (borrowed when it has no escapes), or `None` for any other JSON
/// value, which is skipped.
struct HeaderValue<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for HeaderValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = HeaderValue<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(HeaderValue(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(HeaderValue(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(HeaderValue(Some(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(HeaderValue(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(HeaderValue(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(HeaderValue(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(HeaderValue(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(HeaderValue(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(HeaderValue(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(HeaderValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(HeaderValue(None))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// A string that borrows from the input when it has no escapes.
pub(crate) struct CowStr<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_match_names() {
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(slot(&name.to_ascii_uppercase()), Some(i), "{name}");
            assert_eq!(slot(name), Some(i), "{name}");
        }
        for other in [
            "x-b3-parentspanid",
            "b4",
            "baggagE-",
            "tracestatf",
            "x-b3-flagz",
        ] {
            assert_eq!(slot(other), None, "{other}");
        }
    }
}
