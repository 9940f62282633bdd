//! Metric aggregation per 10-second interval, as the agent's DogStatsD time sampler does.
//!
//! - `c` → a **count** series (sum of value ÷ sample rate; v2 type 1, interval 10). The Go agent
//!   sends DogStatsD counters as rates (value ÷ 10); we keep counts, as bottlecap does, because a
//!   sandbox's intervals are sparse and a count survives them unchanged.
//! - `g` → a **gauge** series (last value); `s` → a gauge of the number of distinct members.
//! - `h`, `ms`, `d` → an agent **sketch** per interval (`/api/beta/sketches`); histograms are
//!   sketched too (as in bottlecap) rather than expanded into `.avg/.max/.count` series.
//! - `T<ts>` counts and gauges are not aggregated: each point goes out with its own timestamp.
//!
//! A context is name + sorted, deduplicated tags (+ the series/sketch class). At most
//! [`MAX_CONTEXTS`] are held; a sample for a new context beyond that is dropped and counted.
//! A flush takes every interval, the open one too: in Lambda the sandbox may freeze right after
//! the flush, so nothing is held back for an interval boundary.

pub mod series;
pub mod sketch;
pub mod sketches;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use series::{MAX_SERIES_PER_BATCH, Point, Series, SeriesBatch, SeriesType};
use sketch::AgentSketch;
use sketches::{MAX_SKETCHES_PER_BATCH, SketchBatch, SketchPoint, SketchSeries};

use crate::event::{Drain, Outgoing};
use crate::intake::dogstatsd::parse::{self, Line, MetricKind, MetricLine};

/// The aggregation interval, seconds.
pub const INTERVAL_SECS: i64 = 10;
/// bottlecap's context cap (`dogstatsd` aggregator).
pub const MAX_CONTEXTS: usize = 10_240;

/// What happened to the lines of one datagram.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DatagramOutcome {
    pub metrics: u64,
    pub events: u64,
    pub service_checks: u64,
    pub malformed: u64,
    pub dropped_contexts: u64,
}

/// Counters since start, for logs and the extension's own metrics.
#[derive(Debug, Default)]
pub struct MetricsCounters {
    pub packets: AtomicU64,
    pub metrics: AtomicU64,
    pub events: AtomicU64,
    pub service_checks: AtomicU64,
    pub malformed: AtomicU64,
    pub dropped_contexts: AtomicU64,
}

impl MetricsCounters {
    /// What could not be aggregated so far, for the flusher's report.
    pub fn dropped(&self) -> crate::flush::stats::DogStatsdSnapshot {
        crate::flush::stats::DogStatsdSnapshot {
            malformed_lines: self.malformed.load(Ordering::Relaxed),
            dropped_contexts: self.dropped_contexts.load(Ordering::Relaxed),
            dropped_events: self.events.load(Ordering::Relaxed),
            dropped_service_checks: self.service_checks.load(Ordering::Relaxed),
        }
    }

    fn add(&self, o: &DatagramOutcome) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.metrics.fetch_add(o.metrics, Ordering::Relaxed);
        self.events.fetch_add(o.events, Ordering::Relaxed);
        self.service_checks
            .fetch_add(o.service_checks, Ordering::Relaxed);
        self.malformed.fetch_add(o.malformed, Ordering::Relaxed);
        self.dropped_contexts
            .fetch_add(o.dropped_contexts, Ordering::Relaxed);
    }
}

/// The aggregator: DogStatsD lines and enhanced metrics in, series and sketches out.
#[derive(Debug)]
pub struct MetricsAggregator {
    state: Mutex<State>,
    max_contexts: usize,
    pub counters: MetricsCounters,
}

#[derive(Debug, Default)]
struct State {
    /// Interval start (Unix seconds) → context key → value.
    buckets: BTreeMap<i64, HashMap<Box<str>, Agg>>,
    /// Timestamped (`T`) points, context key → points.
    timestamped: HashMap<Box<str>, Vec<Point>>,
    contexts: usize,
    /// Reused buffer for the context key of the line being added.
    key: String,
    /// The timestamp of the last count point sent per context (see [`MetricsAggregator::take`]).
    last_count_ts: HashMap<Box<str>, i64>,
}

#[derive(Debug)]
enum Agg {
    Count(f64),
    Gauge(f64),
    Set(HashSet<Box<str>>),
    Sketch(AgentSketch),
}

