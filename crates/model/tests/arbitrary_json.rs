//! Arbitrary JSON inside a valid envelope never panics and keeps its value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hookline_model::{dedupe_key, summary, Envelope};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        // Names the model knows, so that the typed paths get exercised.
        prop_oneof![
            Just("message"),
            Just("text"),
            Just("None"),
            Just("user"),
            Just("visitor"),
            Just("form.response"),
            Just("status"),
            Just("¿·$user.info.email·?"),
            Just("2023-09-01 14:13:32.141788"),
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("type".to_owned()),
            Just("payload".to_owned()),
            Just("message".to_owned()),
            Just("message_by".to_owned()),
            Just("email".to_owned()),
            Just("fields".to_owned()),
            Just("value".to_owned()),
            Just("variables".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arb_item() -> impl Strategy<Value = Value> {
    let event_type = prop_oneof![
        Just("message"),
        Just("conversation_create"),
        Just("status"),
        Just("assignee_change"),
        Just("variables"),
        Just("conversation_labels"),
        Just("note"),
        Just("brand_new_type"),
    ];
    prop_oneof![
        arb_json(),
        (event_type, arb_json(), arb_json(), arb_json()).prop_map(|(t, payload, conv, ts)| {
            json!({"event": {"type": t, "payload": payload}, "conversation": conv, "timestamp": ts})
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_items_parse_and_keep_their_raw_value(items in prop::collection::vec(arb_item(), 0..4)) {
        let body = json!({"events": items.clone()});
        let envelope = Envelope::parse(body.to_string().as_bytes()).expect("valid envelope");
        prop_assert_eq!(envelope.events.len(), items.len());
        for (field, original) in envelope.events.iter().zip(&items) {
            let back = serde_json::to_value(field).expect("serialise");
            prop_assert_eq!(&back, original);
            prop_assert_eq!(dedupe_key(&back), dedupe_key(original));
            let line = summary(field);
            prop_assert!(!line.is_empty());
            prop_assert!(!line.contains('\n'));
            // Typed straight from its text (as ingest does), spaced or
            // compact: the same item and the same dedupe key.
            for text in [original.to_string(), serde_json::to_string_pretty(original).expect("text")] {
                let typed: hookline_model::Field<hookline_model::Item> =
                    serde_json::from_str(&text).expect("typed from text");
                prop_assert_eq!(&typed, field);
                prop_assert_eq!(
                    hookline_model::dedupe_key_of_json(&text).expect("key"),
                    dedupe_key(original)
                );
            }
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in any::<Vec<u8>>()) {
        let _ = Envelope::parse(&body);
        if let Ok(hookline_model::Body::Items(items)) = hookline_model::read_body(&body) {
            for item in items {
                let _ = hookline_model::record::read_item(item, chrono::Utc::now());
            }
        }
    }
}
