//! The field browser: every field path a rule can test on an event, with
//! its value, from the same evaluation context the rules engine uses; and
//! the reference of the fields hookline derives (all but `payload.*`),
//! which the README carries and a test keeps equal.

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;

use crate::context::{evaluation_context, EventFacts};

/// One field of an event as rules see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldValue {
    /// The exact path (`payload.labels[0].id`).
    pub path: String,
    /// For an item of a list, the path that tests any item
    /// (`payload.labels[*].id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub any_item: Option<String>,
    pub value: Value,
}

/// Every leaf of `context` (scalars, nulls, empty lists and objects), in
/// order.
pub fn flatten(context: &Value) -> Vec<FieldValue> {
    let mut out = Vec::new();
    walk(context, String::new(), String::new(), false, &mut out);
    out
}

fn walk(value: &Value, path: String, any: String, in_list: bool, out: &mut Vec<FieldValue>) {
    let join = |base: &str, key: &str| {
        if base.is_empty() {
            key.to_owned()
        } else {
            format!("{base}.{key}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, inner) in map {
                walk(inner, join(&path, key), join(&any, key), in_list, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{path}[{i}]"), format!("{any}[*]"), true, out);
            }
        }
        leaf => out.push(FieldValue {
            any_item: in_list.then(|| any.clone()),
            path,
            value: leaf.clone(),
        }),
    }
}

/// The paths hookline derives for every event (all but `payload.*`, which
/// is the event's payload as sent, and `visitor.*`, the item's `visitor`
/// object as sent).
pub fn derived_paths() -> Vec<String> {
    let facts = EventFacts {
        id: Some(1),
        event_type: "status",
        message_type: None,
        summary: "",
        occurred_at: NaiveDateTime::default(),
        actor_type: None,
        actor_email: None,
        item: crate::context::ItemSource::Raw("{}"),
    };
    flatten(&evaluation_context(&facts, None))
        .into_iter()
        .map(|f| f.path)
        .filter(|p| !p.starts_with("payload") && !p.starts_with("visitor"))
        .collect()
}

/// The variables email templates can use: every path of the template
/// contexts of the shipped samples (`payload.*` aside: the payload as
/// sent), items of lists as `[*]`, one line each.
pub fn template_reference() -> String {
    let mut paths = std::collections::BTreeSet::new();
    for (_, context) in crate::dry_run::sample_contexts() {
        for field in flatten(&context) {
            let path = field.any_item.unwrap_or(field.path);
            if !path.starts_with("payload") {
                paths.insert(path);
            }
        }
    }
    paths.into_iter().map(|p| format!("    {p}\n")).collect()
}

/// The README's field reference: one line per derived path.
pub fn reference() -> String {
    let mut out = String::new();
    for path in derived_paths() {
        out.push_str(&format!("    {path}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_get_exact_and_any_item_paths() {
        let fields =
            flatten(&json!({"payload": {"labels": [{"id": 42}], "action": "added", "none": []}}));
        assert_eq!(
            fields,
            vec![
                FieldValue {
                    path: "payload.action".into(),
                    any_item: None,
                    value: json!("added")
                },
                FieldValue {
                    path: "payload.labels[0].id".into(),
                    any_item: Some("payload.labels[*].id".into()),
                    value: json!(42)
                },
                FieldValue {
                    path: "payload.none".into(),
                    any_item: None,
                    value: json!([])
                },
            ]
        );
    }

    fn readme_block(marker: &str) -> String {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap();
        let begin = format!("<!-- {marker}: begin -->\n");
        let start = readme.find(&begin).expect("the begin marker") + begin.len();
        let end = readme
            .find(&format!("<!-- {marker}: end -->"))
            .expect("the end marker");
        readme[start..end].trim_matches('\n').to_owned()
    }

    /// The README's field reference is this code's: change one, change
    /// the other.
    #[test]
    fn the_readme_field_reference_matches_the_engine() {
        let expected = reference();
        assert_eq!(
            readme_block("derived fields"),
            expected.trim_matches('\n'),
            "README.md's derived fields drifted from the engine; put this between the markers:\n\n{expected}"
        );
    }

    /// The README's template variables are those the templates get.
    #[test]
    fn the_readme_template_variables_match_the_context() {
        let expected = template_reference();
        assert_eq!(
            readme_block("template variables"),
            expected.trim_matches('\n'),
            "README.md's template variables drifted from the context; put this between the markers:\n\n{expected}"
        );
    }
}
