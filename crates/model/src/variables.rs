//! Variables and the platform's placeholder markers around their names.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::field::Field;
use crate::lenient::lenient_struct;

/// `{type, name, value}`; the value may have any JSON type whatever `type`
/// says (a `text` variable holding `true`, a `number` holding a string).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Variable {
    #[serde(rename = "type", skip_serializing_if = "Field::is_missing")]
    pub kind: Field<String>,
    /// The name as sent, markers included.
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub name: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub value: Field<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Variable { "type" => kind, "name" => name, "value" => value });

impl Variable {
    /// The name without placeholder markers, for display.
    pub fn display_name(&self) -> Option<String> {
        self.name.get().map(|name| normalize_name(name).to_owned())
    }
}

const OPEN: &str = "\u{bf}\u{b7}";
const CLOSE: &str = "\u{b7}?";

/// Strips the platform's placeholder markers: `¿·$user.info.email·?`
/// becomes `$user.info.email`. Other names come back unchanged (trimmed).
pub fn normalize_name(raw: &str) -> &str {
    let trimmed = raw.trim();
    let inner = trimmed.strip_prefix(OPEN).unwrap_or(trimmed);
    let inner = inner.strip_suffix(CLOSE).unwrap_or(inner);
    inner.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_stripped() {
        assert_eq!(
            normalize_name("\u{bf}\u{b7}$user.info.email\u{b7}?"),
            "$user.info.email"
        );
        assert_eq!(normalize_name("\u{bf}\u{b7}JS2\u{b7}?"), "JS2");
    }

    #[test]
    fn plain_names_are_unchanged() {
        assert_eq!(normalize_name("visitor_name"), "visitor_name");
        assert_eq!(normalize_name("¿x"), "¿x");
        assert_eq!(normalize_name(""), "");
    }

    #[test]
    fn raw_name_is_kept() {
        let variable: Variable = serde_json::from_str(
            r#"{"type":"text","name":"\u00bf\u00b7$user.info.age\u00b7?","value":1}"#,
        )
        .unwrap();
        assert_eq!(
            variable.name.text(),
            Some("\u{bf}\u{b7}$user.info.age\u{b7}?")
        );
        assert_eq!(variable.display_name().as_deref(), Some("$user.info.age"));
    }
}
