//! The platform's quirks and types it may add later.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hookline_model::{dedupe_key, summary, Envelope, Field, Flag, Item, MessageBody, Num, Payload};
use serde_json::{json, Value};

fn parse(value: Value) -> Envelope {
    Envelope::parse(value.to_string().as_bytes()).expect("envelope")
}

fn frame(event: Value) -> Value {
    json!({
        "event": event,
        "conversation": {"key": "c1", "id": 1},
        "account": {"key": "a", "id": 2, "bot": {"id": 3}},
        "visitor": {"key": "v", "id": 4},
        "timestamp": "2023-09-01 14:13:32.141788"
    })
}

fn typed(field: &Field<Item>) -> &Item {
    field.get().expect("typed item")
}

#[test]
fn unknown_event_type_parses_as_unknown_and_keeps_its_json() {
    let unknown =
        frame(json!({"type": "rating", "payload": {"stars": 5, "by": {"type": "visitor"}}}));
    let known = frame(
        json!({"type": "note", "payload": {"note": "hi", "note_by": {"type": "user", "email": "a@b.c", "id": "1"}}}),
    );
    let body = json!({"events": [unknown.clone(), known.clone()]});
    let envelope = parse(body);
    let first = typed(&envelope.events[0]);
    assert_eq!(first.event_type(), "rating");
    let event = first.event.get().expect("event");
    assert!(event.is_unknown());
    assert!(
        matches!(&event.payload, Payload::Unknown(Field::Typed(v)) if v == &json!({"stars": 5, "by": {"type": "visitor"}}))
    );
    assert_eq!(serde_json::to_value(first).unwrap(), unknown);
    assert!(summary(&envelope.events[0]).contains("rating"));
    // The rest of the batch is unaffected.
    let second = typed(&envelope.events[1]);
    assert!(matches!(
        second.event.get().map(|e| &e.payload),
        Some(Payload::Note(_))
    ));
    assert_eq!(serde_json::to_value(second).unwrap(), known);
}

#[test]
fn unknown_message_type_parses_as_unknown_and_keeps_its_json() {
    let item = frame(json!({"type": "message", "payload": {
        "message_by": {"email": null, "id": null, "type": "visitor"},
        "message": {"type": "sticker", "payload": {"pack": 9}, "animated": true}
    }}));
    let envelope = parse(json!({"events": [item.clone()]}));
    let parsed = typed(&envelope.events[0]);
    assert_eq!(parsed.message_type(), Some("sticker"));
    let Some(Payload::Message(m)) = parsed.event.get().map(|e| &e.payload) else {
        panic!("not a message");
    };
    let message = m.message.get().expect("message");
    assert!(matches!(&message.body, MessageBody::Unknown(rest) if rest["animated"] == json!(true)));
    assert_eq!(serde_json::to_value(parsed).unwrap(), item);
    assert_eq!(
        summary(&envelope.events[0]),
        "visitor sent a sticker message"
    );
}

#[test]
fn unknown_fields_are_kept_at_every_level() {
    let item = json!({
        "event": {"type": "note", "payload": {"note": "n", "note_by": {"type": "user", "email": "a@b.c", "id": "1", "avatar": "x.png"}, "pinned": true}, "version": 2},
        "conversation": {"key": "c", "id": 1, "channel": "web"},
        "timestamp": "2023-09-01 14:13:32",
        "delivery": {"attempt": 3}
    });
    let envelope = parse(json!({"events": [item.clone()], "token": "t"}));
    assert_eq!(
        serde_json::to_value(typed(&envelope.events[0])).unwrap(),
        item
    );
    assert_eq!(envelope.other.get("token"), Some(&json!("t")));
}

#[test]
fn fields_of_unexpected_types_fall_back_to_raw_json() {
    let item = frame(json!({"type": "message", "payload": {
        "message_by": {"email": 42, "id": 8292, "type": "user"},
        "message": {"type": "slider", "payload": {"title": ["not", "text"], "min": "10", "max": 50.5, "step": "None", "unit": "cm"}}
    }}));
    let envelope = parse(json!({"events": [item.clone()]}));
    let parsed = typed(&envelope.events[0]);
    let Some(Payload::Message(m)) = parsed.event.get().map(|e| &e.payload) else {
        panic!("not a message");
    };
    let actor = m.message_by.get().expect("actor");
    assert_eq!(actor.email.raw(), Some(&json!(42)));
    assert_eq!(actor.id.get().and_then(|id| id.as_i64()), Some(8292));
    let MessageBody::Slider(slider) = &m.message.get().expect("message").body else {
        panic!("not a slider");
    };
    let slider = slider.payload.get().expect("payload");
    assert_eq!(slider.title.raw(), Some(&json!(["not", "text"])));
    assert_eq!(slider.min.get(), Some(&Num::Text("10".into())));
    assert_eq!(slider.min.get().and_then(Num::as_f64), Some(10.0));
    assert_eq!(slider.step.get().and_then(Num::as_f64), None);
    assert_eq!(slider.unit.raw(), Some(&json!("cm")));
    assert_eq!(serde_json::to_value(parsed).unwrap(), item);
}

