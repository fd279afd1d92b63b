//! Typing JSON in one pass, leniently: a [`Field<T>`] is read straight
//! from the parser (or from a `Value`) without buffering each level into a
//! `Value` first. A value of the expected shape becomes `Typed`; any other
//! is built as its `Value` and kept `Raw`; unknown keys of an object go to
//! its `other` map.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::field::{Field, Flag, Id, Num};

/// A type a JSON value may or may not fit. Each hook answers for one JSON
/// shape; the defaults refuse it (the value is then kept raw).
pub trait Lenient: Sized {
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_string(text: String) -> Result<Self, String> {
        Err(text)
    }
    fn from_null() -> Option<Self> {
        None
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Field<Self>, A::Error> {
        raw_map(map).map(|map| Field::Raw(Value::Object(map)))
    }
    fn from_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Field<Self>, A::Error> {
        raw_seq(seq).map(|items| Field::Raw(Value::Array(items)))
    }
}

/// The rest of an object, as JSON.
pub fn raw_map<'de, A: MapAccess<'de>>(map: A) -> Result<Map<String, Value>, A::Error> {
    Map::deserialize(MapAccessDeserializer::new(map))
}

/// The rest of an array, as JSON.
pub fn raw_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Vec<Value>, A::Error> {
    Vec::deserialize(SeqAccessDeserializer::new(seq))
}

/// A typed value back as JSON (equal in value to what was read).
pub fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A field's JSON: typed, raw, or `null` when missing.
pub fn field_json<T: Serialize>(field: Field<T>) -> Value {
    match field {
        Field::Typed(value) => to_json(&value),
        Field::Raw(value) => value,
        Field::Missing => Value::Null,
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Lenient> Visitor<'de> for LenientVisitor<T> {
    type Value = Field<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Field<T>, E> {
        Ok(T::from_bool(v).map_or(Field::Raw(Value::Bool(v)), Field::Typed))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field<T>, E> {
        Ok(T::from_i64(v).map_or(Field::Raw(Value::Number(v.into())), Field::Typed))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field<T>, E> {
        Ok(T::from_u64(v).map_or(Field::Raw(Value::Number(v.into())), Field::Typed))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field<T>, E> {
        Ok(T::from_f64(v).map_or_else(
            || Field::Raw(Number::from_f64(v).map_or(Value::Null, Value::Number)),
            Field::Typed,
        ))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field<T>, E> {
        self.visit_string(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field<T>, E> {
        Ok(match T::from_string(v) {
            Ok(typed) => Field::Typed(typed),
            Err(text) => Field::Raw(Value::String(text)),
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field<T>, E> {
        Ok(T::from_null().map_or(Field::Raw(Value::Null), Field::Typed))
    }

    fn visit_none<E: de::Error>(self) -> Result<Field<T>, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Field<T>, D::Error> {
        Field::<T>::deserialize(d)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field<T>, A::Error> {
        T::from_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field<T>, A::Error> {
        T::from_seq(seq)
    }
}

impl<'de, T: Lenient> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor(PhantomData))
    }
}

/// An object key, borrowed from the input when it can be.
pub struct Key<'de>(Cow<'de, str>);

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Reads one `T` through [`Field`], failing when it does not fit (for the
/// few places that want the type or nothing).
pub fn strict<'de, T: Lenient, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    match Field::<T>::deserialize(deserializer)? {
        Field::Typed(value) => Ok(value),
        _ => Err(de::Error::custom(
            "the value does not have the expected shape",
        )),
    }
}

impl Lenient for String {
    fn from_string(text: String) -> Result<Self, String> {
        Ok(text)
    }
}

impl Lenient for i64 {
    fn from_i64(v: i64) -> Option<Self> {
        Some(v)
    }
    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok()
    }
}

impl Lenient for Value {
    fn from_bool(v: bool) -> Option<Self> {
        Some(Value::Bool(v))
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(Value::Number(v.into()))
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(Value::Number(v.into()))
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn from_string(text: String) -> Result<Self, String> {
        Ok(Value::String(text))
    }
    fn from_null() -> Option<Self> {
        Some(Value::Null)
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Field<Self>, A::Error> {
        raw_map(map).map(|map| Field::Typed(Value::Object(map)))
    }
    fn from_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Field<Self>, A::Error> {
        raw_seq(seq).map(|items| Field::Typed(Value::Array(items)))
    }
}

impl Lenient for Map<String, Value> {
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Field<Self>, A::Error> {
        raw_map(map).map(Field::Typed)
    }
}

impl Lenient for Id {
    fn from_i64(v: i64) -> Option<Self> {
        Some(Id::Int(v))
    }
    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok().map(Id::Int)
    }
    fn from_string(text: String) -> Result<Self, String> {
        Ok(Id::Text(text))
    }
}

impl Lenient for Flag {
    fn from_bool(v: bool) -> Option<Self> {
        Some(Flag::Bool(v))
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(Flag::Int(v))
    }
    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok().map(Flag::Int)
    }
    fn from_string(text: String) -> Result<Self, String> {
        Ok(Flag::Text(text))
    }
}

impl Lenient for Num {
    fn from_i64(v: i64) -> Option<Self> {
        Some(Num::Number(v.into()))
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(Num::Number(v.into()))
    }
    fn from_f64(v: f64) -> Option<Self> {
        Number::from_f64(v).map(Num::Number)
    }
    fn from_string(text: String) -> Result<Self, String> {
        Ok(Num::Text(text))
    }
}

/// A list is typed when every item is; otherwise the whole list is kept
/// raw (as a list of any other shape would be).
impl<T: Lenient + Serialize> Lenient for Vec<T> {
    fn from_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Field<Self>, A::Error> {
        let mut typed = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        let mut raw: Option<Vec<Value>> = None;
        while let Some(item) = seq.next_element::<Field<T>>()? {
            match (item, raw.as_mut()) {
                (Field::Typed(value), None) => typed.push(value),
                (item, Some(raw)) => raw.push(field_json(item)),
                (item, None) => {
                    let mut all: Vec<Value> = typed.drain(..).map(|v| to_json(&v)).collect();
                    all.push(field_json(item));
                    raw = Some(all);
                }
            }
        }
        Ok(match raw {
            Some(items) => Field::Raw(Value::Array(items)),
            None => Field::Typed(typed),
        })
    }
}

/// Implements [`Lenient`] (and `Deserialize`) for a struct of fields and an
/// `other` map: each listed key is read into its field, any other key is
/// kept in `other`. Such a struct fits any object, and nothing else.
macro_rules! lenient_struct {
    ($ty:ident { $($key:literal => $field:ident),* $(,)? }) => {
        impl $crate::lenient::Lenient for $ty {
            fn from_map<'de, A: serde::de::MapAccess<'de>>(
                mut map: A,
            ) -> Result<$crate::field::Field<Self>, A::Error> {
                let mut out = $ty::default();
                while let Some(key) = map.next_key::<$crate::lenient::Key<'de>>()? {
                    match key.as_str() {
                        $($key => out.$field = map.next_value()?,)*
                        _ => {
                            let value = map.next_value::<serde_json::Value>()?;
                            out.other.insert(key.into_string(), value);
                        }
                    }
                }
                Ok($crate::field::Field::Typed(out))
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::lenient::strict(deserializer)
            }
        }
    };
}

pub(crate) use lenient_struct;
