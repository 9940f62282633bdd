//! Decoders for the trace payloads tracers send to the agent's `/v0.4/traces` and
//! `/v0.5/traces`, as real tracers write them: omitted fields, every integer width, 32-bit
//! array and map headers, integer metrics, unknown keys.
//!
//! Hand-written over `rmp`'s markers for speed: one pass over the borrowed body, each string
//! copied once into the [`Span`](crate::Span) it ends up in.
//!
//! Where this differs from libdatadog's decoders (what the Datadog Lambda extension runs), it
//! follows the Go agent's:
//! - invalid UTF-8 in a string is repaired (U+FFFD), not a reason to refuse the payload;
//! - a signed integer in an id field is reinterpreted as its 64-bit pattern;
//! - `nil` reads as the field's zero value anywhere;
//! - bytes after the payload are refused (libdatadog's v0.4 path ignores them): they mean a
//!   broken sender, and a 400 tells it so.

mod error;
mod reader;
mod top_level;
mod v04;
mod v05;

pub use error::{DecodeError, ErrorKind, Location};
pub use top_level::{COMPUTE_STATS_KEY, TOP_LEVEL_KEY, mark_top_level};
pub use v04::decode_v04;
pub use v05::decode_v05;

use reader::Reader;

/// Runs one read, pinning a failure to `location` and the offset of the value that failed.
#[inline]
fn read<'a, T>(
    reader: &mut Reader<'a>,
    location: Location,
    f: impl FnOnce(&mut Reader<'a>) -> Result<T, ErrorKind>,
) -> Result<T, DecodeError> {
    f(reader).map_err(|kind| DecodeError {
        location,
        offset: reader.value_start(),
        kind,
    })
}

/// A body is one msgpack value: anything after it is a sign of a broken sender.
fn finish<T>(reader: &Reader<'_>, value: T) -> Result<T, DecodeError> {
    match reader.remaining() {
        0 => Ok(value),
        n => Err(DecodeError {
            location: Location::default(),
            offset: reader.position(),
            kind: ErrorKind::TrailingBytes(n),
        }),
    }
}

#[cfg(test)]
mod tests;
