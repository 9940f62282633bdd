//! Aggregated DogStatsD and enhanced metrics → `ExportMetricsServiceRequest`
//! (`POST /v1/metrics`).
//!
//! - a count series → a `Sum`, DELTA temporality, not monotonic (DogStatsD counters may be
//!   decremented); each point covers `[timestamp, timestamp + interval)`;
//! - a gauge (sets are counted as gauges upstream) → a `Gauge` at the point's timestamp; a rate
//!   → a `Gauge` of the per-second value (OTLP has no rate type);
//! - a distribution (an agent DDSketch per interval) → an `ExponentialHistogram`, DELTA: count,
//!   sum, min, max, zero bucket and buckets survive, so a backend can merge it and compute any
//!   quantile, as Datadog's own OTLP intake does when it turns exponential histograms back into
//!   sketches. A `Summary` would carry a few fixed quantiles and nothing mergeable.
//!
//! The sketch's bins (γ = 1.015625) do not line up with exponential buckets (base 2^2^−scale),
//! so each bin's count goes to the bucket holding the bin's value (the geometric middle of the
//! bin, `sketch::lower_bound`). At scale 6 (base ≈ 1.0109) a value read back from its bucket is
//! within about 1.3 % of the observation (the sketch's 0.78 % plus half a bucket); the scale is
//! lowered only when the values span more than [`MAX_BUCKETS`] buckets.
//!
//! Tags become data-point attributes (`key:value`; a bare tag is a key with an empty value; a
//! key given several values, which DogStatsD allows, becomes an array of strings). Series are
//! grouped by resource (`resource::attributes` of their tags) and, under it, by name and type.

use super::proto::{Writer, common};
use super::resource;
use crate::aggregate::metrics::INTERVAL_SECS;
use crate::aggregate::metrics::series::{Series, SeriesBatch, SeriesType};
use crate::aggregate::metrics::sketch::{self, AgentSketch};
use crate::aggregate::metrics::sketches::{SketchBatch, SketchSeries};

/// The instrumentation scope of translated DogStatsD metrics.
pub const SCOPE: &str = "Datadog";
/// The scale exponential histograms start at.
pub const SCALE: i32 = 6;
/// Most buckets per sign before the scale is lowered (the agent sketch's own bin limit).
pub const MAX_BUCKETS: usize = 4096;

const NANOS: u64 = 1_000_000_000;
/// `AGGREGATION_TEMPORALITY_DELTA`.
const DELTA: u64 = 1;

/// Encodes series as the protobuf body of `POST /v1/metrics` (before compression).
pub fn encode_series(batch: &SeriesBatch) -> Vec<u8> {
    encode(
        &batch.series,
        |s| (&s.metric, &s.tags, kind_code(s.kind)),
        put_series,
    )
}

/// Encodes distributions as the protobuf body of `POST /v1/metrics` (before compression).
pub fn encode_sketches(batch: &SketchBatch) -> Vec<u8> {
    encode(&batch.sketches, |s| (&s.metric, &s.tags, 0), put_sketches)
}

fn kind_code(kind: SeriesType) -> u8 {
    match kind {
        SeriesType::Count => 1,
        SeriesType::Rate => 2,
        SeriesType::Gauge => 3,
    }
}

/// Groups `items` by resource, then by (name, kind), and writes each metric with `put`.
fn encode<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> (&'a String, &'a Vec<String>, u8),
    put: impl Fn(&mut Writer, &[&'a T]),
) -> Vec<u8> {
    type Metrics<'a, T> = Vec<((&'a str, u8), Vec<&'a T>)>;
    let mut groups: Vec<(resource::Attributes<'a>, Metrics<'a, T>)> = Vec::new();
    for item in items {
        let (name, tags, kind) = key(item);
        let lookup = |k: &str| tag_value(tags, k);
        let attrs = resource::attributes(lookup("service"), lookup);
        let at = match groups.iter().position(|(a, _)| *a == attrs) {
            Some(at) => at,
            None => {
                groups.push((attrs, Vec::new()));
                groups.len() - 1
            }
        };
        let metrics = &mut groups[at].1;
        let id = (name.as_str(), kind);
        match metrics.iter_mut().find(|(k, _)| *k == id) {
            Some((_, members)) => members.push(item),
            None => metrics.push((id, vec![item])),
        }
    }
    let mut w = Writer::with_capacity(256 * items.len().max(1));
    for (attrs, metrics) in &groups {
        // ExportMetricsServiceRequest.resource_metrics
        w.message(1, |w| {
            resource::put(w, 1, attrs, &[("telemetry.sdk.name", "datadog")]);
            // ResourceMetrics.scope_metrics
            w.message(2, |w| {
                common::scope(w, 1, SCOPE, "");
                for ((name, _), members) in metrics {
                    // ScopeMetrics.metrics
                    w.message(2, |w| {
                        w.string(1, name);
                        put(w, members);
                    });
                }
            });
        });
    }
    w.into_bytes()
}

