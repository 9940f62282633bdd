//! The `baggage` style: the W3C `baggage` header's items.

use std::borrow::Cow;

use super::python::py_strip;

/// ddtrace's `DD_TRACE_BAGGAGE_MAX_ITEMS`: later items are dropped.
const BAGGAGE_MAX_ITEMS: usize = 64;
/// ddtrace's `DD_TRACE_BAGGAGE_MAX_BYTES`: the item that would cross it and later ones are dropped.
const BAGGAGE_MAX_BYTES: usize = 8192;

/// The items of a W3C `baggage` header that `keep` wants (by decoded key), as ddtrace's
/// `_BaggageHeader._extract` reads them: `key=value` items split on `,`, each side stripped and
/// percent-decoded; at most 64 items and 8192 bytes (later items dropped). An item without `=`
/// or with an empty key or value voids the whole header. A repeated key keeps its first
/// position and its last value.
///
/// Every item is validated, but only kept items are decoded and stored: the default keeps
/// three keys, and a header of 64 items should not cost 128 allocations.
pub(super) fn parse_baggage<'a>(
    header: &'a str,
    keep: impl Fn(&str) -> bool,
) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    let mut items: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
    let mut total = 0;
    // `memchr` rather than `str::split`, whose char searcher dominates on short items (',' and
    // '=' are ASCII, so the pieces stay on char boundaries).
    let mut rest = Some(header);
    for index in 0.. {
        let Some(item) = rest else { break };
        rest = memchr::memchr(b',', item.as_bytes()).map(|at| &item[at + 1..]);
        let item = rest.map_or(item, |r| &item[..item.len() - r.len() - 1]);
        if index >= BAGGAGE_MAX_ITEMS {
            tracing::debug!("baggage has more than {BAGGAGE_MAX_ITEMS} items; the rest dropped");
            break;
        }
        let Some((key, value)) =
            memchr::memchr(b'=', item.as_bytes()).map(|at| (&item[..at], &item[at + 1..]))
        else {
            tracing::debug!(item, "malformed baggage item; baggage ignored");
            return Vec::new();
        };
        let size = item.len() + usize::from(index > 0);
        if total + size > BAGGAGE_MAX_BYTES {
            tracing::debug!("baggage exceeds {BAGGAGE_MAX_BYTES} bytes; the rest dropped");
            break;
        }
        total += size;
        // Percent-decoding never empties a string, so emptiness is judged on the raw sides.
        let (key, value) = (py_strip(key), py_strip(value));
        if key.is_empty() || value.is_empty() {
            tracing::debug!(
                item,
                "baggage item with an empty key or value; baggage ignored"
            );
            return Vec::new();
        }
        let key = percent_decode(key);
        if !keep(&key) {
            continue;
        }
        let value = percent_decode(value);
        match items.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => items.push((key, value)),
        }
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
        let items = |h: &str| -> Vec<(String, String)> {
            parse_baggage(h, |_| true)
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        };
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
        // Items not kept are still validated.
        assert_eq!(parse_baggage("a=1,b", |k| k == "a"), []);
        let kept = parse_baggage("a=1,b=2,a=3", |k| k == "a");
        assert_eq!(kept, [(Cow::Borrowed("a"), Cow::Borrowed("3"))]);
    }
}
