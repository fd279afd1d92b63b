//! The dedupe key: a stable hash of an item's canonical JSON.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the canonical JSON of `value` (object keys sorted, no
/// whitespace). The same event delivered compact or spaced, with its keys in
/// any order, gets the same key; any difference in value gives another.
pub fn dedupe_key(value: &Value) -> String {
    let digest = Sha256::digest(canonical_bytes(value));
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
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
    fn key_is_sha256_hex() {
        let key = dedupe_key(&json!({}));
        // sha256("{}")
        assert_eq!(
            key,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
