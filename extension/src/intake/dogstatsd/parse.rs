//! The DogStatsD datagram grammar (datadog-agent-protocol.md §12), parsed without allocating:
//! every parsed line borrows from the datagram.
//!
//! ```text
//! <name>:<value>[:<value>…]|<type>[|@<rate>][|#<tag>,<tag>…][|T<unix s>][|c:<id>][|e:<ext>][|card:<c>]
//! _e{<title len>,<text len>}:<title>|<text>[|…]
//! _sc|<name>|<status>[|…]
//! ```
//!
//! Extensions after the type are accepted in any order; unknown ones are skipped. A datagram
//! holds one or more `\n`-separated lines; each line stands or falls alone.

use std::str;

/// A DogStatsD metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// `c`
    Count,
    /// `g`
    Gauge,
    /// `h`
    Histogram,
    /// `d`
    Distribution,
    /// `ms`
    Timer,
    /// `s`: values are strings, counted once each.
    Set,
}

impl MetricKind {
    fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(match b {
            b"c" => Self::Count,
            b"g" => Self::Gauge,
            b"h" => Self::Histogram,
            b"d" => Self::Distribution,
            b"ms" => Self::Timer,
            b"s" => Self::Set,
            _ => return None,
        })
    }

    /// Whether the intake receives this kind as a sketch rather than a series.
    pub fn is_sketch(self) -> bool {
        matches!(self, Self::Histogram | Self::Distribution | Self::Timer)
    }
}

/// One metric line, borrowing from the datagram.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine<'a> {
    pub name: &'a str,
    /// The `:`-separated values as sent (v1.1 packs several); all validated.
    raw_values: &'a str,
    pub kind: MetricKind,
    /// `@rate`; 1.0 when absent.
    pub sample_rate: f64,
    /// The raw `,`-separated tag list; empty when absent.
    pub tags: &'a str,
    /// `T<unix seconds>`, kept for counts and gauges only (as the agent does).
    pub timestamp: Option<i64>,
}

impl<'a> MetricLine<'a> {
    /// A line built in code (unsampled, untagged, no timestamp). `raw_values` must hold
    /// `:`-separated finite numbers, or members for a set; anything else is skipped.
    pub fn from_parts(name: &'a str, raw_values: &'a str, kind: MetricKind) -> Self {
        Self {
            name,
            raw_values,
            kind,
            sample_rate: 1.0,
            tags: "",
            timestamp: None,
        }
    }

    /// The numeric values (empty for sets).
    pub fn values(&self) -> impl Iterator<Item = f64> + 'a {
        let numeric = self.kind != MetricKind::Set;
        self.raw_values
            .split(':')
            .filter(move |_| numeric)
            // Validated by the parser, so nothing is dropped here.
            .filter_map(parse_value)
    }

    /// The set members (empty for every other kind).
    pub fn set_members(&self) -> impl Iterator<Item = &'a str> + 'a {
        let set = self.kind == MetricKind::Set;
        self.raw_values.split(':').filter(move |_| set)
    }

    /// The tags, in the order sent, empty ones skipped.
    pub fn tag_iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.tags.split(',').filter(|t| !t.is_empty())
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    Metric(MetricLine<'a>),
    /// `_e{…}`: accepted and counted; Lambda has no event pipeline to forward it to.
    Event,
    /// `_sc|…`: accepted and counted, likewise.
    ServiceCheck,
}

/// Why a line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error("no `|` after the value")]
    MissingType,
    #[error("unknown metric type")]
    UnknownType,
    #[error("no `:` between name and value")]
    MissingValue,
    #[error("empty metric name")]
    EmptyName,
    #[error("value is not a finite number")]
    BadValue,
    #[error("sample rate is not a number in (0, 1]")]
    BadSampleRate,
    #[error("timestamp is not an integer")]
    BadTimestamp,
    #[error("malformed event")]
    BadEvent,
    #[error("malformed service check")]
    BadServiceCheck,
}

/// The non-empty lines of a datagram (`\n`-separated; a trailing `\r` is tolerated).
pub fn lines(datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    datagram
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// Parses one line.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let line = str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    if line.starts_with("_e{") {
        return parse_event(line).map(|()| Line::Event);
    }
    if let Some(rest) = line.strip_prefix("_sc|") {
        return parse_service_check(rest).map(|()| Line::ServiceCheck);
    }
    parse_metric(line).map(Line::Metric)
}