/// The first value of tag `key` in `k:v` tags.
fn tag_value<'a>(tags: &'a [String], key: &str) -> Option<&'a str> {
    tags.iter().find_map(|t| {
        let (k, v) = t.split_once(':')?;
        (k == key).then_some(v)
    })
}

/// Tags as data-point attributes in field `tag`: one per key, an array for a repeated key.
fn put_tags<'a>(w: &mut Writer, tag: u32, tags: &'a [String]) {
    let split = |t: &'a String| split_tag(t);
    for (i, t) in tags.iter().enumerate() {
        let (key, value) = split(t);
        if tags[..i].iter().any(|p| split(p).0 == key) {
            continue; // written with its first occurrence
        }
        let repeated = tags[i + 1..].iter().any(|n| split(n).0 == key);
        if repeated {
            let values = tags[i..]
                .iter()
                .map(split)
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v);
            common::kv_str_array(w, tag, key, values);
        } else {
            common::kv_str(w, tag, key, value);
        }
    }
}

/// `key:value` → (key, value); a bare tag is a key with an empty value.
fn split_tag(t: &str) -> (&str, &str) {
    t.split_once(':').unwrap_or((t, ""))
}

fn nanos(unix_secs: i64) -> u64 {
    (unix_secs.max(0) as u64).saturating_mul(NANOS)
}

/// Writes one metric's data: all members share name and type.
fn put_series(w: &mut Writer, members: &[&Series]) {
    let Some(first) = members.first() else {
        return;
    };
    let points = |w: &mut Writer| {
        for s in members {
            for p in &s.points {
                // NumberDataPoint, in Gauge/Sum.data_points
                w.message(1, |w| {
                    put_tags(w, 7, &s.tags);
                    if s.kind == SeriesType::Count {
                        let interval = s.interval.unwrap_or(INTERVAL_SECS);
                        w.fixed64(2, nanos(p.timestamp));
                        w.fixed64(3, nanos(p.timestamp.saturating_add(interval)));
                    } else {
                        w.fixed64(3, nanos(p.timestamp));
                    }
                    w.double_always(4, p.value);
                });
            }
        }
    };
    match first.kind {
        // Metric.sum
        SeriesType::Count => w.message(7, |w| {
            points(w);
            w.varint(2, DELTA);
        }),
        // Metric.gauge
        SeriesType::Gauge | SeriesType::Rate => w.message(5, points),
    }
}

/// Writes one distribution metric: `Metric.exponential_histogram`, DELTA.
fn put_sketches(w: &mut Writer, members: &[&SketchSeries]) {
    w.message(10, |w| {
        for s in members {
            for p in &s.points {
                // ExponentialHistogramDataPoint
                w.message(1, |w| {
                    put_tags(w, 1, &s.tags);
                    w.fixed64(2, nanos(p.timestamp));
                    w.fixed64(3, nanos(p.timestamp.saturating_add(INTERVAL_SECS)));
                    put_histogram(w, &p.sketch);
                });
            }
        }
        w.varint(2, DELTA);
    });
}

/// The exponential-histogram form of an agent sketch.
#[derive(Debug, Clone, PartialEq)]
pub struct Exponential {
    pub scale: i32,
    pub zero_count: u64,
    /// (offset, counts) for positive and negative values.
    pub positive: (i32, Vec<u64>),
    pub negative: (i32, Vec<u64>),
}

/// The bucket index of `v > 0` at `scale`: bucket `i` holds `(base^i, base^(i+1)]`.
fn bucket_index(v: f64, scale: i32) -> i64 {
    (v.log2() * 2f64.powi(scale)).ceil() as i64 - 1
}

