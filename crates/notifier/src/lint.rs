//! Warnings about rules that are valid but probably wrong: an event type
//! hookline does not know (`on = ["assigne_change"]`), or a field path no
//! event of the rule's types has (`payload.to.typ`); such a rule never
//! fires. Each warning names the likely intended name.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::rule::{ConditionDef, RuleDef};

/// The candidate closest to `word` when it is close enough to be a typo
/// of it (or `word` is a prefix of it, or it of `word`).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 4).max(2);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .filter_map(|c| {
            let distance = strsim::damerau_levenshtein(word, c);
            let prefix = c.len() >= 4 && (word.starts_with(c) || c.starts_with(word));
            (distance <= limit || prefix).then_some((distance, c))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `payload.labels[0].id` and `payload.labels.0.id` as
/// `payload.labels.id`: the form paths are compared in.
fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in path.trim().chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split('.')
        .filter(|s| !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Every path of an event of `event_types` (`*`: all) that rules can
/// test: the fields hookline derives, and the payload and visitor fields
/// of the shipped samples of those types.
fn known_paths(event_types: &[&str]) -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = crate::fields::derived_paths()
        .iter()
        .map(|p| normalize(p))
        .collect();
    for (_, text) in crate::samples::SAMPLES {
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        for item in crate::dry_run::items_of(value) {
            let event_type = item["event"]["type"].as_str().unwrap_or_default();
            if !event_types.iter().any(|t| *t == "*" || *t == event_type) {
                continue;
            }
            let parts = json!({"payload": item["event"]["payload"], "visitor": item["visitor"]});
            for field in crate::fields::flatten(&parts) {
                paths.insert(normalize(&field.path));
            }
        }
    }
    paths
}

/// The event types and conditions of one place of a rule (the rule, a
/// timer's start, a timer's stop).
struct Place<'a> {
    name: String,
    on: &'a [String],
    conditions: Vec<(String, &'a ConditionDef)>,
}

fn place<'a>(
    name: String,
    on: &'a [String],
    all: &'a [ConditionDef],
    any: &'a [ConditionDef],
) -> Place<'a> {
    let prefix = if name.is_empty() {
        String::new()
    } else {
        format!("{name}.")
    };
    let conditions = all
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{prefix}all[{i}]"), c))
        .chain(
            any.iter()
                .enumerate()
                .map(|(i, c)| (format!("{prefix}any[{i}]"), c)),
        )
        .collect();
    Place {
        name: if name.is_empty() {
            "on".to_owned()
        } else {
            format!("{name}.on")
        },
        on,
        conditions,
    }
}

/// What looks wrong in a (valid) rule, one sentence each.
pub fn warnings(def: &RuleDef) -> Vec<String> {
    let mut places = vec![place(String::new(), &def.on, &def.all, &def.any)];
    if let Some(timer) = &def.timer {
        places.push(place(
            "timer.start".to_owned(),
            &timer.start.on,
            &timer.start.all,
            &timer.start.any,
        ));
        for (i, stop) in timer.stop.iter().enumerate() {
            places.push(place(
                format!("timer.stop[{i}]"),
                &stop.on,
                &stop.all,
                &stop.any,
            ));
        }
    }
    let mut warnings = Vec::new();
    for place in places {
        let mut types: Vec<&str> = Vec::new();
        for event_type in place.on.iter().map(|t| t.trim()) {
            if event_type == "*" || hookline_model::EVENT_TYPES.contains(&event_type) {
                types.push(event_type);
                continue;
            }
            let hint = closest(event_type, hookline_model::EVENT_TYPES)
                .map(|t| format!("did you mean `{t}`? "))
                .unwrap_or_default();
            warnings.push(format!(
                "{}: unknown event type {event_type:?}: {hint}(hookline knows {} and `*`); the rule never fires for it",
                place.name,
                hookline_model::EVENT_TYPES.join(", ")
            ));
        }
        if types.is_empty() || place.conditions.is_empty() {
            continue;
        }
        let known = known_paths(&types);
        for (at, condition) in &place.conditions {
            let path = normalize(&condition.field);
            let prefix = format!("{path}.");
            if known.contains(&path) || known.iter().any(|k| k.starts_with(&prefix)) {
                continue;
            }
            let hint = closest(&path, known.iter().map(String::as_str))
                .map(|p| format!(": did you mean `{p}`?"))
                .unwrap_or_default();
            warnings.push(format!(
                "{at}: no {} event hookline knows has the field {}{hint} (a condition on a missing field does not hold)",
                types.join(" or "),
                condition.field.trim()
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml: &str) -> RuleDef {
        RuleDef::from_toml(toml).expect("rule")
    }

    #[test]
    fn a_misspelt_event_type_is_named_with_the_right_one() {
        let def = rule(
            "name = \"x\"\non = [\"assigne_change\", \"status\"]\nto = [\"a@example.com\"]\ntemplate = \"generic\"\n",
        );
        let warnings = warnings(&def);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "on: unknown event type \"assigne_change\": did you mean `assignee_change`?"
            ),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_misspelt_field_is_named_with_the_right_one() {
        let def = rule(
            "name = \"x\"\non = [\"assignee_change\"]\nto = [\"a@example.com\"]\ntemplate = \"generic\"\nall = [{ field = \"payload.to.typ\", op = \"eq\", value = \"user\" }, { field = \"payload.to.type\", op = \"eq\", value = \"user\" }]\n",
        );
        let warnings = warnings(&def);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("all[0]: no assignee_change event hookline knows has the field payload.to.typ: did you mean `payload.to.type`?"),
            "{warnings:?}"
        );
    }

    #[test]
    fn known_fields_in_every_form_pass() {
        let def = rule(
            "name = \"x\"\non = [\"conversation_labels\", \"message\"]\nto = [\"a@example.com\"]\ntemplate = \"generic\"\nany = [{ field = \"payload.labels[*].id\", op = \"exists\" }, { field = \"payload.labels.0.id\", op = \"exists\" }, { field = \"conversation.assignee.email\", op = \"exists\" }, { field = \"payload\", op = \"exists\" }, { field = \"event.actor.type\", op = \"exists\" }]\n",
        );
        assert_eq!(warnings(&def), Vec::<String>::new());
    }

    #[test]
    fn closest_wants_a_near_name() {
        assert_eq!(closest("statsu", ["status", "note"]), Some("status"));
        assert_eq!(closest("zzzzzz", ["status", "note"]), None);
    }
}
