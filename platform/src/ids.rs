//! Identifiers and timestamps in the shapes Lambda uses.

use std::time::{SystemTime, UNIX_EPOCH};

/// A random UUID v4 string, the shape of Lambda's request and extension ids.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A fresh X-Ray header as Lambda passes it when tracing is not active (`Sampled=0`).
pub fn xray_header(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let root_rand = fastrand::u128(..) & ((1u128 << 96) - 1);
    format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        secs as u32,
        root_rand,
        fastrand::u64(1..)
    )
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub use ddlambda_wire::time::rfc3339_ms;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn uuid_has_v4_shape() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, uuid_v4());
    }

    #[test]
    fn xray_header_parses_back() {
        let h = xray_header(UNIX_EPOCH + Duration::from_secs(0x5759e988));
        assert!(h.starts_with("Root=1-5759e988-"), "{h}");
        assert!(h.ends_with(";Sampled=0"));
        assert_eq!(h.split(';').count(), 3);
    }
}