#[test]
fn null_actor_email_and_integer_booleans_are_read() {
    let item = frame(json!({"type": "conversation_create", "payload": {
        "assigned_to_user": {"email": null, "id": null, "type": "bot"},
        "is_closed": 1, "is_new_visitor": "false", "bot_id": "8861",
        "variables": [{"type": "text", "name": "visitor_name", "value": "nik"},
                      {"type": "number", "name": "age", "value": "41"},
                      {"type": "text", "name": "vip", "value": true}]
    }}));
    let envelope = parse(json!({"events": [item.clone()]}));
    let parsed = typed(&envelope.events[0]);
    let Some(Payload::ConversationCreate(c)) = parsed.event.get().map(|e| &e.payload) else {
        panic!("not a conversation_create");
    };
    let actor = c.assigned_to_user.get().expect("actor");
    assert_eq!(actor.email(), None);
    assert_eq!(actor.email.raw(), Some(&Value::Null));
    assert_eq!(c.is_closed.get().and_then(Flag::as_bool), Some(true));
    assert_eq!(c.is_new_visitor.get().and_then(Flag::as_bool), Some(false));
    assert_eq!(c.bot_id.get().and_then(|id| id.as_i64()), Some(8861));
    assert_eq!(c.variable("age"), Some(&json!("41")));
    assert_eq!(c.variable("vip"), Some(&json!(true)));
    assert_eq!(c.variable_text("visitor_name"), Some("nik"));
    assert_eq!(serde_json::to_value(parsed).unwrap(), item);
}

#[test]
fn items_without_event_type_are_unrecognized_but_kept() {
    let items = json!([{"conversation": {"key": "c"}}, {"event": {"payload": {}}}, {"event": {"type": 7}}, 5, "x", null, []]);
    let envelope = parse(json!({"events": items.clone()}));
    assert_eq!(envelope.events.len(), 7);
    for (field, original) in envelope.events.iter().zip(items.as_array().unwrap()) {
        if let Some(item) = field.get() {
            assert_eq!(item.event_type(), "unrecognized");
        }
        assert!(summary(field).starts_with("unrecognized"));
        assert_eq!(&serde_json::to_value(field).unwrap(), original);
    }
}

#[test]
fn known_type_with_non_object_payload_keeps_the_payload() {
    let item = frame(json!({"type": "status", "payload": "Close"}));
    let envelope = parse(json!({"events": [item.clone()]}));
    let parsed = typed(&envelope.events[0]);
    assert_eq!(parsed.event_type(), "status");
    assert_eq!(serde_json::to_value(parsed).unwrap(), item);
    assert!(!summary(&envelope.events[0]).is_empty());
}

#[test]
fn zone_less_and_zoned_item_timestamps() {
    let mut zoned = frame(json!({"type": "note", "payload": {}}));
    zoned["timestamp"] = json!("2023-09-01T16:13:32.5+02:00");
    let envelope = parse(json!({"events": [zoned]}));
    let at = typed(&envelope.events[0]).occurred_at().expect("time");
    assert_eq!(at.to_rfc3339(), "2023-09-01T14:13:32.500+00:00");
}

#[test]
fn summaries_are_single_line_and_bounded() {
    let long = "line one\nline two ".repeat(100);
    let item = frame(json!({"type": "message", "payload": {
        "message_by": {"email": null, "id": null, "type": "visitor"},
        "message": {"type": "text", "text": long}
    }}));
    let envelope = parse(json!({"events": [item]}));
    let line = summary(&envelope.events[0]);
    assert!(!line.contains('\n'));
    assert!(line.chars().count() < 200, "{line}");
    assert!(line.starts_with("visitor: line one line two"));
}

#[test]
fn same_event_compact_or_spaced_has_the_same_dedupe_key() {
    let compact = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/swiftsell/01-conversation_create.json"
    ))
    .unwrap();
    let value: Value = serde_json::from_str(&compact).unwrap();
    let spaced = serde_json::to_string_pretty(&value).unwrap();
    let a = parse(serde_json::from_str(&compact).unwrap());
    let b = parse(serde_json::from_str(&spaced).unwrap());
    let key = |e: &Envelope| dedupe_key(&serde_json::to_value(&e.events[0]).unwrap());
    assert_eq!(key(&a), key(&b));
}
