//! The Datadog agent's DDSketch, bin for bin: what `/api/beta/sketches` expects in a
//! `Dogsketch`.
//!
//! The mapping is the agent's (`datadog-agent/pkg/quantile/config.go`, mirrored by
//! `DataDog/saluki` `lib/ddsketch-agent`): relative accuracy ε = 1/128, so γ = 1 + 2ε =
//! 1.015625; values below 1e-9 in magnitude go to key 0; key(v) = bias +
//! round_half_even(ln v / ln γ), with bias = 1 − floor(ln 1e-9 / ln γ), clamped to
//! [1, i16::MAX]; negative values get the negated key of |v|. At most 4096 bins; when more are needed the lowest ones are merged
//! into one (the agent's `trimLeft`), so high quantiles stay exact to ε.
//!
//! `libdd-ddsketch` is not used: its mapping (the OpenTelemetry/DDSketch-proto logarithmic
//! mapping with an offset) produces different keys, and the intake reads `k` as agent keys.

use std::collections::BTreeMap;

use serde::Serialize;

const EPS: f64 = 1.0 / 128.0;
const MIN_VALUE: f64 = 1.0e-9;
const BIN_LIMIT: usize = 4096;
const MAX_KEY: i32 = i16::MAX as i32;

/// γ = 1 + 2ε.
pub const GAMMA: f64 = 1.0 + 2.0 * EPS;

struct Mapping {
    gamma_ln: f64,
    norm_min: f64,
    bias: i32,
}

fn mapping() -> &'static Mapping {
    static MAPPING: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
    MAPPING.get_or_init(|| {
        let gamma_ln = (2.0 * EPS).ln_1p();
        let bias = -((MIN_VALUE.ln() / gamma_ln).floor() as i32) + 1;
        // The lower bound of key 1: smaller magnitudes map to 0.
        let norm_min = GAMMA.powf(f64::from(1 - bias));
        Mapping {
            gamma_ln,
            norm_min,
            bias,
        }
    })
}

/// The agent key of `v`.
pub fn key(v: f64) -> i16 {
    let m = mapping();
    let a = v.abs();
    if a.is_nan() || a < m.norm_min {
        return 0;
    }
    let k = ((a.ln() / m.gamma_ln).round_ties_even() as i32)
        .saturating_add(m.bias)
        .clamp(1, MAX_KEY) as i16;
    if v < 0.0 { -k } else { k }
}

/// The lower bound of the values key `k` holds (the value the agent reports for the bin).
pub fn lower_bound(k: i16) -> f64 {
    if k < 0 {
        return -lower_bound(-k);
    }
    if k == 0 {
        return 0.0;
    }
    if i32::from(k) == MAX_KEY {
        return f64::INFINITY;
    }
    GAMMA.powf(f64::from(i32::from(k) - mapping().bias))
}

/// An agent sketch: summary statistics plus bins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentSketch {
    /// Number of observations (sample rates applied).
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub avg: f64,
    /// Key → count, ordered by key.
    #[serde(serialize_with = "bins_as_pairs")]
    pub bins: BTreeMap<i16, u32>,
}

fn bins_as_pairs<S: serde::Serializer>(bins: &BTreeMap<i16, u32>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(bins.iter())
}

impl Default for AgentSketch {
    fn default() -> Self {
        Self {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            avg: 0.0,
            bins: BTreeMap::new(),
        }
    }
}