fn parse_metric(line: &str) -> Result<MetricLine<'_>, ParseError> {
    let mut fields = line.split('|');
    // `split` always yields a first item.
    let head = fields.next().unwrap_or_default();
    let (name, raw_values) = head.split_once(':').ok_or(ParseError::MissingValue)?;
    if name.is_empty() {
        return Err(ParseError::EmptyName);
    }
    let kind_field = fields.next().ok_or(ParseError::MissingType)?;
    let kind = MetricKind::from_bytes(kind_field.as_bytes()).ok_or(ParseError::UnknownType)?;
    if kind == MetricKind::Set {
        if raw_values.is_empty() {
            return Err(ParseError::BadValue);
        }
    } else if !raw_values.split(':').all(|v| parse_value(v).is_some()) {
        return Err(ParseError::BadValue);
    }

    let mut metric = MetricLine {
        name,
        raw_values,
        kind,
        sample_rate: 1.0,
        tags: "",
        timestamp: None,
    };
    for field in fields {
        match field.as_bytes().first() {
            Some(b'@') => {
                let rate: f64 = field[1..].parse().map_err(|_| ParseError::BadSampleRate)?;
                if !(rate > 0.0 && rate <= 1.0) {
                    return Err(ParseError::BadSampleRate);
                }
                metric.sample_rate = rate;
            }
            Some(b'#') => metric.tags = &field[1..],
            Some(b'T') => {
                let ts: i64 = field[1..].parse().map_err(|_| ParseError::BadTimestamp)?;
                if matches!(kind, MetricKind::Count | MetricKind::Gauge) && ts > 0 {
                    metric.timestamp = Some(ts);
                }
            }
            // `c:` container id, `e:` external data, `card:` cardinality, and whatever later
            // protocol versions add: accepted, not needed in a Lambda sandbox.
            _ => {}
        }
    }
    Ok(metric)
}

