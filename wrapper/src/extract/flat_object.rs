//! A fast path for the JSON text of a `_datadog` header map: the flat object of strings every
//! tracer writes (`{"x-datadog-trace-id":"1","x-datadog-parent-id":"2",…}`) is read in one
//! pass over its bytes, each key and value handed to [`HeaderSet`]'s own deserializer as a
//! borrowed `&str`. serde_json's general deserializer costs more on these short documents: it
//! validates the UTF-8 of every string and dispatches on every value's type.
//!
//! Only text that is certainly one valid JSON object of strings without escapes is read here;
//! anything else — escapes, numbers, nesting, malformed or trailing text — is handed to
//! serde_json, so every answer, error included, is serde_json's.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::propagation::HeaderSet;

/// The trace headers of a `_datadog` JSON document.
pub(crate) fn header_set(json: &[u8]) -> Result<HeaderSet<'_>, serde_json::Error> {
    let fast = std::str::from_utf8(json)
        .ok()
        .and_then(|text| HeaderSet::deserialize(FlatObject::new(text)).ok());
    match fast {
        Some(set) => Ok(set),
        None => serde_json::from_slice(json),
    }
}

/// Not a flat object of strings without escapes (or not valid JSON): serde_json decides.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a flat JSON object of unescaped strings")
    }
}

impl std::error::Error for Unsupported {}

impl de::Error for Unsupported {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

/// A deserializer over JSON text that must be a flat object of unescaped strings.
struct FlatObject<'de> {
    text: &'de str,
    at: usize,
    state: State,
}

/// Where in the object the reader is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Right after `{`: a key or `}` comes next.
    Open,
    /// After a value: `,` and a key, or `}`.
    AfterValue,
    /// After the closing `}`.
    Closed,
}

impl<'de> FlatObject<'de> {
    fn new(text: &'de str) -> Self {
        Self {
            text,
            at: 0,
            state: State::Open,
        }
    }

    /// The next byte that is not JSON whitespace, consumed.
    fn next_token(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.at) {
            self.at += 1;
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
        }
        None
    }

    /// The contents of a string whose opening quote was just read. Escapes and control
    /// characters (invalid unescaped in JSON) are unsupported.
    fn string(&mut self) -> Result<&'de str, Unsupported> {
        let start = self.at;
        let len = special_byte(&self.text.as_bytes()[start..]).ok_or(Unsupported)?;
        self.at = start + len + 1;
        match self.text.as_bytes()[start + len] {
            // Quotes are ASCII, so both ends are char boundaries.
            b'"' => Ok(&self.text[start..start + len]),
            _ => Err(Unsupported),
        }
    }

    /// A string in value position.
    fn string_value(&mut self) -> Result<&'de str, Unsupported> {
        match self.next_token() {
            Some(b'"') => self.string(),
            _ => Err(Unsupported),
        }
    }
}

/// The position of the first byte that ends or escapes a JSON string's contents (`"`, `\\` or
/// a control character), eight bytes at a time: headers are mostly ids and tags of 16 to 60
/// bytes.
fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte of `word` below `n` (exact for the lowest such byte, which is
    // all that is used: borrows only reach upwards).
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let (words, tail) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let word = u64::from_le_bytes(*word);
        let found = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|at| words.len() * 8 + at)
}