/// Re-buckets the sketch's bins (see the module comment).
pub fn exponential(sketch: &AgentSketch) -> Exponential {
    let mut zero_count = 0u64;
    let mut pos: Vec<(i64, u64)> = Vec::new();
    let mut neg: Vec<(i64, u64)> = Vec::new();
    for (&k, &n) in &sketch.bins {
        if k == 0 {
            zero_count += u64::from(n);
            continue;
        }
        // The last key holds everything above the mapping's range: its bound is infinite.
        let v = sketch::lower_bound(k.saturating_abs()).min(f64::MAX);
        let side = if k > 0 { &mut pos } else { &mut neg };
        side.push((bucket_index(v, SCALE), u64::from(n)));
    }
    let span = |side: &[(i64, u64)], shift: i32| match (side.first(), side.last()) {
        (Some(lo), Some(hi)) => ((hi.0 >> shift) - (lo.0 >> shift)) as usize + 1,
        _ => 0,
    };
    // Bins come in key order, so each side's indices are sorted (negative keys descend in
    // magnitude: reverse them).
    neg.reverse();
    let mut shift = 0;
    while span(&pos, shift) > MAX_BUCKETS || span(&neg, shift) > MAX_BUCKETS {
        shift += 1;
    }
    let dense = |side: &[(i64, u64)]| -> (i32, Vec<u64>) {
        let Some(first) = side.first() else {
            return (0, Vec::new());
        };
        let offset = first.0 >> shift;
        let mut counts = vec![0u64; span(side, shift)];
        for (i, n) in side {
            counts[((i >> shift) - offset) as usize] += n;
        }
        (offset as i32, counts)
    };
    Exponential {
        scale: SCALE - shift,
        zero_count,
        positive: dense(&pos),
        negative: dense(&neg),
    }
}

