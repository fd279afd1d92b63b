//! Lenient field wrappers: a field that has the expected type is typed, one
//! that does not keeps its raw JSON, and one that is absent stays absent, so
//! that serialising a parsed item gives back the JSON that was received.

use serde::{Deserialize, Serialize, Serializer};

use crate::lenient::Lenient;
use serde_json::{Number, Value};

/// A payload field as the platform sent it.
///
/// Deserialising never fails: a value of the wrong type (or `null`) becomes
/// [`Field::Raw`]. Use `#[serde(default, skip_serializing_if =
/// "Field::is_missing")]` on struct fields so that an absent key stays absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Field<T> {
    /// The key was not in the object.
    #[default]
    Missing,
    /// The value had the expected shape.
    Typed(T),
    /// The value had another shape (or was `null`); kept as received.
    Raw(Value),
}

impl<T> Field<T> {
    /// True when the key was absent.
    pub fn is_missing(&self) -> bool {
        matches!(self, Field::Missing)
    }

    /// The typed value, when the platform sent the expected shape.
    pub fn get(&self) -> Option<&T> {
        match self {
            Field::Typed(value) => Some(value),
            _ => None,
        }
    }

    /// The raw JSON, when the value did not have the expected shape.
    pub fn raw(&self) -> Option<&Value> {
        match self {
            Field::Raw(value) => Some(value),
            _ => None,
        }
    }
}

impl<T: Lenient> Field<T> {
    /// Types `value` as `T`, or keeps it raw when it does not fit.
    pub fn from_value(value: Value) -> Self {
        Field::deserialize(value)
            .unwrap_or_else(|error| Field::Raw(Value::String(error.to_string())))
    }

    /// [`Field::from_value`] for a value the caller keeps (cloned only when
    /// it does not fit).
    pub fn from_ref(value: &Value) -> Self {
        Field::deserialize(value).unwrap_or_else(|_| Field::Raw(value.clone()))
    }
}

impl Field<String> {
    /// The string value; `None` when absent, not a string, or empty.
    pub fn text(&self) -> Option<&str> {
        self.get().map(String::as_str).filter(|s| !s.is_empty())
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Missing => serializer.serialize_unit(),
            Field::Typed(value) => value.serialize(serializer),
            Field::Raw(value) => value.serialize(serializer),
        }
    }
}

/// An identifier the platform sends sometimes as a number, sometimes as a
/// string (actor ids are strings, conversation ids integers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Int(i64),
    Text(String),
}

impl Id {
    /// The id as an integer, parsing a numeric string.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Id::Int(n) => Some(*n),
            Id::Text(s) => s.trim().parse().ok(),
        }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Int(n) => write!(f, "{n}"),
            Id::Text(s) => f.write_str(s),
        }
    }
}

/// A yes/no value sent as `true`/`false`, `0`/`1`, or a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl Flag {
    /// The value as a boolean, when it reads as one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Flag::Bool(b) => Some(*b),
            Flag::Int(0) => Some(false),
            Flag::Int(1) => Some(true),
            Flag::Int(_) => None,
            Flag::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
        }
    }
}

/// A number sent as a JSON number or as a string (`"30"`, `"None"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Num {
    Number(Number),
    Text(String),
}

impl Num {
    /// The value as a float; `None` for strings that are not numbers.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Num::Number(n) => n.as_f64(),
            Num::Text(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        }
    }
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Num::Number(n) => write!(f, "{n}"),
            Num::Text(s) => f.write_str(s),
        }
    }
}

/// Renders any JSON value as short display text: strings without quotes,
/// everything else as compact JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_type_keeps_raw_value() {
        let field: Field<i64> = serde_json::from_value(json!("12x")).unwrap_or_default();
        assert_eq!(field.raw(), Some(&json!("12x")));
        assert_eq!(serde_json::to_value(&field).ok(), Some(json!("12x")));
    }

    #[test]
    fn null_is_kept_as_raw_null() {
        let field: Field<String> = Field::from_value(Value::Null);
        assert_eq!(field, Field::Raw(Value::Null));
        assert_eq!(field.text(), None);
    }

    #[test]
    fn ids_parse_from_strings_and_numbers() {
        assert_eq!(Id::Text(" 8292".into()).as_i64(), Some(8292));
        assert_eq!(Id::Int(8292).to_string(), "8292");
        assert_eq!(Id::Text("abc".into()).as_i64(), None);
    }

    #[test]
    fn flags_read_integers_and_strings() {
        assert_eq!(Flag::Int(0).as_bool(), Some(false));
        assert_eq!(Flag::Int(1).as_bool(), Some(true));
        assert_eq!(Flag::Int(7).as_bool(), None);
        assert_eq!(Flag::Text("True".into()).as_bool(), Some(true));
    }

    #[test]
    fn none_string_is_not_a_number() {
        assert_eq!(Num::Text("None".into()).as_f64(), None);
        assert_eq!(Num::Text("2.5".into()).as_f64(), Some(2.5));
    }
}
