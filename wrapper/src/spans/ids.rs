//! Span and trace ids: random, non-zero, cheap.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    // SplitMix64 state, seeded per thread from the OS-randomised `RandomState` keys: ids need
    // to be unpredictable across sandboxes, not cryptographic, and this costs a few ns.
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(now_ns() as u128);
    hasher.finish()
}

/// A random non-zero 64-bit id (span ids, low halves of trace ids).
pub fn random_id() -> u64 {
    STATE.with(|state| {
        loop {
            let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(next);
            let mut z = next;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            if z != 0 {
                return z;
            }
        }
    })
}

/// A new 128-bit trace id as Datadog's tracers make them: `(high, low)` where the high half
/// is the epoch seconds in its top 32 bits and zeros below, the low half random.
pub fn new_trace_id() -> (u64, u64) {
    let secs = now_ns() / 1_000_000_000;
    ((secs as u64 & 0xFFFF_FFFF) << 32, random_id())
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_non_zero_and_distinct() {
        let ids: std::collections::HashSet<u64> = (0..10_000).map(|_| random_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(!ids.contains(&0));
    }

    #[test]
    fn trace_id_high_half_is_epoch_seconds() {
        let (high, low) = new_trace_id();
        assert_ne!(low, 0);
        assert_eq!(high & 0xFFFF_FFFF, 0);
        let secs = (high >> 32) as i64;
        assert!((now_ns() / 1_000_000_000 - secs).abs() < 5);
    }
}
