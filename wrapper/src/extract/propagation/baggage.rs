//! The `baggage` style: the W3C `baggage` header's items.

use std::borrow::Cow;

use super::python::py_strip;

/// ddtrace's `DD_TRACE_BAGGAGE_MAX_ITEMS`: later items are dropped.
const BAGGAGE_MAX_ITEMS: usize = 64;
/// ddtrace's `DD_TRACE_BAGGAGE_MAX_BYTES`: the item that would cross it and later ones are dropped.
const BAGGAGE_MAX_BYTES: usize = 8192;

/// The items of a W3C `baggage` header, as ddtrace's `_BaggageHeader._extract` reads them:
/// `key=value` items split on `,`, each side stripped and percent-decoded; at most 64 items
/// and 8192 bytes (later items dropped). An item without `=` or with an empty key or value
/// voids the whole header. A repeated key keeps its first position and its last value.
pub(super) fn parse_baggage(header: &str) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = Vec::new();
    let mut total = 0;
    for (index, item) in header.split(',').enumerate() {
        if index >= BAGGAGE_MAX_ITEMS {
            tracing::debug!("baggage has more than {BAGGAGE_MAX_ITEMS} items; the rest dropped");
            break;
        }
        let Some((key, value)) = item.split_once('=') else {
            tracing::debug!(item, "malformed baggage item; baggage ignored");
            return Vec::new();
        };
        let size = item.len() + usize::from(!items.is_empty());
        if total + size > BAGGAGE_MAX_BYTES {
            tracing::debug!("baggage exceeds {BAGGAGE_MAX_BYTES} bytes; the rest dropped");
            break;
        }
        let (key, value) = (
            percent_decode(py_strip(key)),
            percent_decode(py_strip(value)),
        );
        if key.is_empty() || value.is_empty() {
            tracing::debug!(
                item,
                "baggage item with an empty key or value; baggage ignored"
            );
            return Vec::new();
        }
        match items.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value.into_owned(),
            None => items.push((key.into_owned(), value.into_owned())),
        }
        total += size;
    }
    items
}

/// Python's `urllib.parse.unquote`: `%XX` escapes become bytes, decoded as UTF-8 with U+FFFD
/// for invalid sequences; a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = b.get(i + 1..i + 3)
            && let (Some(hi), Some(lo)) =
                ((hex[0] as char).to_digit(16), (hex[1] as char).to_digit(16))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baggage_items_as_ddtrace_reads_them() {
        let items = |h: &str| parse_baggage(h);
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            items(" user.id = al%20ice ,session.id=s%C3%A9,k=a=b,user.id=bob"),
            [
                pair("user.id", "bob"),
                pair("session.id", "sé"),
                pair("k", "a=b")
            ]
        );
        assert_eq!(items("k=%zz%4"), [pair("k", "%zz%4")]);
        assert_eq!(items("k=%C3"), [pair("k", "\u{fffd}")]);
        assert_eq!(items("k=a+b"), [pair("k", "a+b")]);
        for voided in ["a=1,b", "a=1,", "a=1,=2", "a=1,b= ", "a=1,=x"] {
            assert_eq!(items(voided), [], "{voided}");
        }
        // Emptiness is judged after decoding: a key that decodes to a space is a key.
        assert_eq!(items("%20=x"), [pair(" ", "x")]);
        let many: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
        let got = items(&many.join(","));
        assert_eq!(got.len(), 64);
        assert_eq!(got[63], pair("k63", "v"));
        // 8192 bytes: 40 items of 200 bytes and their commas fit (8039), the 41st does not.
        let big: Vec<String> = (0..50)
            .map(|i| format!("k{i:02}={}", "v".repeat(196)))
            .collect();
        assert_eq!(items(&big.join(",")).len(), 40);
        let item = format!("k={}", "v".repeat(8190));
        assert_eq!(items(&item).len(), 1);
        // The comma counts: 8188 + 1 + 3 bytes fit, 8189 + 1 + 3 do not.
        assert_eq!(items(&format!("k={},a=b", "v".repeat(8186))).len(), 2);
        assert_eq!(items(&format!("k={},a=b", "v".repeat(8187))).len(), 1);
        assert_eq!(items(&format!("k={}", "v".repeat(8191))), []);
    }
}
