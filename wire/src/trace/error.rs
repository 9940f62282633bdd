//! What went wrong decoding a trace payload, and where.

use std::fmt;

/// A payload that could not be decoded, with the trace, span and field it failed in, so a
/// tracer author (or a log reader) can find the culprit: "trace 0 span 3: field `duration`:
/// expected integer, found str (at byte 412)".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}{kind} (at byte {offset})")]
pub struct DecodeError {
    pub location: Location,
    /// Offset in the body of the value that failed.
    pub offset: usize,
    pub kind: ErrorKind,
}

/// Where in the payload's structure a [`DecodeError`] happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Location {
    pub trace: Option<usize>,
    pub span: Option<usize>,
    pub field: Option<&'static str>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.trace, self.span) {
            (Some(trace), Some(span)) => write!(f, "trace {trace} span {span}: ")?,
            (Some(trace), None) => write!(f, "trace {trace}: ")?,
            (None, Some(span)) => write!(f, "span {span}: ")?,
            (None, None) => {}
        }
        if let Some(field) = self.field {
            write!(f, "field `{field}`: ")?;
        }
        Ok(())
    }
}

/// The ways a trace payload can be malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("expected {expected}, found {found}")]
    UnexpectedType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("the body ends {needed} bytes too early")]
    Truncated { needed: usize },
    #[error("{0} bytes follow the payload")]
    TrailingBytes(usize),
    #[error("{value} does not fit in {target}")]
    OutOfRange { value: i128, target: &'static str },
    #[error("a v0.5 body is [string table, traces], found an array of {0} elements")]
    V05BodyArity(usize),
    #[error("a v0.5 span has 12 elements, found {0}")]
    V05SpanArity(usize),
    #[error("string table entry {index}: expected str, found {found}")]
    V05TableEntry { index: usize, found: &'static str },
    #[error("string index {index} is outside the string table ({len} entries)")]
    V05StringIndex { index: u64, len: usize },
}
