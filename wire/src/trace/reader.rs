//! A msgpack cursor over a borrowed body: every integer width, fix/16/32 headers, nil for an
//! absent value, and an iterative skipper for values the decoders do not keep.

use std::borrow::Cow;

use rmp::Marker;

use super::error::ErrorKind;

/// A msgpack integer as encoded: the sign matters for range checks, not the width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Integer {
    Unsigned(u64),
    Negative(i64),
}

impl Integer {
    /// Ids are 64-bit patterns: a signed encoding is reinterpreted, as the Datadog agent does.
    pub(super) fn as_u64(self) -> u64 {
        match self {
            Integer::Unsigned(v) => v,
            Integer::Negative(v) => v as u64,
        }
    }

    /// Timestamps and durations: an unsigned encoding above `i64::MAX` is reinterpreted, as the
    /// Datadog agent does.
    pub(super) fn as_i64(self) -> i64 {
        match self {
            Integer::Unsigned(v) => v as i64,
            Integer::Negative(v) => v,
        }
    }

    pub(super) fn to_i32(self) -> Result<i32, ErrorKind> {
        let wide = match self {
            Integer::Unsigned(v) => i128::from(v),
            Integer::Negative(v) => i128::from(v),
        };
        i32::try_from(wide).map_err(|_| ErrorKind::OutOfRange {
            value: wide,
            target: "i32",
        })
    }

    pub(super) fn to_u32(self) -> Result<u32, ErrorKind> {
        let wide = match self {
            Integer::Unsigned(v) => i128::from(v),
            Integer::Negative(v) => i128::from(v),
        };
        u32::try_from(wide).map_err(|_| ErrorKind::OutOfRange {
            value: wide,
            target: "u32",
        })
    }
}

