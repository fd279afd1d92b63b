//! Query parameters of the admin API: declared once per route (the same
//! table documents them in the OpenAPI document), validated with errors
//! that name the parameter.

use std::collections::HashMap;

use actix_web::{web, HttpRequest};
use chrono::{DateTime, NaiveDateTime, SubsecRound};

use crate::error::ApiError;

/// What a parameter holds.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Text,
    /// Text to search for: it must hold a word (a letter or digit).
    Words,
    Integer,
    /// An RFC 3339 timestamp.
    Time,
    /// 1..=500, default 50.
    Limit,
    /// An opaque paging cursor from `next_cursor`, of what it holds.
    Cursor(CursorKind),
    /// One of the listed values.
    OneOf(&'static [&'static str]),
}

/// What a cursor encodes (hex of the text), so that the OpenAPI document
/// can say which cursors the server reads.
#[derive(Clone, Copy, Debug)]
pub enum CursorKind {
    /// `micros:id` (events).
    TimeAndId,
    /// `micros:key` (conversations).
    TimeAndKey,
    /// `id` (notifications).
    Id,
}

/// The pattern of a text value: not blank (it has a character that is not
/// ASCII white space: values are trimmed of it, and a blank one is
/// refused), and no NUL character (PostgreSQL cannot hold one, so no stored
/// text has it; such a value is refused by name).
pub const NON_BLANK: &str = "^[^\\u0000]*[^\\u0000 \\t\\n\\f\\r][^\\u0000]*$";

/// The pattern of a search text ([`Kind::Words`]): it holds a letter or
/// digit (`[^\W_]`, in the Unicode sense of the tools that read the
/// document), and no NUL character.
pub const WORDS: &str = "^[^\\u0000]*[^\\W_][^\\u0000]*$";

/// The longest cursor read, in hex digits.
pub const MAX_CURSOR_HEX: usize = 1024;

/// `text` without leading and trailing ASCII white space (the white space
/// [`NON_BLANK`] names).
pub fn trim_ascii(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub description: &'static str,
}

pub const fn param(name: &'static str, kind: Kind, description: &'static str) -> Param {
    Param {
        name,
        kind,
        description,
    }
}

pub const LIMIT: Param = param(
    "limit",
    Kind::Limit,
    "Items per page, 1 to 500 (default 50).",
);
/// The `cursor` parameter of a list whose cursors hold `kind`.
pub const fn cursor(kind: CursorKind) -> Param {
    param(
        "cursor",
        Kind::Cursor(kind),
        "The next_cursor of the previous page (opaque).",
    )
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// The validated query of one request.
pub struct Query {
    values: HashMap<String, String>,
}

fn bad(name: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "invalid_parameter",
        format!("parameter {name:?}: {message}"),
    )
}

impl Query {
    /// Reads the query string; unknown parameters and malformed values are
    /// `400` naming the parameter.
    pub fn parse(req: &HttpRequest, declared: &[Param]) -> Result<Query, ApiError> {
        Query::parse_str(req.query_string(), declared)
    }

    pub fn parse_str(query: &str, declared: &[Param]) -> Result<Query, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("the query string is malformed: {e}"),
                )
            })?
            .into_inner();
        let mut values = HashMap::new();
        for (name, value) in pairs {
            let Some(spec) = declared.iter().find(|p| p.name == name) else {
                let known: Vec<&str> = declared.iter().map(|p| p.name).collect();
                return Err(bad(
                    &name,
                    format!("unknown parameter; this route takes {}", known.join(", ")),
                ));
            };
            let value = trim_ascii(&value).to_owned();
            // The pages drop the empty fields a GET form sends before they
            // get here (`nonempty_query`); an API caller sending `until=` has
            // made a mistake worth naming.
            if value.is_empty() {
                return Err(bad(
                    &name,
                    "is empty; leave the parameter out instead".to_owned(),
                ));
            }
            if value.contains('\0') {
                return Err(bad(
                    &name,
                    "contains a NUL character, which no stored text holds".to_owned(),
                ));
            }
            check(spec, &value)?;
            values.insert(name, value);
        }
        Ok(Query { values })
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    pub fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.values
            .get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| bad(name, format!("{v:?} is not an integer")))
            })
            .transpose()
    }

    pub fn time(&self, name: &str) -> Result<Option<NaiveDateTime>, ApiError> {
        self.values
            .get(name)
            .map(|v| parse_time(name, v))
            .transpose()
    }

    pub fn limit(&self) -> Result<i64, ApiError> {
        Ok(self.integer("limit")?.unwrap_or(DEFAULT_LIMIT))
    }

    /// The cursor's decoded text.
    pub fn cursor(&self) -> Result<Option<String>, ApiError> {
        self.values
            .get("cursor")
            .map(|c| {
                decode_cursor(c).ok_or_else(|| bad("cursor", "not a cursor this API gave out"))
            })
            .transpose()
    }
}

