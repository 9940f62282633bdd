//! The `/api/v2/series` JSON body: the v2 Metrics API's `MetricPayload`.
//!
//! ```json
//! {"series":[{"metric":"a.b","type":1,"points":[{"timestamp":1700000000,"value":3.0}],
//!             "tags":["env:prod"],"interval":10}]}
//! ```
//!
//! `type` is the v2 enum: 0 unspecified, 1 count, 2 rate, 3 gauge.

use serde::Serialize;

/// What a series point means to the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesType {
    Count,
    Rate,
    Gauge,
}

impl Serialize for SeriesType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            Self::Count => 1,
            Self::Rate => 2,
            Self::Gauge => 3,
        })
    }
}

/// One point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Unix seconds.
    pub timestamp: i64,
    pub value: f64,
}

/// One series: a metric name, its tags, and points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub metric: String,
    #[serde(rename = "type")]
    pub kind: SeriesType,
    pub points: Vec<Point>,
    pub tags: Vec<String>,
    /// Seconds the points aggregate over (counts and rates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
}

/// One request's worth of series (at most [`MAX_SERIES_PER_BATCH`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeriesBatch {
    pub series: Vec<Series>,
}

/// bottlecap's per-request cap (`dogstatsd/src/constants.rs`).
pub const MAX_SERIES_PER_BATCH: usize = 1000;

/// The JSON body for `/api/v2/series` (uncompressed; the sink compresses).
pub fn series_json_body(batch: &SeriesBatch) -> Vec<u8> {
    // Serializing plain strings, numbers and vectors cannot fail.
    serde_json::to_vec(batch).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_v2_shape() {
        let batch = SeriesBatch {
            series: vec![Series {
                metric: "a.b".into(),
                kind: SeriesType::Count,
                points: vec![Point {
                    timestamp: 1_700_000_000,
                    value: 3.0,
                }],
                tags: vec!["env:prod".into()],
                interval: Some(10),
            }],
        };
        assert_eq!(
            String::from_utf8(series_json_body(&batch)).unwrap_or_default(),
            r#"{"series":[{"metric":"a.b","type":1,"points":[{"timestamp":1700000000,"value":3.0}],"tags":["env:prod"],"interval":10}]}"#
        );
    }
}