fn put_histogram(w: &mut Writer, sketch: &AgentSketch) {
    let e = exponential(sketch);
    let count = e.zero_count + e.positive.1.iter().sum::<u64>() + e.negative.1.iter().sum::<u64>();
    w.fixed64(4, count);
    w.double_always(5, sketch.sum);
    w.sint32(6, e.scale);
    w.fixed64(7, e.zero_count);
    for (tag, (offset, counts)) in [(8, &e.positive), (9, &e.negative)] {
        if !counts.is_empty() {
            w.message(tag, |w| {
                w.sint32(1, *offset);
                w.packed_varints(2, counts);
            });
        }
    }
    if count > 0 {
        w.double_always(12, sketch.min);
        w.double_always(13, sketch.max);
    }
    // Magnitudes below the sketch's smallest bin count as zero.
    w.double(14, sketch::lower_bound(1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::metrics::series::Point;
    use crate::aggregate::metrics::sketches::SketchPoint;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
    use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric::Data};
    use prost::Message;

    fn text<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
        attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            }
        })
    }

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn counts_are_delta_sums_and_gauges_are_gauges() {
        let fn_tags = ["functionname:my-fn", "region:eu-west-1", "service:svc"];
        let mut count_tags = tags(&fn_tags);
        count_tags.extend(tags(&["team:a", "team:b", "bare"]));
        let batch = SeriesBatch {
            series: vec![
                Series {
                    metric: "orders.placed".into(),
                    kind: SeriesType::Count,
                    points: vec![Point {
                        timestamp: 1_700_000_000,
                        value: 3.0,
                    }],
                    tags: count_tags,
                    interval: Some(10),
                },
                Series {
                    metric: "queue.depth".into(),
                    kind: SeriesType::Gauge,
                    points: vec![Point {
                        timestamp: 1_700_000_010,
                        value: 0.0,
                    }],
                    tags: tags(&fn_tags),
                    interval: None,
                },
                Series {
                    metric: "queue.depth".into(),
                    kind: SeriesType::Gauge,
                    points: vec![Point {
                        timestamp: 1_700_000_010,
                        value: 7.5,
                    }],
                    tags: tags(&fn_tags[..2]),
                    interval: None,
                },
            ],
        };
        let req = ExportMetricsServiceRequest::decode(&encode_series(&batch)[..]).unwrap();
        // The series without a service tag is another resource.
        assert_eq!(req.resource_metrics.len(), 2);
        let rm = &req.resource_metrics[0];
        let res = &rm.resource.as_ref().unwrap().attributes;
        assert_eq!(text(res, "service.name"), Some("svc"));
        assert_eq!(text(res, "faas.name"), Some("my-fn"));
        let metrics = &rm.scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 2);
        let Some(Data::Sum(sum)) = &metrics[0].data else {
            panic!("{:?}", metrics[0])
        };
        assert_eq!(metrics[0].name, "orders.placed");
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        assert!(!sum.is_monotonic);
        let p = &sum.data_points[0];
        assert_eq!(p.start_time_unix_nano, 1_700_000_000 * NANOS);
        assert_eq!(p.time_unix_nano, 1_700_000_010 * NANOS);
        assert_eq!(p.value, Some(Number::AsDouble(3.0)));
        assert_eq!(text(&p.attributes, "bare"), Some(""));
        let team = p.attributes.iter().find(|kv| kv.key == "team").unwrap();
        let Some(Value::ArrayValue(values)) = team.value.as_ref().unwrap().value.as_ref() else {
            panic!("{team:?}")
        };
        let values: Vec<_> = values
            .values
            .iter()
            .map(|v| v.value.clone().unwrap())
            .collect();
        assert_eq!(
            values,
            [
                Value::StringValue("a".into()),
                Value::StringValue("b".into())
            ]
        );
        assert_eq!(p.attributes.iter().filter(|kv| kv.key == "team").count(), 1);

        let Some(Data::Gauge(gauge)) = &metrics[1].data else {
            panic!("{:?}", metrics[1])
        };
        let p = &gauge.data_points[0];
        assert_eq!(
            p.value,
            Some(Number::AsDouble(0.0)),
            "a zero is still a value"
        );
        assert_eq!(p.time_unix_nano, 1_700_000_010 * NANOS);
        assert_eq!(p.start_time_unix_nano, 0);
    }

    fn sketch(values: &[f64]) -> AgentSketch {
        let mut s = AgentSketch::default();
        for v in values {
            s.insert(*v);
        }
        s
    }

    /// The value a reader takes for bucket `i`: its geometric middle.
    fn bucket_value(i: i64, scale: i32) -> f64 {
        2f64.powf((i as f64 + 0.5) / 2f64.powi(scale))
    }

    #[test]
    fn distributions_become_exponential_histograms_within_accuracy() {
        let values: Vec<f64> = (1..=500).map(|i| f64::from(i) * 0.37).collect();
        let mut with_signs = values.clone();
        with_signs.extend([0.0, -2.5, -2.5, -100.0]);
        let s = sketch(&with_signs);
        let batch = SketchBatch {
            sketches: vec![SketchSeries {
                metric: "latency".into(),
                tags: tags(&["functionname:f"]),
                points: vec![SketchPoint {
                    timestamp: 1_700_000_000,
                    sketch: s.clone(),
                }],
            }],
        };
        let req = ExportMetricsServiceRequest::decode(&encode_sketches(&batch)[..]).unwrap();
        let m = &req.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(Data::ExponentialHistogram(h)) = &m.data else {
            panic!("{m:?}")
        };
        assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        let p = &h.data_points[0];
        assert_eq!(p.count, 504);
        assert_eq!(p.zero_count, 1);
        assert_eq!(p.scale, SCALE);
        assert_eq!(p.sum, Some(s.sum));
        assert_eq!((p.min, p.max), (Some(-100.0), Some(500.0 * 0.37)));
        let pos = p.positive.as_ref().unwrap();
        let neg = p.negative.as_ref().unwrap();
        assert_eq!(pos.bucket_counts.iter().sum::<u64>(), 500);
        assert_eq!(neg.bucket_counts.iter().sum::<u64>(), 3);

        // Every observation is read back, from its bucket, within 1.3 %: the k-th smallest
        // bucket value against the k-th smallest observation.
        let mut read_back = Vec::new();
        for (j, n) in pos.bucket_counts.iter().enumerate() {
            let v = bucket_value(i64::from(pos.offset) + j as i64, p.scale);
            read_back.extend(std::iter::repeat_n(v, *n as usize));
        }
        for (want, got) in values.iter().zip(&read_back) {
            assert!(
                (got - want).abs() / want < 0.013,
                "{want} read back as {got}"
            );
        }
        let negs: Vec<f64> = neg
            .bucket_counts
            .iter()
            .enumerate()
            .flat_map(|(j, n)| {
                let v = bucket_value(i64::from(neg.offset) + j as i64, p.scale);
                std::iter::repeat_n(v, *n as usize)
            })
            .collect();
        for (want, got) in [2.5, 2.5, 100.0].iter().zip(&negs) {
            assert!(
                (got - want).abs() / want < 0.013,
                "-{want} read back as -{got}"
            );
        }
    }

    #[test]
    fn a_wide_range_lowers_the_scale_instead_of_growing_without_bound() {
        let s = sketch(&[1e-8, 1.0, 1e15]);
        let e = exponential(&s);
        assert!(e.scale < SCALE);
        assert!(e.positive.1.len() <= MAX_BUCKETS);
        assert_eq!(e.positive.1.iter().sum::<u64>(), 3);
        assert_eq!(
            exponential(&AgentSketch::default()).positive.1,
            Vec::<u64>::new()
        );
    }
}
