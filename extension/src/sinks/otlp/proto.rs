//! A minimal protobuf writer for the OTLP messages: fields are appended in place, and a nested
//! message's length is written after its body (one byte reserved, the body shifted in the rare
//! case the length needs more), so no message model is built and nothing is encoded twice.
//! proto3 defaults are left out, as generated code does; `oneof` and `optional` members are
//! written even when zero, since their presence is the information.

use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

/// The bytes of one message being written.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A nested message in field `tag`, written by `body`.
    pub fn message(&mut self, tag: u32, body: impl FnOnce(&mut Self)) {
        let len_at = self.open(tag);
        body(self);
        self.close(len_at);
    }

    /// Starts a nested message: its key and one byte for its length. Not generic, so the many
    /// `message` instances stay small.
    fn open(&mut self, tag: u32) -> usize {
        encode_key(tag, WireType::LengthDelimited, &mut self.buf);
        self.buf.push(0);
        self.buf.len() - 1
    }

    /// Writes the length of the message begun at `len_at`, shifting its body in the rare case
    /// the length needs more than one byte.
    fn close(&mut self, len_at: usize) {
        let len = self.buf.len() - len_at - 1;
        if len < 0x80 {
            self.buf[len_at] = len as u8;
            return;
        }
        let extra = encoded_len_varint(len as u64) - 1;
        let end = self.buf.len();
        self.buf.resize(end + extra, 0);
        self.buf.copy_within(len_at + 1..end, len_at + 1 + extra);
        let mut head = &mut self.buf[len_at..len_at + 1 + extra];
        encode_varint(len as u64, &mut head);
    }

    /// A string field, left out when empty.
    pub fn string(&mut self, tag: u32, v: &str) {
        if !v.is_empty() {
            self.string_always(tag, v);
        }
    }

    /// A string field written even when empty (a `oneof` member).
    pub fn string_always(&mut self, tag: u32, v: &str) {
        self.bytes_always(tag, v.as_bytes());
    }

    /// A bytes field, left out when empty.
    pub fn bytes(&mut self, tag: u32, v: &[u8]) {
        if !v.is_empty() {
            self.bytes_always(tag, v);
        }
    }

    fn bytes_always(&mut self, tag: u32, v: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, &mut self.buf);
        encode_varint(v.len() as u64, &mut self.buf);
        self.buf.extend_from_slice(v);
    }

    /// A `uint32`/`uint64`/enum/`bool` field, left out when zero.
    pub fn varint(&mut self, tag: u32, v: u64) {
        if v != 0 {
            encode_key(tag, WireType::Varint, &mut self.buf);
            encode_varint(v, &mut self.buf);
        }
    }

    /// A `sint32` field (zig-zag), left out when zero.
    pub fn sint32(&mut self, tag: u32, v: i32) {
        self.varint(tag, u64::from(((v << 1) ^ (v >> 31)) as u32));
    }

    /// A `fixed64` field, left out when zero.
    pub fn fixed64(&mut self, tag: u32, v: u64) {
        if v != 0 {
            encode_key(tag, WireType::SixtyFourBit, &mut self.buf);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A `fixed32` field, left out when zero.
    pub fn fixed32(&mut self, tag: u32, v: u32) {
        if v != 0 {
            encode_key(tag, WireType::ThirtyTwoBit, &mut self.buf);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A `double` field, left out when zero.
    pub fn double(&mut self, tag: u32, v: f64) {
        if v.to_bits() != 0 {
            self.double_always(tag, v);
        }
    }

    /// A `double` written even when zero (`oneof` and `optional` members).
    pub fn double_always(&mut self, tag: u32, v: f64) {
        encode_key(tag, WireType::SixtyFourBit, &mut self.buf);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A packed `repeated uint64`, left out when empty.
    pub fn packed_varints(&mut self, tag: u32, vs: &[u64]) {
        if vs.is_empty() {
            return;
        }
        let len: usize = vs.iter().map(|v| encoded_len_varint(*v)).sum();
        encode_key(tag, WireType::LengthDelimited, &mut self.buf);
        encode_varint(len as u64, &mut self.buf);
        for v in vs {
            encode_varint(*v, &mut self.buf);
        }
    }
}

/// `common.v1` messages, shared by traces and metrics.
pub mod common {
    use super::Writer;

    /// A `KeyValue` with a string value.
    pub fn kv_str(w: &mut Writer, tag: u32, key: &str, value: &str) {
        w.message(tag, |w| {
            w.string(1, key);
            w.message(2, |w| w.string_always(1, value));
        });
    }

    /// A `KeyValue` with a double value.
    pub fn kv_double(w: &mut Writer, tag: u32, key: &str, value: f64) {
        w.message(tag, |w| {
            w.string(1, key);
            w.message(2, |w| w.double_always(4, value));
        });
    }

    /// A `KeyValue` with a bytes value.
    pub fn kv_bytes(w: &mut Writer, tag: u32, key: &str, value: &[u8]) {
        w.message(tag, |w| {
            w.string(1, key);
            w.message(2, |w| w.bytes_always(7, value));
        });
    }

    /// A `KeyValue` with an int value.
    pub fn kv_int(w: &mut Writer, tag: u32, key: &str, value: i64) {
        w.message(tag, |w| {
            w.string(1, key);
            // `int64` is the varint of the two's complement; a `oneof` member, so always written.
            w.message(2, |w| {
                prost::encoding::encode_key(3, prost::encoding::WireType::Varint, &mut w.buf);
                prost::encoding::encode_varint(value as u64, &mut w.buf);
            });
        });
    }

    /// A `KeyValue` whose value is an array of strings.
    pub fn kv_str_array<'a>(
        w: &mut Writer,
        tag: u32,
        key: &str,
        values: impl IntoIterator<Item = &'a str>,
    ) {
        w.message(tag, |w| {
            w.string(1, key);
            w.message(2, |w| {
                w.message(5, |w| {
                    for v in values {
                        w.message(1, |w| w.string_always(1, v));
                    }
                });
            });
        });
    }

    /// An `InstrumentationScope`.
    pub fn scope(w: &mut Writer, tag: u32, name: &str, version: &str) {
        w.message(tag, |w| {
            w.string(1, name);
            w.string(2, version);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    struct Inner {
        #[prost(string, tag = "1")]
        s: String,
        #[prost(sint32, tag = "2")]
        z: i32,
        #[prost(uint64, repeated, tag = "3")]
        packed: Vec<u64>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Outer {
        #[prost(message, repeated, tag = "1")]
        inner: Vec<Inner>,
        #[prost(fixed64, tag = "2")]
        f: u64,
    }

    #[test]
    fn nested_lengths_of_every_size_decode() {
        for n in [0, 1, 120, 127, 128, 300, 20_000, 3_000_000] {
            let s = "x".repeat(n);
            let mut w = Writer::default();
            w.message(1, |w| {
                w.string(1, &s);
                w.sint32(2, -5);
                w.packed_varints(3, &[1, 300, u64::MAX]);
            });
            w.message(1, |w| w.string(1, "after"));
            w.fixed64(2, 7);
            let back = Outer::decode(&w.into_bytes()[..]).unwrap();
            assert_eq!(back.inner[0].s.len(), n);
            assert_eq!(back.inner[0].z, -5);
            assert_eq!(back.inner[0].packed, [1, 300, u64::MAX]);
            assert_eq!(back.inner[1].s, "after");
            assert_eq!(back.f, 7);
        }
    }
}