fn parse_time(name: &str, value: &str) -> Result<NaiveDateTime, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.naive_utc().trunc_subsecs(6))
        .map_err(|_| {
            bad(
                name,
                format!("{value:?} is not an RFC 3339 time such as 2023-09-01T14:13:32Z"),
            )
        })
}

fn check(spec: &Param, value: &str) -> Result<(), ApiError> {
    match spec.kind {
        Kind::Text | Kind::Cursor(_) => Ok(()),
        // Only words are indexed: anything else would read every event.
        Kind::Words if hookline_storage::search::words(value).is_empty() => Err(bad(
            spec.name,
            "needs a letter or digit (the search finds words)".to_owned(),
        )),
        Kind::Words => Ok(()),
        Kind::Integer => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| bad(spec.name, format!("{value:?} is not an integer"))),
        Kind::Time => parse_time(spec.name, value).map(|_| ()),
        Kind::Limit => match value.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(()),
            _ => Err(bad(
                spec.name,
                format!("{value:?} is not a number from 1 to {MAX_LIMIT}"),
            )),
        },
        Kind::OneOf(allowed) => {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(bad(
                    spec.name,
                    format!("{value:?} is not one of {}", allowed.join(", ")),
                ))
            }
        }
    }
}

/// Cursors are opaque to clients: hex of what the keyset needs.
pub fn encode_cursor(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) || hex.len() > MAX_CURSOR_HEX {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    // Cursors this API gives out hold no NUL (no stored text does).
    String::from_utf8(bytes?)
        .ok()
        .filter(|text| !text.contains('\0'))
}

/// `(time, rest)` from a `micros:rest` cursor.
pub fn split_time_cursor(text: &str) -> Option<(NaiveDateTime, &str)> {
    let (micros, rest) = text.split_once(':')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    Some((at, rest))
}

pub fn time_cursor(at: NaiveDateTime, rest: &str) -> String {
    encode_cursor(&format!("{}:{rest}", at.and_utc().timestamp_micros()))
}

/// RFC 3339 with microseconds and `Z`.
pub fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: [Param; 3] = [
        param("bot", Kind::Integer, ""),
        param("since", Kind::Time, ""),
        LIMIT,
    ];

    #[test]
    fn errors_name_the_parameter() {
        let error = |q: &str| {
            Query::parse_str(q, &DECLARED)
                .err()
                .map(|e| e.message)
                .unwrap_or_default()
        };
        assert!(error("bot=abc").contains("parameter \"bot\""));
        assert!(error("since=yesterday").contains("parameter \"since\""));
        assert!(error("limit=501").contains("parameter \"limit\""));
        assert!(error("limit=0").contains("parameter \"limit\""));
        assert!(error("colour=red").contains("parameter \"colour\": unknown parameter"));
        assert!(error("since=").contains("parameter \"since\": is empty"));
        assert!(error("bot=%20").contains("parameter \"bot\": is empty"));
        assert!(error("since=%00").contains("parameter \"since\": contains a NUL"));
        assert!(Query::parse_str(
            "bot=8861&since=2023-09-01T14:00:00%2B02:00&limit=500",
            &DECLARED
        )
        .is_ok());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let given = encode_cursor("1693577612141788:42");
        let query =
            Query::parse_str(&format!("cursor={given}"), &[cursor(CursorKind::TimeAndId)]).unwrap();
        assert_eq!(
            query.cursor().unwrap().as_deref(),
            Some("1693577612141788:42")
        );
        let query = Query::parse_str("cursor=zz", &[cursor(CursorKind::TimeAndId)]).unwrap();
        assert!(query.cursor().is_err());
        // A NUL is in no cursor this API gives out.
        let nul = encode_cursor("1693577612141788:a\0b");
        let query =
            Query::parse_str(&format!("cursor={nul}"), &[cursor(CursorKind::TimeAndKey)]).unwrap();
        assert!(query.cursor().is_err());
    }
}