impl<'de> Deserializer<'de> for FlatObject<'de> {
    type Error = Unsupported;

    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Unsupported> {
        if self.next_token() != Some(b'{') {
            return Err(Unsupported);
        }
        let value = visitor.visit_map(&mut self)?;
        // The visitor must have read the whole object, and nothing may follow it.
        if self.state != State::Closed || self.next_token().is_some() {
            return Err(Unsupported);
        }
        Ok(value)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de> MapAccess<'de> for FlatObject<'de> {
    type Error = Unsupported;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Unsupported> {
        if self.state == State::Closed {
            return Ok(None);
        }
        let token = match (self.state, self.next_token()) {
            (_, Some(b'}')) => {
                self.state = State::Closed;
                return Ok(None);
            }
            (State::AfterValue, Some(b',')) => self.next_token(),
            (State::Open, token) => token,
            _ => return Err(Unsupported),
        };
        if token != Some(b'"') {
            return Err(Unsupported);
        }
        let key = self.string()?;
        if self.next_token() != Some(b':') {
            return Err(Unsupported);
        }
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Unsupported> {
        let value = self.string_value()?;
        self.state = State::AfterValue;
        seed.deserialize(BorrowedStrDeserializer::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Propagator;

    /// The fast path's answer, and serde_json's, as the context each header set gives.
    fn both(text: &str) -> (Option<String>, Option<String>) {
        let propagator = Propagator::default();
        let answer = |set: Option<HeaderSet<'_>>| {
            set.map(|set| format!("{:?}", propagator.extract_set(&set)))
        };
        let fast = HeaderSet::deserialize(FlatObject::new(text)).ok();
        let json = serde_json::from_str::<HeaderSet<'_>>(text).ok();
        (answer(fast), answer(json))
    }

    #[test]
    fn reads_flat_objects_as_serde_json_does() {
        for text in [
            r#"{"x-datadog-trace-id":"1","x-datadog-parent-id":"2"}"#,
            " {\n\t\"X-Datadog-Trace-Id\" : \"7\" ,\r\"x-datadog-parent-id\":\"8\",\"x-datadog-sampling-priority\":\"2\"} \n",
            r#"{"x-datadog-trace-id":"1","x-datadog-trace-id":"3","x-datadog-parent-id":"2"}"#,
            r#"{"traceparent":"00-0000000000000000000000000000007b-00000000000001c8-01","tracestate":"dd=s:2;o:rum","other":"é ü"}"#,
            r#"{"x-datadog-tags":"_dd.p.tid=66bcb5eb00000000,_dd.p.dm=-4","x-datadog-trace-id":"1","x-datadog-parent-id":"2"}"#,
            r#"{}"#,
        ] {
            let (fast, json) = both(text);
            assert!(fast.is_some(), "fast path refused {text}");
            assert_eq!(fast, json, "{text}");
        }
    }

    #[test]
    fn finds_the_first_special_byte() {
        let naive = |s: &[u8]| s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let mut texts: Vec<Vec<u8>> = vec![Vec::new(), b"abc".to_vec()];
        for len in 0..20 {
            for special in [b'"', b'\\', 0, 0x1f, b'\t'] {
                for at in 0..len {
                    let mut text: Vec<u8> = (0..len).map(|i| b"a~ !#\x7f\x80\xff"[i % 8]).collect();
                    text[at] = special;
                    if at + 2 < len {
                        text[at + 2] = b'"';
                    }
                    texts.push(text);
                }
            }
        }
        for text in &texts {
            assert_eq!(special_byte(text), naive(text), "{text:?}");
        }
    }

    #[test]
    fn leaves_everything_else_to_serde_json() {
        for text in [
            r#"{"x-datadog-trace-id":1,"x-datadog-parent-id":"2"}"#,
            r#"{"a":{"b":"c"},"x-datadog-trace-id":"1"}"#,
            r#"{"a":null}"#,
            r#"{"x-datadog-trace-id":"1\u0032"}"#,
            r#"{"x-datadog-trace-id":"1",}"#,
            r#"{,"x-datadog-trace-id":"1"}"#,
            r#"{"x-datadog-trace-id":"1""x-datadog-parent-id":"2"}"#,
            r#"{"x-datadog-trace-id":"1"} x"#,
            r#"{"x-datadog-trace-id":"1"}}"#,
            r#"{"x-datadog-trace-id":"1""#,
            r#"{"x-datadog-trace-id" "1"}"#,
            "{\"x-datadog-trace-id\":\"1\u{1}\"}",
            r#"["x-datadog-trace-id","1"]"#,
            r#""text""#,
            "",
            "{",
        ] {
            assert!(
                HeaderSet::deserialize(FlatObject::new(text)).is_err(),
                "fast path took {text:?}"
            );
        }
        // Through the public entry point, the answer is serde_json's either way.
        let set =
            header_set(br#"{"a":{"b":[1]},"x-datadog-trace-id":"5","x-datadog-parent-id":"6"}"#)
                .expect("valid JSON");
        let ctx = Propagator::default().extract_set(&set).expect("context");
        assert_eq!((ctx.trace_id, ctx.parent_id), (5, 6));
        assert!(
            header_set(b"{\"a\":\"\xff\"}").is_ok(),
            "serde_json skips ignored strings' UTF-8"
        );
        assert!(header_set(b"{\"x-datadog-trace-id\":\"1\"").is_err());
    }
}
