//! The delivery envelope `{"events": [...]}` and why a body is not one.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::field::Field;
use crate::item::Item;

/// A parsed delivery. Items that are not objects with a readable frame are
/// kept as [`Field::Raw`]; nothing the platform sent is dropped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope {
    pub events: Vec<Field<Item>>,
    /// Top-level keys besides `events` (a `token`, say).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Why a body is not an envelope. The only ways parsing can fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON at all: where it broke.
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON, but not an object.
    NotAnObject { found: &'static str },
    /// An object without `events`.
    MissingEvents,
    /// `events` is there but is not an array.
    EventsNotArray { found: &'static str },
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::InvalidJson {
                line,
                column,
                message,
            } => write!(
                f,
                "body is not valid JSON at line {line}, column {column}: {message}"
            ),
            EnvelopeError::NotAnObject { found } => write!(
                f,
                "body is JSON {found}, expected an object with an \"events\" array"
            ),
            EnvelopeError::MissingEvents => {
                f.write_str("body is a JSON object without an \"events\" array")
            }
            EnvelopeError::EventsNotArray { found } => {
                write!(f, "\"events\" is {found}, expected an array")
            }
        }
    }
}

impl std::error::Error for EnvelopeError {}

impl EnvelopeError {
    /// The syntax error of a body that is not JSON, with where it broke.
    pub fn from_json_error(error: &serde_json::Error) -> EnvelopeError {
        EnvelopeError::InvalidJson {
            line: error.line(),
            column: error.column(),
            message: strip_position(&error.to_string()),
        }
    }

    /// True for bodies that are not JSON (as opposed to JSON of the wrong
    /// shape).
    pub fn is_syntax(&self) -> bool {
        matches!(self, EnvelopeError::InvalidJson { .. })
    }
}

/// The name of a JSON value's type, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Envelope {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::from_json_error(&e))?;
        Envelope::from_value(value)
    }

    /// Reads an envelope from JSON already parsed.
    pub fn from_value(value: Value) -> Result<Envelope, EnvelopeError> {
        let (items, other) = Envelope::split(value)?;
        Ok(Envelope {
            events: items.into_iter().map(Field::from_value).collect(),
            other,
        })
    }

    /// The items of an envelope as received, untyped, and its other
    /// top-level keys: for callers that keep each item's JSON (type them
    /// with [`Field::from_ref`]).
    pub fn split(value: Value) -> Result<(Vec<Value>, Map<String, Value>), EnvelopeError> {
        let mut object = match value {
            Value::Object(object) => object,
            other => {
                return Err(EnvelopeError::NotAnObject {
                    found: json_type(&other),
                })
            }
        };
        match object.remove("events") {
            Some(Value::Array(items)) => Ok((items, object)),
            Some(other) => Err(EnvelopeError::EventsNotArray {
                found: json_type(&other),
            }),
            None => Err(EnvelopeError::MissingEvents),
        }
    }
}

/// serde_json appends " at line L column C"; the error carries those apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_json_says_where() {
        let error = Envelope::parse(b"{\"events\": [\n  {\"a\": }]}").unwrap_err();
        let EnvelopeError::InvalidJson { line, column, .. } = &error else {
            panic!("expected invalid json, got {error:?}");
        };
        assert_eq!((*line, *column), (2, 9));
        assert!(error.to_string().contains("line 2, column 9"), "{error}");
    }

    #[test]
    fn empty_body_is_invalid_json() {
        assert!(Envelope::parse(b"").unwrap_err().is_syntax());
    }

    #[test]
    fn shape_errors_name_the_problem() {
        assert_eq!(
            Envelope::parse(b"[1]").unwrap_err(),
            EnvelopeError::NotAnObject { found: "an array" }
        );
        assert_eq!(
            Envelope::parse(b"{\"token\":\"t\"}").unwrap_err(),
            EnvelopeError::MissingEvents
        );
        assert_eq!(
            Envelope::parse(b"{\"events\":{}}").unwrap_err(),
            EnvelopeError::EventsNotArray { found: "an object" }
        );
    }

    #[test]
    fn non_object_items_are_kept_raw() {
        let envelope = Envelope::parse(b"{\"events\":[1,\"x\",null]}").unwrap();
        assert_eq!(envelope.events.len(), 3);
        assert!(envelope.events.iter().all(|item| item.raw().is_some()));
    }
}
