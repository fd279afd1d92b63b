//! The dedupe key: a stable hash of an item's canonical JSON, stored
//! behind the time the item says it happened.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The key an event is stored under: `<time>|<hash>`, where `time` is the
/// Unix time in microseconds the item itself says it happened (18 digits),
/// or empty when it says no time from 1970 on, and `hash` its
/// [`dedupe_key`]. Both parts come from the item alone (never from when it
/// was received), so a re-delivery gets the same key; the time in front
/// makes the unique index grow at its end, as events arrive in about the
/// order they happen, instead of at a random place (a random page written
/// per stored event).
pub fn stored_dedupe_key(said: Option<DateTime<Utc>>, hash: &str) -> String {
    let micros = said
        .map(|at| at.timestamp_micros())
        .filter(|micros| (0..=MAX_KEY_MICROS).contains(micros));
    match micros {
        Some(micros) => format!("{micros:018}|{hash}"),
        None => format!("|{hash}"),
    }
}

/// The last microsecond with 18 digits (year 33658).
const MAX_KEY_MICROS: i64 = 999_999_999_999_999_999;

/// Hex SHA-256 of the canonical JSON of `value` (object keys sorted, no
/// whitespace). The same event delivered compact or spaced, with its keys in
/// any order, gets the same key; any difference in value gives another.
pub fn dedupe_key(value: &Value) -> String {
    hex_sha256(&canonical_bytes(value))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Canonical JSON of `value` as a string (what [`dedupe_key`] hashes).
pub fn canonical_json(value: &Value) -> String {
    String::from_utf8_lossy(&canonical_bytes(value)).into_owned()
}

fn canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            // Sorted here rather than relying on serde_json's map order,
            // which a dependency's `preserve_order` feature would change.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_scalar(key.as_str(), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // serde_json's compact output of a string, number, bool or null is
        // canonical for its value.
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar<T: serde::Serialize + ?Sized>(scalar: &T, out: &mut Vec<u8>) {
    // Writing a string, number, bool or null into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, scalar);
}

/// [`dedupe_key`] of JSON text, read in one pass without building its
/// `Value`: the same key for the same value, whatever the spacing and key
/// order. Fails only when the text is not JSON (or holds a number out of
/// range, as building its `Value` would).
pub fn dedupe_key_of_json(text: &str) -> Result<String, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut canonical = Vec::with_capacity(text.len());
    serde::de::DeserializeSeed::deserialize(Canonical(&mut canonical), &mut de)?;
    de.end()?;
    Ok(hex_sha256(&canonical))
}

fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Appends the canonical form of whatever it reads to its buffer (what
/// `canonical_bytes` writes for the `Value` of the same text). An object's
/// entries are written as read, then put in key order in place.
struct Canonical<'a>(&'a mut Vec<u8>);

impl<'de> serde::de::DeserializeSeed<'de> for Canonical<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Canonical<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        write_scalar(&v, self.0);
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        write_scalar(&v, self.0);
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        write_scalar(&v, self.0);
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // As `Value` keeps it: a float, or null when not finite.
        match serde_json::Number::from_f64(v) {
            Some(number) => write_scalar(&number, self.0),
            None => self.0.extend_from_slice(b"null"),
        }
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        write_scalar(v, self.0);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.0;
        out.push(b'[');
        let mut first = true;
        loop {
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            if seq.next_element_seed(Canonical(&mut *out))?.is_none() {
                out.truncate(mark);
                break;
            }
            first = false;
        }
        out.push(b']');
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.0;
        let start = out.len();
        // (key, where its value's bytes are, relative to `start`)
        let mut entries: Vec<(crate::lenient::Key<'de>, usize, usize)> = Vec::new();
        while let Some(key) = map.next_key::<crate::lenient::Key<'de>>()? {
            let from = out.len() - start;
            map.next_value_seed(Canonical(&mut *out))?;
            entries.push((key, from, out.len() - start));
        }
        let values = out.split_off(start);
        // Sorted by key; of a key sent twice the last counts, as in `Value`.
        entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        out.push(b'{');
        let mut first = true;
        for (index, (key, from, to)) in entries.iter().enumerate() {
            if entries
                .get(index + 1)
                .is_some_and(|next| next.0.as_str() == key.as_str())
            {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            write_scalar(key.as_str(), out);
            out.push(b':');
            out.extend_from_slice(&values[*from..*to]);
        }
        out.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spacing_and_key_order_do_not_change_the_key() {
        let compact: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        let spaced: Value =
            serde_json::from_str("{ \"a\" : { \"x\" : \"s\", \"y\" : [ 1, 2 ] },\n \"b\" : 1 }")
                .unwrap();
        assert_eq!(dedupe_key(&compact), dedupe_key(&spaced));
        assert_eq!(
            canonical_json(&spaced),
            r#"{"a":{"x":"s","y":[1,2]},"b":1}"#
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_writes_them() {
        // Keys stored by earlier versions must not change: pin the escaping.
        let value = json!({"k\"\n\u{1}": "é\u{0}\\/", "n": [1.5, -2, true, null]});
        assert_eq!(
            canonical_json(&value),
            r#"{"k\"\n\u0001":"é\u0000\\/","n":[1.5,-2,true,null]}"#
        );
    }

    #[test]
    fn different_values_give_different_keys() {
        let keys = [
            json!({"a": 1}),
            json!({"a": "1"}),
            json!({"a": [1]}),
            json!({"a": 1, "b": null}),
            json!({"a\"": 1}),
        ]
        .map(|v| dedupe_key(&v));
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn key_of_text_is_the_key_of_its_value() {
        let texts = [
            r#"{"b":1,"a":{"y":[1,2.5,-3,1e3],"x":"s\u00e9\n"}}"#,
            "{ \"a\" : { \"x\" : \"s\\u00e9\\n\", \"y\" : [ 1, 2.5 , -3, 1e3 ] },\n \"b\" : 1 }",
            r#"{"k":1,"k":2,"z":[],"e":{},"n":null,"t":true,"big":18446744073709551615}"#,
            r#"[1,"x",null]"#,
            "12",
        ];
        for text in texts {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                dedupe_key_of_json(text).unwrap(),
                dedupe_key(&value),
                "{text}"
            );
        }
        assert_eq!(
            dedupe_key_of_json(texts[0]).unwrap(),
            dedupe_key_of_json(texts[1]).unwrap()
        );
        assert!(dedupe_key_of_json(r#"{"n":1e400}"#).is_err());
    }

    #[test]
    fn key_is_sha256_hex() {
        let key = dedupe_key(&json!({}));
        // sha256("{}")
        assert_eq!(
            key,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
