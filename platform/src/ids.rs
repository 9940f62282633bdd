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

/// RFC 3339 with milliseconds in UTC (`2022-10-12T00:00:15.064Z`), the Telemetry API's `time`.
pub fn rfc3339_ms(t: SystemTime) -> String {
    let ms = epoch_ms(t);
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, sod) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_665_532_815_064);
        assert_eq!(rfc3339_ms(t), "2022-10-12T00:00:15.064Z");
        assert_eq!(rfc3339_ms(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_ms(leap), "2000-02-29T00:00:00.000Z");
    }

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