/// The first byte of a context key: which output the context feeds.
const CLASS_COUNT: char = 'c';
const CLASS_GAUGE: char = 'g';
const CLASS_SET: char = 's';
const CLASS_SKETCH: char = 'd';
const SEP: char = '\u{1f}';

impl Default for MetricsAggregator {
    fn default() -> Self {
        Self::new(MAX_CONTEXTS)
    }
}

impl MetricsAggregator {
    pub fn new(max_contexts: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            max_contexts,
            counters: MetricsCounters::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parses and aggregates one DogStatsD datagram received at `now` (Unix seconds). A
    /// malformed line is counted and skipped; the rest of the datagram is kept.
    pub fn insert_datagram(&self, datagram: &[u8], now: i64) -> DatagramOutcome {
        let mut out = DatagramOutcome::default();
        let mut state = self.lock();
        for line in parse::lines(datagram) {
            match parse::parse_line(line) {
                Ok(Line::Metric(m)) => {
                    out.metrics += 1;
                    if !state.add_line(&m, now, self.max_contexts) {
                        out.dropped_contexts += 1;
                    }
                }
                Ok(Line::Event) => out.events += 1,
                Ok(Line::ServiceCheck) => out.service_checks += 1,
                Err(e) => {
                    out.malformed += 1;
                    tracing::debug!(
                        error = %e,
                        line = %String::from_utf8_lossy(&line[..line.len().min(200)]),
                        "dogstatsd: malformed line skipped"
                    );
                }
            }
        }
        drop(state);
        self.counters.add(&out);
        out
    }

    /// Adds one distribution sample (the enhanced metrics' path). `false`: dropped, over the
    /// context cap.
    pub fn insert_distribution(&self, name: &str, tags: &[String], value: f64, ts: i64) -> bool {
        // `Display` of an f64 round-trips exactly through the parser.
        let raw = value.to_string();
        let line = MetricLine::from_parts(name, &raw, MetricKind::Distribution);
        let kept = self.lock().add(
            &line,
            tags.iter().map(String::as_str),
            ts,
            self.max_contexts,
        );
        if !kept {
            self.counters
                .dropped_contexts
                .fetch_add(1, Ordering::Relaxed);
        }
        kept
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        let s = self.lock();
        s.buckets.is_empty() && s.timestamped.is_empty()
    }

    /// Takes everything held, as series and sketch batches.
    ///
    /// Lambda flushes at the end of every invocation, so one interval's count may go out in
    /// several flushes. The intake keeps one value per timestamp, so each later count point of
    /// a context gets the next free second instead of the interval's start: every partial count
    /// survives, and the interval's sum is unchanged. (Gauges are last-value anyway; sketches
    /// merge.)
    pub fn take(&self) -> (Vec<SeriesBatch>, Vec<SketchBatch>) {
        let mut s = self.lock();
        s.contexts = 0;
        let buckets = std::mem::take(&mut s.buckets);
        let timestamped = std::mem::take(&mut s.timestamped);
        // Counts only collide within a flush-to-flush gap; forget contexts quiet for longer
        // than an hour (the intake refuses older points anyway).
        if let Some(newest) = buckets.keys().next_back() {
            s.last_count_ts.retain(|_, ts| *ts > newest - 3600);
        }
        let mut last_count_ts = std::mem::take(&mut s.last_count_ts);
        drop(s);
        let mut series: BTreeMap<Box<str>, Series> = BTreeMap::new();
        let mut sketches: BTreeMap<Box<str>, SketchSeries> = BTreeMap::new();
        for (ts, contexts) in buckets {
            for (key, agg) in contexts {
                match agg {
                    Agg::Sketch(sketch) => sketches
                        .entry(key)
                        .or_insert_with_key(|k| {
                            let (metric, tags) = split_key(k);
                            SketchSeries {
                                metric,
                                tags,
                                points: Vec::new(),
                            }
                        })
                        .points
                        .push(SketchPoint {
                            timestamp: ts,
                            sketch,
                        }),
                    other => {
                        let mut timestamp = ts;
                        if let Agg::Count(_) = other {
                            let last = last_count_ts.entry(key.clone()).or_insert(i64::MIN);
                            timestamp = timestamp.max(last.saturating_add(1));
                            *last = timestamp;
                        }
                        let (kind, value) = match other {
                            Agg::Count(v) => (SeriesType::Count, v),
                            Agg::Gauge(v) => (SeriesType::Gauge, v),
                            Agg::Set(members) => (SeriesType::Gauge, members.len() as f64),
                            Agg::Sketch(_) => continue,
                        };
                        series
                            .entry(key)
                            .or_insert_with_key(|k| new_series(k, kind))
                            .points
                            .push(Point { timestamp, value });
                    }
                }
            }
        }
        for (key, points) in timestamped {
            let kind = if key.starts_with(CLASS_COUNT) {
                SeriesType::Count
            } else {
                SeriesType::Gauge
            };
            let s = series
                .entry(key)
                .or_insert_with_key(|k| new_series(k, kind));
            s.points.extend(points);
            s.points.sort_by_key(|p| p.timestamp);
        }

        self.lock().last_count_ts = last_count_ts;
        let series = chunk(series.into_values(), MAX_SERIES_PER_BATCH)
            .into_iter()
            .map(|series| SeriesBatch { series })
            .collect();
        let sketches = chunk(sketches.into_values(), MAX_SKETCHES_PER_BATCH)
            .into_iter()
            .map(|sketches| SketchBatch { sketches })
            .collect();
        (series, sketches)
    }
}

impl Drain for MetricsAggregator {
    fn drain(&self, _now: SystemTime, _force: bool) -> Vec<Outgoing> {
        let (series, sketches) = self.take();
        series
            .into_iter()
            .map(Outgoing::Series)
            .chain(sketches.into_iter().map(Outgoing::Sketches))
            .collect()
    }
}

/// Unix seconds of `t` (0 before the epoch).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn new_series(key: &str, kind: SeriesType) -> Series {
    let (metric, tags) = split_key(key);
    Series {
        metric,
        kind,
        points: Vec::new(),
        tags,
        interval: (kind == SeriesType::Count).then_some(INTERVAL_SECS),
    }
}

