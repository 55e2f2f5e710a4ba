//! Wall-clock helpers. Everything is UTC; the store keeps unix milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};

/// Unix time in milliseconds, the unit the store uses for every timestamp.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
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