/// A forward-only cursor over a msgpack body.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where the value being read starts: what an error points at.
    value_start: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            value_start: 0,
        }
    }

    pub(super) fn position(&self) -> usize {
        self.pos
    }

    /// Start of the value read last (or being read when an error occurred).
    pub(super) fn value_start(&self) -> usize {
        self.value_start
    }

    /// Whether the next value is nil, without consuming it.
    pub(super) fn next_is_nil(&self) -> bool {
        self.buf.get(self.pos) == Some(&0xc0)
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, ErrorKind> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(ErrorKind::Truncated { needed: 1 })?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], ErrorKind> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(ErrorKind::Truncated {
                needed: n - rest.len(),
            });
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ErrorKind> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    #[inline]
    fn len16(&mut self) -> Result<usize, ErrorKind> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    #[inline]
    fn len32(&mut self) -> Result<usize, ErrorKind> {
        // u32 always fits in usize on the 32- and 64-bit targets Lambda runs.
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    #[inline]
    fn marker(&mut self) -> Result<Marker, ErrorKind> {
        self.value_start = self.pos;
        Ok(Marker::from_u8(self.byte()?))
    }

    /// An array header; nil reads as an empty array.
    #[inline]
    pub(super) fn array_len(&mut self) -> Result<usize, ErrorKind> {
        match self.marker()? {
            Marker::FixArray(n) => Ok(usize::from(n)),
            Marker::Array16 => self.len16(),
            Marker::Array32 => self.len32(),
            Marker::Null => Ok(0),
            m => Err(unexpected("array", m)),
        }
    }

    /// A map header; nil reads as an empty map.
    #[inline]
    pub(super) fn map_len(&mut self) -> Result<usize, ErrorKind> {
        match self.marker()? {
            Marker::FixMap(n) => Ok(usize::from(n)),
            Marker::Map16 => self.len16(),
            Marker::Map32 => self.len32(),
            Marker::Null => Ok(0),
            m => Err(unexpected("map", m)),
        }
    }

    /// The raw bytes of a str (or bin, which some tracers use for strings); nil reads as "".
    #[inline]
    pub(super) fn str_bytes(&mut self) -> Result<&'a [u8], ErrorKind> {
        let len = match self.marker()? {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 | Marker::Bin8 => usize::from(self.byte()?),
            Marker::Str16 | Marker::Bin16 => self.len16()?,
            Marker::Str32 | Marker::Bin32 => self.len32()?,
            Marker::Null => 0,
            m => return Err(unexpected("str", m)),
        };
        self.take(len)
    }

    /// A borrowed string. Invalid UTF-8 is repaired with U+FFFD rather than refused, as the
    /// Datadog agent does, so one bad byte in a tag never costs the whole payload.
    #[inline]
    pub(super) fn str(&mut self) -> Result<Cow<'a, str>, ErrorKind> {
        let bytes = self.str_bytes()?;
        // `from_utf8` has the word-at-a-time ASCII fast path `from_utf8_lossy` lacks.
        Ok(match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(bytes),
        })
    }

    /// An owned string, copied once from the body.
    #[inline]
    pub(super) fn string(&mut self) -> Result<String, ErrorKind> {
        Ok(self.str()?.into_owned())
    }

    /// An integer of any width or sign; nil reads as 0.
    #[inline]
    pub(super) fn integer(&mut self) -> Result<Integer, ErrorKind> {
        Ok(match self.marker()? {
            Marker::FixPos(v) => Integer::Unsigned(u64::from(v)),
            Marker::U8 => Integer::Unsigned(u64::from(self.byte()?)),
            Marker::U16 => Integer::Unsigned(u64::from(u16::from_be_bytes(self.array()?))),
            Marker::U32 => Integer::Unsigned(u64::from(u32::from_be_bytes(self.array()?))),
            Marker::U64 => Integer::Unsigned(u64::from_be_bytes(self.array()?)),
            Marker::FixNeg(v) => signed(i64::from(v)),
            Marker::I8 => signed(i64::from(i8::from_be_bytes(self.array()?))),
            Marker::I16 => signed(i64::from(i16::from_be_bytes(self.array()?))),
            Marker::I32 => signed(i64::from(i32::from_be_bytes(self.array()?))),
            Marker::I64 => signed(i64::from_be_bytes(self.array()?)),
            Marker::Null => Integer::Unsigned(0),
            m => return Err(unexpected("integer", m)),
        })
    }

    /// A number: float of either width, or an integer (Node sends integer metrics); nil is 0.
    #[inline]
    pub(super) fn float(&mut self) -> Result<f64, ErrorKind> {
        let start = self.pos;
        match self.marker()? {
            Marker::F64 => Ok(f64::from_be_bytes(self.array()?)),
            Marker::F32 => Ok(f64::from(f32::from_be_bytes(self.array()?))),
            _ => {
                self.pos = start;
                match self.integer() {
                    Ok(Integer::Unsigned(v)) => Ok(v as f64),
                    Ok(Integer::Negative(v)) => Ok(v as f64),
                    Err(ErrorKind::UnexpectedType { found, .. }) => {
                        Err(ErrorKind::UnexpectedType {
                            expected: "number",
                            found,
                        })
                    }
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// Skips one value of any type, however deeply nested, without recursion.
    pub(super) fn skip(&mut self) -> Result<(), ErrorKind> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let len = match self.marker()? {
                Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null => 0,
                Marker::True | Marker::False => 0,
                Marker::U8 | Marker::I8 => 1,
                Marker::U16 | Marker::I16 => 2,
                Marker::U32 | Marker::I32 | Marker::F32 => 4,
                Marker::U64 | Marker::I64 | Marker::F64 => 8,
                Marker::FixStr(n) => usize::from(n),
                Marker::Str8 | Marker::Bin8 => usize::from(self.byte()?),
                Marker::Str16 | Marker::Bin16 => self.len16()?,
                Marker::Str32 | Marker::Bin32 => self.len32()?,
                Marker::FixExt1 => 2,
                Marker::FixExt2 => 3,
                Marker::FixExt4 => 5,
                Marker::FixExt8 => 9,
                Marker::FixExt16 => 17,
                Marker::Ext8 => usize::from(self.byte()?) + 1,
                Marker::Ext16 => self.len16()? + 1,
                Marker::Ext32 => self.len32()? + 1,
                Marker::FixArray(n) => {
                    pending += u64::from(n);
                    0
                }
                Marker::Array16 => {
                    pending += self.len16()? as u64;
                    0
                }
                Marker::Array32 => {
                    pending += self.len32()? as u64;
                    0
                }
                Marker::FixMap(n) => {
                    pending += 2 * u64::from(n);
                    0
                }
                Marker::Map16 => {
                    pending += 2 * self.len16()? as u64;
                    0
                }
                Marker::Map32 => {
                    pending += 2 * self.len32()? as u64;
                    0
                }
                Marker::Reserved => return Err(unexpected("a msgpack value", Marker::Reserved)),
            };
            self.take(len)?;
            // Every pending value needs at least one byte: fail fast on a lying header.
            if pending > self.remaining() as u64 {
                return Err(ErrorKind::Truncated {
                    needed: (pending - self.remaining() as u64) as usize,
                });
            }
        }
        Ok(())
    }
}

/// A capacity hint that a lying length header cannot turn into a huge allocation: every element
/// takes at least one byte of the body.
pub(super) fn capacity(len: usize, reader: &Reader<'_>) -> usize {
    len.min(reader.remaining())
}

fn signed(v: i64) -> Integer {
    if v < 0 {
        Integer::Negative(v)
    } else {
        Integer::Unsigned(v as u64)
    }
}

fn unexpected(expected: &'static str, found: Marker) -> ErrorKind {
    ErrorKind::UnexpectedType {
        expected,
        found: type_name(found),
    }
}

pub(super) fn type_name(m: Marker) -> &'static str {
    match m {
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "integer",
        Marker::F32 | Marker::F64 => "float",
        Marker::Null => "nil",
        Marker::True | Marker::False => "bool",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "str",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "bin",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "map",
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => "ext",
        Marker::Reserved => "the reserved byte 0xc1",
    }
}
