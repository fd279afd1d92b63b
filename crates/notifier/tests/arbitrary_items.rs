//! Whatever an item holds, the whole path an event takes through hookline
//! never panics: parse, summary, dedupe key, what it says about its
//! conversation, the rules' context, every operator and recipient kind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hookline_notifier::context::{evaluation_context, EventFacts};
use hookline_notifier::{CompiledRule, RuleDef, Templates};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/swiftsell"
);

/// The items of the 28 documented payloads.
fn fixture_items() -> Vec<Value> {
    let mut names: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let body: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            body["events"][0].clone()
        })
        .collect()
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("user"),
            Just("visitor"),
            Just("bot"),
            Just("Close"),
            Just("None"),
            Just("9999-12-31 23:59:59"),
            Just("0000-01-01 00:00:00"),
            Just("javascript:alert(1)"),
            Just("a@b.example"),
            Just("¿·$user.info.email·?"),
            Just("\u{0}\r\nBcc: x@evil.example"),
        ]
        .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every path to a value inside `value`.
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                prefix.push(key.clone());
                paths(inner, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                prefix.push(index.to_string());
                paths(inner, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn set(value: &mut Value, path: &[String], new: Value) {
    let mut target = value;
    for segment in path {
        target = match target {
            Value::Object(map) => map.entry(segment.clone()).or_insert(Value::Null),
            Value::Array(items) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => return,
                }
            }
            _ => return,
        };
    }
    *target = new;
}

/// A documented item with one of its values (or a whole subtree) replaced
/// by arbitrary JSON, or arbitrary JSON altogether.
fn arb_item() -> impl Strategy<Value = Value> {
    let items = fixture_items();
    let mutated = (0..items.len(), any::<prop::sample::Index>(), arb_json()).prop_map(
        move |(which, at, new)| {
            let mut item = items[which].clone();
            let mut all = Vec::new();
            paths(&item, &mut Vec::new(), &mut all);
            let path = at.get(&all).clone();
            set(&mut item, &path, new);
            item
        },
    );
    prop_oneof![4 => mutated, 1 => arb_json()]
}

/// Rules using every operator, on fields of every root, with each kind of
/// recipient.
fn rules() -> Vec<CompiledRule> {
    let templates = Templates::built_in().unwrap();
    let ops = [
        ("eq", json!("user")),
        ("ne", json!(8861)),
        ("in", json!(["user", 1, null])),
        ("not_in", json!(["bot"])),
        ("contains", json!("a")),
        ("starts_with", json!("close")),
        ("matches", json!("^(a|b)+$")),
        ("exists", Value::Null),
        ("missing", Value::Null),
        ("gt", json!(1)),
        ("gte", json!("2023-01-01")),
        ("lt", json!(1.5)),
        ("lte", json!("{{conversation.message_count}}")),
    ];
    let fields = [
        "type",
        "message_type",
        "payload.to.type",
        "payload.message.text",
        "payload.variables.0.value",
        "payload.labels.0.id",
        "conversation.assignee.email",
        "conversation.visitor.name",
        "account.id",
        "bot.id",
        "visitor.key",
        "event.summary",
    ];
    let recipients = [
        json!(["{{payload.to.email}}"]),
        json!(["{{conversation.assignee.email}}", "lead@example.com"]),
        json!(["team+{{bot.id}}@example.com"]),
    ];
    let mut rules = Vec::new();
    for (i, (op, value)) in ops.iter().enumerate() {
        for (j, field) in fields.iter().enumerate() {
            let mut condition = json!({"field": field, "op": op});
            if !value.is_null() {
                condition["value"] = value.clone();
            }
            let def: RuleDef = serde_json::from_value(json!({
                "name": format!("r-{i}-{j}"),
                "on": ["*"],
                "any": [condition],
                "to": recipients[(i + j) % recipients.len()],
                "template": "generic",
                "throttle": "10m",
            }))
            .unwrap();
            rules.push(CompiledRule::compile(def, None, &templates).unwrap());
        }
    }
    rules
}

thread_local! {
    static RULES: Vec<CompiledRule> = rules();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_item_goes_through_parse_summary_projection_and_rules(item in arb_item()) {
        let prepared = hookline_storage::prepare_value(&item, chrono::Utc::now());
        let event = &prepared.event;
        prop_assert!(!event.summary.contains('\n'));
        prop_assert!(event.event_type.len() <= hookline_storage::MAX_INDEXED_BYTES);
        let facts = EventFacts {
            id: Some(1),
            event_type: &event.event_type,
            message_type: event.message_type.as_deref(),
            summary: &event.summary,
            occurred_at: event.occurred_at,
            actor_type: event.actor_type.as_deref(),
            actor_email: event.actor_email.as_deref(),
            item: hookline_notifier::context::ItemSource::Raw(&event.raw),
        };
        let context = evaluation_context(&facts, None);
        RULES.with(|rules| {
            for rule in rules {
                if rule.check(&context).is_ok() {
                    for recipient in rule.recipients(&context) {
                        match recipient {
                            Ok(address) => {
                                assert!(address.len() <= 254 && address.contains('@'), "{address}")
                            }
                            // Recorded in an indexed column: bounded.
                            Err((recorded, _)) => assert!(recorded.len() <= 1_024, "{}", recorded.len()),
                        }
                    }
                }
            }
        });
    }
}