fn split_key(key: &str) -> (String, Vec<String>) {
    let mut parts = key[1..].split(SEP);
    let metric = parts.next().unwrap_or_default().to_owned();
    (metric, parts.map(str::to_owned).collect())
}

/// Appends the tags to `key`, sorted and deduplicated. Up to 32 tags are sorted on the stack,
/// so a line costs no allocation once its context exists.
fn push_sorted_tags<'t>(key: &mut String, tags: impl Iterator<Item = &'t str>) {
    const STACK: usize = 32;
    let mut stack = [""; STACK];
    let mut heap: Vec<&str> = Vec::new();
    let mut n = 0;
    for t in tags {
        if n < STACK {
            stack[n] = t;
        } else {
            if heap.is_empty() {
                heap.extend_from_slice(&stack);
            }
            heap.push(t);
        }
        n += 1;
    }
    let sorted: &mut [&str] = if n <= STACK {
        &mut stack[..n]
    } else {
        &mut heap
    };
    sorted.sort_unstable();
    let mut last = None;
    for t in sorted.iter() {
        if last != Some(*t) {
            key.push(SEP);
            key.push_str(t);
            last = Some(*t);
        }
    }
}

fn chunk<T>(items: impl Iterator<Item = T>, size: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some(last) if last.len() < size => last.push(item),
            _ => out.push(vec![item]),
        }
    }
    out
}

impl State {
    fn add_line(&mut self, m: &MetricLine<'_>, now: i64, max_contexts: usize) -> bool {
        self.add(m, m.tag_iter(), now, max_contexts)
    }