impl AgentSketch {
    /// Adds `v` observed `n` times.
    pub fn insert_n(&mut self, v: f64, n: u32) {
        if n == 0 || !v.is_finite() {
            return;
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.count += u64::from(n);
        self.sum += v * f64::from(n);
        self.avg = self.sum / self.count as f64;
        let bin = self.bins.entry(key(v)).or_default();
        *bin = bin.saturating_add(n);
        if self.bins.len() > BIN_LIMIT {
            self.trim_left();
        }
    }

    /// Adds `v` once.
    pub fn insert(&mut self, v: f64) {
        self.insert_n(v, 1);
    }

    /// Merges `other` into `self`.
    pub fn merge(&mut self, other: &AgentSketch) {
        if other.count == 0 {
            return;
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum += other.sum;
        self.avg = self.sum / self.count as f64;
        for (k, n) in &other.bins {
            let bin = self.bins.entry(*k).or_default();
            *bin = bin.saturating_add(*n);
        }
        while self.bins.len() > BIN_LIMIT {
            self.trim_left();
        }
    }

    /// Folds the lowest bins into one so that at most [`BIN_LIMIT`] remain.
    fn trim_left(&mut self) {
        let excess = self.bins.len() - BIN_LIMIT;
        let lowest: Vec<i16> = self.bins.keys().take(excess + 1).copied().collect();
        let Some((&keep, folded)) = lowest.split_last() else {
            return;
        };
        let mut moved = 0u32;
        for k in folded {
            moved = moved.saturating_add(self.bins.remove(k).unwrap_or(0));
        }
        if let Some(n) = self.bins.get_mut(&keep) {
            *n = n.saturating_add(moved);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `q` quantile as the agent computes it: the lower bound of the bin holding rank
    /// `q·(count−1)`, clamped to [min, max].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        if q <= 0.0 {
            return Some(self.min);
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        let rank = q * (self.count - 1) as f64;
        let mut seen = 0u64;
        for (k, n) in &self.bins {
            seen += u64::from(*n);
            if seen as f64 > rank {
                return Some(lower_bound(*k).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_agent_mapping() {
        // bias = 1 − floor(ln 1e-9 / ln 1.015625) = 1 − (−1337) = 1338.
        assert_eq!(mapping().bias, 1338);
        assert_eq!(key(0.0), 0);
        assert_eq!(key(1e-10), 0);
        assert_eq!(key(1.0), 1338);
        assert_eq!(key(-1.0), -1338);
        // ln(100)/ln(1.015625) = 297.03 → 297.
        assert_eq!(key(100.0), 1338 + 297);
        // Every bin's lower bound maps back to the bin, within ±1 for the rounding edge.
        for k in [1i16, 100, 1338, 2000, 3000] {
            let back = key(lower_bound(k) * 1.000_000_1);
            assert!((back - k).abs() <= 1, "{k} -> {back}");
        }
    }

    #[test]
    fn values_land_within_the_relative_accuracy() {
        let mut s = AgentSketch::default();
        for v in 1..=1000 {
            s.insert(f64::from(v));
        }
        assert_eq!(s.count, 1000);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 1000.0);
        assert_eq!(s.sum, 500_500.0);
        for (q, exact) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = s.quantile(q).unwrap_or_default();
            assert!(
                (got - exact).abs() / exact < 2.0 * EPS + 1e-3,
                "q{q}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn weights_and_merge_add_up() {
        let mut a = AgentSketch::default();
        a.insert_n(2.0, 4);
        let mut b = AgentSketch::default();
        b.insert(-3.0);
        a.merge(&b);
        assert_eq!(a.count, 5);
        assert_eq!(a.sum, 5.0);
        assert_eq!(a.avg, 1.0);
        assert_eq!(a.min, -3.0);
        assert_eq!(a.bins.get(&key(2.0)), Some(&4));
        assert_eq!(a.bins.get(&key(-3.0)), Some(&1));
    }

    #[test]
    fn bins_are_capped_by_folding_the_lowest() {
        let mut s = AgentSketch::default();
        let mut v = 1e-8;
        while s.bins.len() < BIN_LIMIT {
            s.insert(v);
            v *= GAMMA;
        }
        let total = s.count;
        s.insert(v * GAMMA * GAMMA);
        assert_eq!(s.bins.len(), BIN_LIMIT);
        assert_eq!(
            s.bins.values().map(|n| u64::from(*n)).sum::<u64>(),
            total + 1
        );
    }
}
