//! `aws.lambda.enhanced.estimated_cost`: what AWS bills for one invocation's compute.
//!
//! | architecture | price per GB-second (USD) | per request (USD) |
//! |---|---|---|
//! | `x86_64` | 0.0000166667 | 0.0000002 |
//! | `arm64`  | 0.0000133334 | 0.0000002 |
//!
//! Public on-demand prices, first tier, us-east-1 (aws.amazon.com/lambda/pricing), the same
//! table bottlecap uses (`metrics/enhanced/constants.rs`). Volume tiers and other regions'
//! prices are not modelled, as in bottlecap. The result is rounded to 1e-12 like bottlecap's.

/// USD per GB-second on x86_64.
pub const X86_64_GB_SECOND: f64 = 0.000_016_666_7;
/// USD per GB-second on arm64 (Graviton).
pub const ARM64_GB_SECOND: f64 = 0.000_013_333_4;
/// USD per request, both architectures.
pub const PER_REQUEST: f64 = 0.000_000_2;

/// The estimated cost of one invocation billed for `billed_ms` at `memory_mb`.
pub fn estimated_cost(billed_ms: f64, memory_mb: f64, architecture: &str) -> f64 {
    let price = if architecture.eq_ignore_ascii_case("arm64")
        || architecture.eq_ignore_ascii_case("aarch64")
    {
        ARM64_GB_SECOND
    } else {
        X86_64_GB_SECOND
    };
    let gb_seconds = (billed_ms / 1000.0) * (memory_mb / 1024.0);
    let cost = PER_REQUEST + gb_seconds * price;
    (cost * 1e12).round() / 1e12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_at_one_gigabyte() {
        assert_eq!(estimated_cost(1000.0, 1024.0, "x86_64"), 0.000_016_866_7);
        assert_eq!(estimated_cost(1000.0, 1024.0, "arm64"), 0.000_013_533_4);
        // 100 ms at 128 MB: 0.0000002 + 0.1 × 0.125 × 0.0000166667.
        assert_eq!(estimated_cost(100.0, 128.0, "x86_64"), 0.000_000_408_334);
    }
}
