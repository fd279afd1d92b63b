//! Durations written like `10m`, `1h30m`, `45s`, `2d`.

use std::time::Duration;

/// Why a text is not a duration (the message names the text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("{0:?} is not a duration: use e.g. 30s, 10m, 1h30m, 2d")]
    UnknownUnit(String),
    #[error("{text:?} is not a duration: a number must come before {unit:?}")]
    NoNumber { text: String, unit: char },
    #[error("{0:?} is too long a duration")]
    TooLong(String),
    #[error("{text:?} is not a duration: {number} needs a unit (s, m, h, d)")]
    NoUnit { text: String, number: String },
}

/// Parses `90s`, `10m`, `1h30m`, `2d`. Units: s, m, h, d.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(DurationError::UnknownUnit(text.to_owned())),
        };
        if number.is_empty() {
            return Err(DurationError::NoNumber {
                text: text.to_owned(),
                unit: c,
            });
        }
        let too_long = || DurationError::TooLong(text.to_owned());
        let value: u64 = number.parse().map_err(|_| too_long())?;
        total = value
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(too_long)?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(DurationError::NoUnit {
            text: text.to_owned(),
            number,
        });
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn huge_durations_are_errors_not_wrapped_or_saturated() {
        for huge in [
            "100000000000000000000d",
            "213503982334602d",
            "18446744073709551615s1s",
        ] {
            let error = parse_duration(huge).unwrap_err();
            assert!(error.to_string().contains("too long"), "{huge}: {error}");
        }
        assert_eq!(
            parse_duration("100000000d"),
            Ok(Duration::from_secs(8_640_000_000_000))
        );
    }
}
