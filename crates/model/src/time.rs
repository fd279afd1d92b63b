//! Timestamps: the platform sends them without a zone (UTC) and, in some
//! variables, with one.

use chrono::{DateTime, NaiveDateTime, Utc};

const NAIVE_FORMATS: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"];

/// Parses `2023-09-01 14:13:32.141788` (UTC) or an RFC 3339 timestamp with a
/// zone, such as `2023-08-29T04:27:48.183000+00:00`.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(zoned) = DateTime::parse_from_rfc3339(text) {
        return Some(zoned.with_timezone(&Utc));
    }
    if let Ok(zoned) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(zoned.with_timezone(&Utc));
    }
    NAIVE_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoneless_timestamp_is_utc() {
        let parsed = parse_timestamp("2023-09-01 14:13:32.141788").unwrap();
        assert_eq!(parsed.to_rfc3339(), "2023-09-01T14:13:32.141788+00:00");
    }

    #[test]
    fn zoned_timestamp_is_converted_to_utc() {
        let parsed = parse_timestamp("2023-08-29T10:27:48.183000+06:00").unwrap();
        assert_eq!(parsed.to_rfc3339(), "2023-08-29T04:27:48.183+00:00");
        let spaced = parse_timestamp("2023-08-29 04:27:48+00:00").unwrap();
        assert_eq!(spaced.to_rfc3339(), "2023-08-29T04:27:48+00:00");
    }

    #[test]
    fn timestamp_without_fraction_parses() {
        assert!(parse_timestamp("2023-09-01T14:13:32").is_some());
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp(""), None);
    }
}
