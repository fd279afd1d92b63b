//! The delivery envelope `{"events": [...]}` and why a body is not one.

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
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

/// What a delivery body holds, read without typing its items.
#[derive(Debug)]
pub enum Body<'a> {
    /// An object without `events`: a handshake.
    Handshake,
    /// Each item's JSON exactly as received.
    Items(Vec<&'a RawValue>),
}

/// Reads a body in one pass: an object with an `events` array gives its
/// items as received (each typed later, on its own, so that one item that
/// does not read, a number out of range say, does not refuse the others).
pub fn read_body(body: &[u8]) -> Result<Body<'_>, EnvelopeError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde::de::Deserializer::deserialize_any(&mut de, BodyVisitor)
        .and_then(|read| de.end().map(|()| read))
        .map_err(|e| EnvelopeError::from_json_error(&e))?
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Result<Body<'de>, EnvelopeError>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(EnvelopeError::NotAnObject { found: "a boolean" }))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(EnvelopeError::NotAnObject { found: "a number" }))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(EnvelopeError::NotAnObject { found: "a number" }))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(EnvelopeError::NotAnObject { found: "a number" }))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(EnvelopeError::NotAnObject { found: "a string" }))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(EnvelopeError::NotAnObject { found: "null" }))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(EnvelopeError::NotAnObject { found: "an array" }))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut events = None;
        while let Some(key) = map.next_key::<crate::lenient::Key<'de>>()? {
            if key.as_str() == "events" {
                events = Some(map.next_value::<EventsValue<'de>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(match events {
            None => Ok(Body::Handshake),
            Some(Ok(items)) => Ok(Body::Items(items)),
            Some(Err(found)) => Err(EnvelopeError::EventsNotArray { found }),
        })
    }
}

/// `events`: its items as received, or the type it has instead of a list.
struct EventsValue<'de>(Result<Vec<&'de RawValue>, &'static str>);

impl<'de> Deserialize<'de> for EventsValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventsValue<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(EventsValue(Err("a boolean")))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(EventsValue(Err("a number")))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(EventsValue(Err("a number")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(EventsValue(Err("a number")))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(EventsValue(Err("a string")))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(EventsValue(Err("null")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(EventsValue(Err("an object")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    items.push(item);
                }
                Ok(EventsValue(Ok(items)))
            }
        }
        d.deserialize_any(V)
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
    fn read_body_gives_items_as_received() {
        let body = b"{\"token\": 1, \"events\": [ {\"b\": 1,  \"a\": [1e400]}, 2 ]}";
        let Ok(Body::Items(items)) = read_body(body) else {
            panic!("expected items");
        };
        let texts: Vec<&str> = items.iter().map(|i| i.get()).collect();
        assert_eq!(texts, ["{\"b\": 1,  \"a\": [1e400]}", "2"]);
        assert!(matches!(
            read_body(b"{\"token\":\"t\"}"),
            Ok(Body::Handshake)
        ));
        assert_eq!(
            read_body(b"[1]").unwrap_err(),
            EnvelopeError::NotAnObject { found: "an array" }
        );
        assert_eq!(
            read_body(b"{\"events\":{}}").unwrap_err(),
            EnvelopeError::EventsNotArray { found: "an object" }
        );
        assert!(read_body(b"{\"events\":[]} x").unwrap_err().is_syntax());
        assert!(read_body(b"").unwrap_err().is_syntax());
    }

    #[test]
    fn non_object_items_are_kept_raw() {
        let envelope = Envelope::parse(b"{\"events\":[1,\"x\",null]}").unwrap();
        assert_eq!(envelope.events.len(), 3);
        assert!(envelope.events.iter().all(|item| item.raw().is_some()));
    }
}
