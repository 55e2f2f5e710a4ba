//! Wall-clock helpers. Everything is UTC; the store keeps unix milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// How far the region's clock runs ahead of the machine's, in ms: always 0 except in a test
/// region started with `--test-clock-file`, whose tests move time forward instead of sleeping
/// (token and link expiry, cache lifetimes). Every expiry decision reads [`now_millis`]/[`now`].
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Unix time in milliseconds, the unit the store uses for every timestamp.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis() + OFFSET_MS.load(Ordering::Relaxed)
}

/// The region's current time.
pub fn now() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds(OFFSET_MS.load(Ordering::Relaxed))
}

/// Moves the region's clock to `offset_ms` ahead of the machine's (test regions only).
pub fn set_offset_ms(offset_ms: i64) {
    OFFSET_MS.store(offset_ms, Ordering::Relaxed);
}

/// ISO 8601 with seconds and `Z`, the form Alibaba's RPC APIs return (`2024-01-01T12:00:00Z`).
pub fn iso8601(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses the `Timestamp` / `x-acs-date` forms the SDKs send. Alibaba documents
/// `YYYY-MM-DDThh:mm:ssZ`; we also accept fractional seconds and explicit offsets.
pub fn parse_iso8601(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_wire_format() {
        let t = parse_iso8601("2024-01-01T12:00:00Z").expect("parses");
        assert_eq!(iso8601(t.timestamp_millis()), "2024-01-01T12:00:00Z");
        assert!(parse_iso8601("2024-01-01 12:00:00").is_none());
        assert!(parse_iso8601("").is_none());
    }
}