/// A finite number; DogStatsD clients never send NaN or infinities on purpose.
fn parse_value(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `_e{<title len>,<text len>}:<title>|<text>…`: the lengths must match what follows.
fn parse_event(line: &str) -> Result<(), ParseError> {
    let rest = &line[3..];
    let (lens, rest) = rest.split_once("}:").ok_or(ParseError::BadEvent)?;
    let (title_len, text_len) = lens.split_once(',').ok_or(ParseError::BadEvent)?;
    let title_len: usize = title_len.parse().map_err(|_| ParseError::BadEvent)?;
    let text_len: usize = text_len.parse().map_err(|_| ParseError::BadEvent)?;
    let bytes = rest.as_bytes();
    let needed = title_len
        .checked_add(text_len)
        .and_then(|n| n.checked_add(1))
        .ok_or(ParseError::BadEvent)?;
    if title_len == 0 || bytes.len() < needed || bytes[title_len] != b'|' {
        return Err(ParseError::BadEvent);
    }
    Ok(())
}

/// `_sc|<name>|<status 0-3>…`.
fn parse_service_check(rest: &str) -> Result<(), ParseError> {
    let mut fields = rest.split('|');
    let name = fields.next().unwrap_or_default();
    let status = fields.next().ok_or(ParseError::BadServiceCheck)?;
    if name.is_empty() || !matches!(status, "0" | "1" | "2" | "3") {
        return Err(ParseError::BadServiceCheck);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(line: &str) -> MetricLine<'_> {
        match parse_line(line.as_bytes()) {
            Ok(Line::Metric(m)) => m,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn every_type_and_extension_the_python_client_sends() {
        let m = metric(
            "demo.requests:1|c|#route:/a,status:200,dd.internal.entity_id:abc-pod-uid,team:x|e:it-false,cn-app,pu-123",
        );
        assert_eq!(m.name, "demo.requests");
        assert_eq!(m.kind, MetricKind::Count);
        assert_eq!(m.values().collect::<Vec<_>>(), [1.0]);
        assert_eq!(
            m.tag_iter().collect::<Vec<_>>(),
            [
                "route:/a",
                "status:200",
                "dd.internal.entity_id:abc-pod-uid",
                "team:x"
            ]
        );
        assert_eq!(metric("a:-1|c").values().collect::<Vec<_>>(), [-1.0]);
        assert_eq!(metric("a:21.5|g|#room:lab").kind, MetricKind::Gauge);
        assert_eq!(metric("a:0.25|h").kind, MetricKind::Histogram);
        assert_eq!(metric("a:123|d|#env:test").kind, MetricKind::Distribution);
        assert_eq!(metric("a:45|ms").kind, MetricKind::Timer);
        let s = metric("demo.users:alice|s|#a");
        assert_eq!(s.kind, MetricKind::Set);
        assert_eq!(s.set_members().collect::<Vec<_>>(), ["alice"]);
        assert_eq!(s.values().count(), 0);
        let sampled = metric("demo.sampled:1|c|@0.999|#a:b");
        assert_eq!(sampled.sample_rate, 0.999);
        assert_eq!(sampled.tags, "a:b");
        let ts = metric("demo.ts_gauge:7|g|#a|e:x|T1795450506");
        assert_eq!(ts.timestamp, Some(1795450506));
        let cid = metric("demo.cid:1|c|#a:b|c:ci-0123abcd|card:high");
        assert_eq!(cid.tags, "a:b");
        assert_eq!(cid.timestamp, None);
    }

    #[test]
    fn extensions_in_any_order_and_unknown_ones_skipped() {
        let m = metric("x:2|d|T99|zz:new-thing|#b:2,a:1|@0.5");
        assert_eq!(m.sample_rate, 0.5);
        assert_eq!(m.tags, "b:2,a:1");
        // Timestamps are honoured for counts and gauges only.
        assert_eq!(m.timestamp, None);
    }

    #[test]
    fn v1_1_packed_values() {
        let m = metric("lat:1.5:20:30|h|#t");
        assert_eq!(m.values().collect::<Vec<_>>(), [1.5, 20.0, 30.0]);
        let s = metric("u:a:b:a|s");
        assert_eq!(s.set_members().collect::<Vec<_>>(), ["a", "b", "a"]);
    }

    #[test]
    fn events_and_service_checks_are_accepted() {
        assert_eq!(
            parse_line(b"_e{6,10}:Deploy|v1 shipped|t:info|#svc:a"),
            Ok(Line::Event)
        );
        assert_eq!(
            parse_line(b"_sc|demo.check|0|#svc:a|m:all good"),
            Ok(Line::ServiceCheck)
        );
        assert_eq!(
            parse_line(b"_e{60,10}:Deploy|v1 shipped"),
            Err(ParseError::BadEvent)
        );
        assert_eq!(
            parse_line(b"_e{6,10}Deploy|v1 shipped"),
            Err(ParseError::BadEvent)
        );
        assert_eq!(
            parse_line(b"_e{99999999999999999999,1}:a|b"),
            Err(ParseError::BadEvent)
        );
        assert_eq!(parse_line(b"_sc|x|7"), Err(ParseError::BadServiceCheck));
        assert_eq!(parse_line(b"_sc||0"), Err(ParseError::BadServiceCheck));
    }

    #[test]
    fn malformed_lines_name_their_fault() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"novalue|c", ParseError::MissingValue),
            (b":1|c", ParseError::EmptyName),
            (b"a:1", ParseError::MissingType),
            (b"a:1|q", ParseError::UnknownType),
            (b"a:x|c", ParseError::BadValue),
            (b"a:1::2|d", ParseError::BadValue),
            (b"a:NaN|g", ParseError::BadValue),
            (b"a:inf|g", ParseError::BadValue),
            (b"a:|s", ParseError::BadValue),
            (b"a:1|c|@0", ParseError::BadSampleRate),
            (b"a:1|c|@1.5", ParseError::BadSampleRate),
            (b"a:1|c|@x", ParseError::BadSampleRate),
            (b"a:1|c|Tsoon", ParseError::BadTimestamp),
            (b"a:\xff|c", ParseError::NotUtf8),
        ];
        for (line, err) in cases {
            assert_eq!(
                parse_line(line),
                Err(*err),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn lines_split_on_newlines_and_skip_empty_ones() {
        let d = b"a:1|c\n\nb:2|c\r\nc:3|c\n";
        assert_eq!(
            lines(d).collect::<Vec<_>>(),
            [&b"a:1|c"[..], b"b:2|c", b"c:3|c"]
        );
    }

    /// Random bytes, and random mutations of valid lines, never panic.
    #[test]
    fn never_panics_on_random_bytes() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: &[&[u8]] = &[
            b"demo.x:1.5:2|h|@0.5|#a:b,c|T12|c:ci-1|e:x|card:low",
            b"_e{3,2}:abc|de|t:info",
            b"_sc|svc|1|#a|m:x",
        ];
        let alphabet = b":|@#,T_e{}sc0123456789.-\n\r\xff\xc3";
        for i in 0..20_000 {
            let mut buf: Vec<u8> = if i % 2 == 0 {
                (0..(next() % 64))
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                seeds[(next() % seeds.len() as u64) as usize].to_vec()
            };
            for _ in 0..(next() % 4) {
                if buf.is_empty() {
                    break;
                }
                let at = (next() % buf.len() as u64) as usize;
                match next() % 3 {
                    0 => buf[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                    1 => {
                        buf.remove(at);
                    }
                    _ => buf.truncate(at),
                }
            }
            for line in lines(&buf) {
                if let Ok(Line::Metric(m)) = parse_line(line) {
                    let _ = m.values().count() + m.set_members().count() + m.tag_iter().count();
                }
            }
        }
    }
}