    /// Aggregates `m` with `tags` into the interval holding `ts`. `false` if it was dropped.
    fn add<'t>(
        &mut self,
        m: &MetricLine<'_>,
        tags: impl Iterator<Item = &'t str>,
        ts: i64,
        max_contexts: usize,
    ) -> bool {
        let class = match m.kind {
            MetricKind::Count => CLASS_COUNT,
            MetricKind::Gauge => CLASS_GAUGE,
            MetricKind::Set => CLASS_SET,
            MetricKind::Histogram | MetricKind::Distribution | MetricKind::Timer => CLASS_SKETCH,
        };
        // Build the context key in the reused buffer: class, name, sorted unique tags.
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.push(class);
        key.push_str(m.name);
        push_sorted_tags(&mut key, tags);

        let kept = if let Some(point_ts) = m.timestamp {
            let new = !self.timestamped.contains_key(key.as_str());
            if new && self.contexts >= max_contexts {
                false
            } else {
                if new {
                    self.contexts += 1;
                }
                let points = self.timestamped.entry(key.as_str().into()).or_default();
                for value in m.values() {
                    points.push(Point {
                        timestamp: point_ts,
                        value,
                    });
                }
                true
            }
        } else {
            let bucket = self
                .buckets
                .entry(ts - ts.rem_euclid(INTERVAL_SECS))
                .or_default();
            let agg = match bucket.get_mut(key.as_str()) {
                Some(agg) => Some(agg),
                None if self.contexts >= max_contexts => None,
                None => {
                    self.contexts += 1;
                    let fresh = match class {
                        CLASS_COUNT => Agg::Count(0.0),
                        CLASS_GAUGE => Agg::Gauge(0.0),
                        CLASS_SET => Agg::Set(HashSet::new()),
                        _ => Agg::Sketch(AgentSketch::default()),
                    };
                    Some(bucket.entry(key.as_str().into()).or_insert(fresh))
                }
            };
            match agg {
                None => false,
                Some(agg) => {
                    match agg {
                        Agg::Count(sum) => {
                            *sum += m.values().map(|v| v / m.sample_rate).sum::<f64>();
                        }
                        Agg::Gauge(last) => {
                            if let Some(v) = m.values().last() {
                                *last = v;
                            }
                        }
                        Agg::Set(members) => {
                            for member in m.set_members() {
                                if !members.contains(member) {
                                    members.insert(member.into());
                                }
                            }
                        }
                        Agg::Sketch(sketch) => {
                            // A sampled value stands for 1/rate observations, as in the agent.
                            let weight = (1.0 / m.sample_rate).round().max(1.0) as u32;
                            for v in m.values() {
                                sketch.insert_n(v, weight);
                            }
                        }
                    }
                    true
                }
            }
        };
        self.key = key;
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series_of(agg: &MetricsAggregator) -> (Vec<Series>, Vec<SketchSeries>) {
        let (series, sketches) = agg.take();
        (
            series.into_iter().flat_map(|b| b.series).collect(),
            sketches.into_iter().flat_map(|b| b.sketches).collect(),
        )
    }

    #[test]
    fn counts_gauges_and_sets_aggregate_per_interval() {
        let agg = MetricsAggregator::default();
        let o = agg.insert_datagram(
            b"hits:1|c|#b:2,a:1\nhits:2|c|#a:1,b:2,a:1\nhits:1|c|@0.5|#a:1,b:2\ntemp:3|g\ntemp:5|g\nu:x|s\nu:y:x|s",
            1_700_000_003,
        );
        assert_eq!(o.metrics, 7);
        agg.insert_datagram(b"hits:10|c|#a:1,b:2", 1_700_000_012);
        let (series, sketches) = series_of(&agg);
        assert!(sketches.is_empty());
        let hits = series.iter().find(|s| s.metric == "hits").expect("hits");
        assert_eq!(hits.kind, SeriesType::Count);
        assert_eq!(hits.tags, ["a:1", "b:2"]);
        assert_eq!(hits.interval, Some(10));
        assert_eq!(
            hits.points,
            [
                Point {
                    timestamp: 1_700_000_000,
                    value: 5.0
                },
                Point {
                    timestamp: 1_700_000_010,
                    value: 10.0
                }
            ]
        );
        let temp = series.iter().find(|s| s.metric == "temp").expect("temp");
        assert_eq!((temp.kind, temp.points[0].value), (SeriesType::Gauge, 5.0));
        let users = series.iter().find(|s| s.metric == "u").expect("u");
        assert_eq!(users.points[0].value, 2.0);
        assert!(agg.is_empty());
    }

    #[test]
    fn a_count_flushed_twice_in_one_interval_keeps_both_parts() {
        let agg = MetricsAggregator::default();
        agg.insert_datagram(b"hits:2|c\nlevel:1|g", 1_700_000_001);
        let (first, _) = series_of(&agg);
        agg.insert_datagram(b"hits:3|c\nlevel:4|g", 1_700_000_002);
        agg.insert_datagram(b"hits:4|c", 1_700_000_013);
        let (second, _) = series_of(&agg);
        let points = |series: &[Series], name: &str| {
            series
                .iter()
                .find(|s| s.metric == name)
                .map(|s| {
                    s.points
                        .iter()
                        .map(|p| (p.timestamp, p.value))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        assert_eq!(points(&first, "hits"), [(1_700_000_000, 2.0)]);
        assert_eq!(
            points(&second, "hits"),
            [(1_700_000_001, 3.0), (1_700_000_010, 4.0)]
        );
        // Gauges keep the interval's timestamp: the later value is meant to replace.
        assert_eq!(points(&second, "level"), [(1_700_000_000, 4.0)]);
    }

    #[test]
    fn sketches_take_histograms_timers_distributions_and_packed_values() {
        let agg = MetricsAggregator::default();
        agg.insert_datagram(
            b"lat:1:2:3|d|#x\nlat:4|d|#x\nh:10|h|@0.25\nt:7|ms",
            1_700_000_000,
        );
        let (series, sketches) = series_of(&agg);
        assert!(series.is_empty());
        let lat = sketches.iter().find(|s| s.metric == "lat").expect("lat");
        let s = &lat.points[0].sketch;
        assert_eq!((s.count, s.sum, s.min, s.max), (4, 10.0, 1.0, 4.0));
        let h = &sketches.iter().find(|s| s.metric == "h").expect("h").points[0].sketch;
        assert_eq!((h.count, h.sum), (4, 40.0));
        assert_eq!(sketches.iter().filter(|s| s.metric == "t").count(), 1);
    }

    #[test]
    fn timestamped_points_are_not_aggregated() {
        let agg = MetricsAggregator::default();
        agg.insert_datagram(
            b"q:3|c|T1700000001\nq:4|c|T1700000002\ng:1|g|T1700000005",
            1_700_000_100,
        );
        let (series, _) = series_of(&agg);
        let q = series.iter().find(|s| s.metric == "q").expect("q");
        assert_eq!(q.kind, SeriesType::Count);
        assert_eq!(
            q.points
                .iter()
                .map(|p| (p.timestamp, p.value))
                .collect::<Vec<_>>(),
            [(1_700_000_001, 3.0), (1_700_000_002, 4.0)]
        );
    }

    #[test]
    fn a_malformed_line_is_counted_and_the_rest_kept() {
        let agg = MetricsAggregator::default();
        let o = agg.insert_datagram(
            b"good:1|c\nbad:x|c\n\xff\xfe|c\n_e{1,1}:a|b\n_sc|chk|0\ngood:2|c",
            1_700_000_000,
        );
        assert_eq!(
            o,
            DatagramOutcome {
                metrics: 2,
                events: 1,
                service_checks: 1,
                malformed: 2,
                dropped_contexts: 0
            }
        );
        assert_eq!(agg.counters.malformed.load(Ordering::Relaxed), 2);
        let (series, _) = series_of(&agg);
        assert_eq!(series[0].points[0].value, 3.0);
    }

    #[test]
    fn contexts_beyond_the_cap_are_dropped_and_counted() {
        let agg = MetricsAggregator::new(2);
        let o = agg.insert_datagram(b"a:1|c\nb:1|c\nc:1|c\na:1|c", 1_700_000_000);
        assert_eq!(o.dropped_contexts, 1);
        assert!(!agg.insert_distribution("d", &[], 1.0, 1_700_000_000));
        let (series, _) = series_of(&agg);
        assert_eq!(series.len(), 2);
        // Taking frees the contexts.
        assert!(agg.insert_distribution("d", &["k:v".into()], 1.0, 1_700_000_000));
    }

    #[test]
    fn many_tags_are_sorted_and_deduplicated_too() {
        let agg = MetricsAggregator::default();
        let tags: Vec<String> = (0..40).rev().map(|i| format!("t{i:02}:x")).collect();
        let line = format!("m:1|c|#{},t00:x", tags.join(","));
        agg.insert_datagram(line.as_bytes(), 1_700_000_000);
        let (series, _) = series_of(&agg);
        let mut want: Vec<String> = tags.clone();
        want.sort();
        assert_eq!(series[0].tags, want);
    }

    #[test]
    fn batches_are_cut_at_the_intake_limit() {
        let agg = MetricsAggregator::default();
        let body: Vec<u8> = (0..2500)
            .flat_map(|i| format!("m{i}:1|c\n").into_bytes())
            .collect();
        agg.insert_datagram(&body, 1_700_000_000);
        let (series, _) = agg.take();
        assert_eq!(
            series.iter().map(|b| b.series.len()).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
    }
}
