//! An item's record (read by `hookline_model::record`) as the rows it
//! becomes. No payload is interpreted here: the model decides what an item
//! means; storage keeps what it is handed.

use chrono::{DateTime, Utc};
use hookline_model::record::{self, EventFacts, Record};
use hookline_model::{Field, Item};
use serde_json::Value;

use crate::conversations::Observation;
use crate::events::NewEvent;

pub use hookline_model::record::{bounded, filed_time, MAX_INDEXED_BYTES};

/// An item ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedItem {
    pub event: NewEvent,
    pub observation: Option<Observation>,
    /// The typed item, for the ingest hook (rules read it instead of
    /// parsing `raw` again); `None` when it is not an object.
    pub item: Option<Item>,
}

impl From<Record> for PreparedItem {
    fn from(record: Record) -> PreparedItem {
        let EventFacts {
            dedupe_key,
            event_type,
            message_type,
            conversation_key,
            conversation_id,
            account_id,
            bot_id,
            visitor_key,
            visitor_id,
            actor_type,
            actor_email,
            handed_to,
            occurred_at,
            received_at,
            summary,
            raw,
        } = record.event;
        PreparedItem {
            event: NewEvent {
                dedupe_key,
                event_type,
                message_type,
                conversation_key,
                conversation_id,
                account_id,
                bot_id,
                visitor_key,
                visitor_id,
                actor_type,
                actor_email,
                handed_to,
                occurred_at,
                received_at,
                summary,
                raw,
            },
            observation: record.observation,
            item: record.item,
        }
    }
}

/// Prepares an item that could not even be read as a JSON value.
pub fn prepare_unreadable(raw: &str, problem: &str, received_at: DateTime<Utc>) -> PreparedItem {
    record::record_unreadable(raw, problem, received_at).into()
}

/// Prepares one item from its JSON text as received (what the webhook
/// does): typed once, `raw` the text itself.
pub fn prepare_text(raw: &str, received_at: DateTime<Utc>) -> PreparedItem {
    record::read_item_text(raw, received_at).into()
}

/// Prepares an item given as a JSON value (tools and tests): its `raw` is
/// the value's compact JSON.
pub fn prepare_value(raw: &Value, received_at: DateTime<Utc>) -> PreparedItem {
    let text = serde_json::to_string(raw).unwrap_or_else(|_| raw.to_string());
    prepare_text(&text, received_at)
}

/// Prepares an item already typed (tools and tests).
pub fn prepare(item: &Field<Item>, received_at: DateTime<Utc>) -> PreparedItem {
    let raw = serde_json::to_value(item).unwrap_or(Value::Null);
    prepare_value(&raw, received_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_model::Envelope;

    fn prepared(json: &str) -> PreparedItem {
        let envelope = Envelope::parse(json.as_bytes()).unwrap();
        prepare(&envelope.events[0], Utc::now())
    }

    #[test]
    fn form_response_captures_name_and_email() {
        let p = prepared(include_str!(
            "../../../tests/fixtures/swiftsell/20-message-form_response.json"
        ));
        let obs = p.observation.unwrap();
        assert_eq!(obs.visitor_name.as_deref(), Some("abc"));
        assert_eq!(obs.visitor_email.as_deref(), Some("abc@gmail.com"));
        assert!(obs.is_message);
    }

    #[test]
    fn conversation_create_captures_title_channel_and_visitor() {
        let p = prepared(include_str!(
            "../../../tests/fixtures/swiftsell/01-conversation_create.json"
        ));
        assert_eq!(p.event.event_type, "conversation_create");
        assert_eq!(p.event.bot_id, Some(8861));
        let obs = p.observation.unwrap();
        let created = obs.created.unwrap();
        assert_eq!(created.title.as_deref(), Some("Visitor - A27187"));
        assert_eq!(created.channel.as_deref(), Some("WEB"));
        assert!(created
            .conversation_url
            .unwrap()
            .starts_with("https://app.dev.swiftsell.biz/"));
        assert_eq!(obs.visitor_name.as_deref(), Some("nik"));
        assert_eq!(
            obs.assignee,
            Some((Some("bot".into()), Some("seq_user@swiftsell.biz".into())))
        );
    }

    #[test]
    fn nul_characters_do_not_reach_text_columns() {
        let p = prepared(
            r#"{"events":[{"event":{"type":"note\u0000x","payload":{}},"conversation":{"key":"a\u0000b"}}]}"#,
        );
        assert_eq!(p.event.event_type, "notex");
        assert_eq!(p.event.conversation_key.as_deref(), Some("ab"));
        assert!(p.event.raw.contains("\\u0000"));
    }

    #[test]
    fn unrecognized_items_are_prepared_with_their_raw_json() {
        let p = prepared(r#"{"events":[[1,2]]}"#);
        assert_eq!(p.event.event_type, "unrecognized");
        assert_eq!(p.event.raw, "[1,2]");
        assert!(p.observation.is_none());
    }

    #[test]
    fn raw_is_the_item_exactly_as_received() {
        let text = "{ \"timestamp\" : \"2024-01-01 00:00:00\",\n  \"event\": {\"type\": \"note\", \"payload\": {\"note\": \"caf\\u00e9\"}}}";
        let p = prepare_text(text, Utc::now());
        assert_eq!(p.event.raw, text);
        let compact = prepare_value(&serde_json::from_str(text).unwrap(), Utc::now());
        assert_eq!(p.event.dedupe_key, compact.event.dedupe_key);
        assert_eq!(p.event.summary, compact.event.summary);
    }
}
