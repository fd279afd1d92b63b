//! The item frame every event comes in: event, conversation, account with
//! bot, visitor, timestamp.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::Event;
use crate::field::{Field, Id};
use crate::lenient::lenient_struct;
use crate::time::parse_timestamp;

/// One element of the envelope's `events` array.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Item {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub event: Field<Event>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub conversation: Field<ConversationRef>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub account: Field<AccountRef>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub visitor: Field<VisitorRef>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub timestamp: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Item { "event" => event, "conversation" => conversation, "account" => account, "visitor" => visitor, "timestamp" => timestamp });

/// `conversation: {key, id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConversationRef {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub key: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub id: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(ConversationRef { "key" => key, "id" => id });

/// `account: {key, id, bot: {id}}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AccountRef {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub key: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub id: Field<Id>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub bot: Field<BotRef>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(AccountRef { "key" => key, "id" => id, "bot" => bot });

/// `bot: {id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BotRef {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub id: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(BotRef { "id" => id });

/// `visitor: {key, id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VisitorRef {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub key: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub id: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(VisitorRef { "key" => key, "id" => id });

/// The type stored for an item that has no readable `event.type`.
pub const UNRECOGNIZED: &str = "unrecognized";

impl Item {
    /// The item stored as `raw` JSON text, when it is an object with a
    /// frame (`None` for items stored as `unrecognized`).
    pub fn from_raw(raw: &str) -> Option<Item> {
        match serde_json::from_str::<Field<Item>>(raw).ok()? {
            Field::Typed(item) => Some(item),
            _ => None,
        }
    }

    /// The event type as sent, or `unrecognized`.
    pub fn event_type(&self) -> &str {
        self.event
            .get()
            .map(|event| event.type_name.as_str())
            .unwrap_or(UNRECOGNIZED)
    }

    /// The message type, for message events.
    pub fn message_type(&self) -> Option<&str> {
        self.event.get().and_then(Event::message_type)
    }

    pub fn conversation_key(&self) -> Option<&str> {
        self.conversation.get().and_then(|c| c.key.text())
    }

    pub fn conversation_id(&self) -> Option<i64> {
        self.conversation
            .get()
            .and_then(|c| c.id.get())
            .and_then(Id::as_i64)
    }

    pub fn account_id(&self) -> Option<i64> {
        self.account
            .get()
            .and_then(|a| a.id.get())
            .and_then(Id::as_i64)
    }

    pub fn bot_id(&self) -> Option<i64> {
        self.account
            .get()
            .and_then(|a| a.bot.get())
            .and_then(|b| b.id.get())
            .and_then(Id::as_i64)
    }

    pub fn visitor_key(&self) -> Option<&str> {
        self.visitor.get().and_then(|v| v.key.text())
    }

    pub fn visitor_id(&self) -> Option<i64> {
        self.visitor
            .get()
            .and_then(|v| v.id.get())
            .and_then(Id::as_i64)
    }

    /// When the event happened: the item timestamp, read as UTC when it has
    /// no zone.
    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.timestamp.text().and_then(parse_timestamp)
    }

    /// The actor responsible for the event, if its type has one.
    pub fn actor(&self) -> Option<&crate::Actor> {
        self.event.get().and_then(Event::actor)
    }

    /// For a handover (`assignee_change`): `Some` with the email of the
    /// agent it went to, or `Some(None)` when it went to a bot, to nobody
    /// or to an agent without an email (nobody to wait a reply from).
    /// `None` for other events.
    pub fn handover_to_agent(&self) -> Option<Option<&str>> {
        let crate::Payload::AssigneeChange(change) = &self.event.get()?.payload else {
            return None;
        };
        Some(
            change
                .to
                .get()
                .filter(|to| to.kind() == crate::ActorKind::Agent)
                .and_then(crate::Actor::email),
        )
    }
}
