//! Python's reading of numbers and whitespace, as ddtrace relies on it: `int(s)`,
//! `int(s, 16)` and `str.strip()`.

/// Python's `str.strip()` with no argument: Unicode whitespace, which also counts the ASCII
/// separators U+001C..U+001F that Rust's `trim` keeps.
pub(super) fn py_strip(s: &str) -> &str {
    // Printable ASCII at both ends, the usual case: nothing to strip, no char decoding.
    let printable = |b: Option<&u8>| b.is_some_and(|&b| (0x21..0x80).contains(&b));
    if printable(s.as_bytes().first()) && printable(s.as_bytes().last()) {
        return s;
    }
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Python's `int(s)`: surrounding whitespace, a sign, ASCII digits with single underscores
/// between them. `None` when `int()` raises; values past `i128` saturate (callers only care
/// about the range a value falls in). Ids are read on every invocation: one pass, no allocation.
pub(super) fn py_int(s: &str) -> Option<i128> {
    // The usual form, plain digits within 64 bits, without the general rules' char decoding.
    if !s.is_empty()
        && let Some(v) = s.bytes().try_fold(0u64, |v, c| {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            v.checked_mul(10)?.checked_add(u64::from(digit))
        })
    {
        return Some(i128::from(v));
    }
    let s = py_strip(s);
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let b = digits.as_bytes();
    if b.is_empty() || b[0] == b'_' || b[b.len() - 1] == b'_' {
        return None;
    }
    let mut value: i128 = 0;
    let mut after_underscore = false;
    for &c in b {
        if c == b'_' {
            if after_underscore {
                return None;
            }
            after_underscore = true;
            continue;
        }
        after_underscore = false;
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.saturating_mul(10).saturating_add(i128::from(digit));
    }
    Some(if negative { -value } else { value })
}

/// A sampling priority as ddtrace keeps it (a Python int), clamped into `i32`: the sign, all
/// that sampling looks at, is kept.
pub(super) fn py_priority(s: &str) -> Option<i32> {
    py_int(s).map(|p| p.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32)
}

/// A hex id read with Python's `int(s, 16)`, then kept the way ddtrace's `Context` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HexId {
    /// `int()` raised `ValueError`.
    Invalid,
    /// A valid number the context drops: zero, negative, or wider than 128 bits.
    Absent,
    /// A usable id.
    Id(u128),
}

/// Python's `int(s, 16)`: surrounding whitespace, a sign, an optional `0x` prefix, hex digits
/// with single underscores between them (and one after the prefix).
pub(super) fn py_int_hex(s: &str) -> HexId {
    let s = py_strip(s);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (prefixed, s) = match s.get(..2) {
        Some("0x" | "0X") => (true, &s[2..]),
        _ => (false, s),
    };
    let digits = if prefixed {
        s.strip_prefix('_').unwrap_or(s)
    } else {
        s
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return HexId::Invalid;
    }
    let mut value: Option<u128> = Some(0);
    let mut after_underscore = false;
    for b in digits.bytes() {
        if b == b'_' {
            if after_underscore {
                return HexId::Invalid;
            }
            after_underscore = true;
            continue;
        }
        after_underscore = false;
        let Some(digit) = (b as char).to_digit(16) else {
            return HexId::Invalid;
        };
        value = value
            .and_then(|v| v.checked_mul(16))
            .and_then(|v| v.checked_add(u128::from(digit)));
    }
    match value {
        Some(v) if v != 0 && !negative => HexId::Id(v),
        _ => HexId::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors checked against Python 3.11's `int(s)`.
    #[test]
    fn decimals_as_python_reads_them() {
        for (text, want) in [
            ("0", Some(0)),
            (" +42\n", Some(42)),
            ("\u{a0}10\u{1f}", Some(10)),
            ("18446744073709551615", Some(i128::from(u64::MAX))),
            ("18446744073709551616", Some(i128::from(u64::MAX) + 1)),
            ("-1", Some(-1)),
            ("-0", Some(0)),
            ("1_000", Some(1000)),
            ("+1_0", Some(10)),
            ("99999999999999999999999999999999999999999", Some(i128::MAX)),
            ("+-1", None),
            ("++1", None),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("1 0", None),
            ("", None),
            (" ", None),
            ("+", None),
            ("0x10", None),
            ("１", None),
        ] {
            assert_eq!(py_int(text), want, "{text:?}");
        }
        assert_eq!(py_priority("99999999999"), Some(i32::MAX));
        assert_eq!(py_priority(" -1 "), Some(-1));
    }

    /// Vectors checked against Python 3.11's `int(s, 16)` and ddtrace's `Context`.
    #[test]
    fn hex_ids_as_python_reads_them() {
        use HexId::*;
        for (text, want) in [
            ("1f", Id(31)),
            ("0x1f", Id(31)),
            ("0X_1f", Id(31)),
            (" \u{a0}1f\u{2003}", Id(31)),
            ("+1f", Id(31)),
            ("0b1", Id(0xb1)),
            ("0001", Id(1)),
            ("1_f", Id(31)),
            ("ffffffffffffffffffffffffffffffff", Id(u128::MAX)),
            ("1ffffffffffffffffffffffffffffffff", Absent),
            ("-1", Absent),
            ("-0", Absent),
            ("0", Absent),
            ("1__f", Invalid),
            ("1_", Invalid),
            ("_1", Invalid),
            ("0x", Invalid),
            ("+ 1", Invalid),
            ("zz", Invalid),
            ("", Invalid),
            ("ｆ", Invalid),
            ("0x__1", Invalid),
        ] {
            assert_eq!(py_int_hex(text), want, "{text:?}");
        }
        assert_eq!(py_strip("\u{1f} a \u{85}"), "a");
    }
}
