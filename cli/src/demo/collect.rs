//! Reads what the extensions flushed: the local sink's JSON lines (`DDLAMBDA_LOCAL_OUTPUT`),
//! `traces` lines into spans and `pipeline_stats` lines into pathway points. Other lines
//! (metrics) are skipped; a line that is not what its kind promises is counted, not fatal.

use std::path::Path;

use ddlambda_wire::Span;
use serde::Deserialize;
use serde_json::Value;

use super::DemoError;

/// A sketch as the local sink prints it: count and quantiles.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Summary {
    pub count: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// One data-streams point of one bucket.
#[derive(Debug, Clone, Deserialize)]
pub struct Point {
    pub edge_tags: Vec<String>,
    pub hash: u64,
    pub parent_hash: u64,
    /// Seconds.
    pub pathway_latency: Summary,
    /// Seconds.
    pub edge_latency: Summary,
    /// Bytes.
    pub payload_size: Summary,
}

#[derive(Deserialize)]
struct Stats {
    service: String,
    env: String,
    buckets: Vec<Bucket>,
}

#[derive(Deserialize)]
struct Bucket {
    points: Vec<Point>,
}

/// A point with the service and env of its payload.
#[derive(Debug, Clone)]
pub struct ServicePoint {
    pub service: String,
    pub env: String,
    pub point: Point,
}

/// Everything read from the sink files.
#[derive(Debug, Default)]
pub struct Collected {
    pub spans: Vec<Span>,
    pub points: Vec<ServicePoint>,
    /// Lines that did not decode, with where they were.
    pub bad_lines: Vec<String>,
}

impl Collected {
    /// Adds the lines of one sink file; a missing file adds nothing (that extension flushed
    /// nothing).
    pub fn read(&mut self, path: &Path) -> Result<(), DemoError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(DemoError::Io(format!("reading {}: {e}", path.display()))),
        };
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            if let Err(e) = self.line(line) {
                self.bad_lines
                    .push(format!("{}:{}: {e}", path.display(), n + 1));
            }
        }
        Ok(())
    }

    fn line(&mut self, line: &str) -> Result<(), serde_json::Error> {
        let mut v: Value = serde_json::from_str(line)?;
        match v.get("ddlambda").and_then(Value::as_str) {
            Some("traces") => {
                let traces: Vec<Vec<Span>> = serde_json::from_value(v["traces"].take())?;
                self.spans.extend(traces.into_iter().flatten());
            }
            Some("pipeline_stats") => {
                let stats: Stats = serde_json::from_value(v["payload"].take())?;
                for b in stats.buckets {
                    self.points
                        .extend(b.points.into_iter().map(|point| ServicePoint {
                            service: stats.service.clone(),
                            env: stats.env.clone(),
                            point,
                        }));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
