//! The evaluation context rules see: one JSON object whose roots are the
//! field roots of conditions (`type`, `message_type`, `payload`,
//! `conversation`, `account`, `bot`, `visitor`, `event`).

use chrono::NaiveDateTime;
use hookline_model::{Field, Item};
use hookline_storage::conversations::Conversation;
use hookline_storage::events::StoredEvent;
use serde_json::{json, Value};

/// What an event row says, whether just prepared or loaded back.
pub struct EventFacts<'a> {
    pub id: Option<i64>,
    pub event_type: &'a str,
    pub message_type: Option<&'a str>,
    pub summary: &'a str,
    pub occurred_at: NaiveDateTime,
    pub actor_type: Option<&'a str>,
    pub actor_email: Option<&'a str>,
    /// The item: typed (on ingest) or its JSON as stored.
    pub item: ItemSource<'a>,
}

impl<'a> EventFacts<'a> {
    /// The facts of a stored event (previews, the API's rule context),
    /// its item read from the stored JSON.
    pub fn stored(event: &'a StoredEvent) -> EventFacts<'a> {
        EventFacts {
            id: Some(event.id),
            event_type: &event.event_type,
            message_type: event.message_type.as_deref(),
            summary: &event.summary,
            occurred_at: event.occurred_at,
            actor_type: event.actor_type.as_deref(),
            actor_email: event.actor_email.as_deref(),
            item: ItemSource::Raw(&event.raw),
        }
    }
}

/// Where the item of an event comes from.
#[derive(Clone, Copy, Debug)]
pub enum ItemSource<'a> {
    /// Typed already (ingest): nothing is parsed again.
    Typed(Option<&'a Item>),
    /// The item JSON as stored (history, previews).
    Raw(&'a str),
}

/// The parts of an item rules see, as JSON (equal to what was received).
struct ItemParts {
    payload: Value,
    account_id: Option<Value>,
    account_key: Option<Value>,
    bot_id: Option<Value>,
    visitor: Value,
}

fn json_of<T: serde::Serialize>(field: &Field<T>) -> Option<Value> {
    match field {
        Field::Missing => None,
        Field::Typed(value) => serde_json::to_value(value).ok(),
        Field::Raw(value) => Some(value.clone()),
    }
}

impl ItemParts {
    /// From the typed item, serialising only the parts rules see.
    fn typed(item: Option<&Item>) -> ItemParts {
        let Some(item) = item else {
            return ItemParts::json(&Value::Null);
        };
        let payload = match &item.event {
            Field::Typed(event) => event.payload.to_value(),
            Field::Raw(event) => event.get("payload").cloned(),
            Field::Missing => None,
        };
        let (account_id, account_key, bot_id) = match &item.account {
            Field::Typed(account) => (
                json_of(&account.id),
                json_of(&account.key),
                match &account.bot {
                    Field::Typed(bot) => json_of(&bot.id),
                    Field::Raw(bot) => bot.get("id").cloned(),
                    Field::Missing => None,
                },
            ),
            Field::Raw(account) => (
                account.get("id").cloned(),
                account.get("key").cloned(),
                account.get("bot").and_then(|b| b.get("id")).cloned(),
            ),
            Field::Missing => (None, None, None),
        };
        ItemParts {
            payload: payload.unwrap_or(Value::Null),
            account_id,
            account_key,
            bot_id,
            visitor: json_of(&item.visitor).unwrap_or(Value::Null),
        }
    }

    /// From the item's JSON.
    fn json(item: &Value) -> ItemParts {
        let account = item.get("account");
        ItemParts {
            payload: item
                .get("event")
                .and_then(|e| e.get("payload"))
                .cloned()
                .unwrap_or(Value::Null),
            account_id: account.and_then(|a| a.get("id")).cloned(),
            account_key: account.and_then(|a| a.get("key")).cloned(),
            bot_id: account
                .and_then(|a| a.get("bot"))
                .and_then(|b| b.get("id"))
                .cloned(),
            visitor: item.get("visitor").cloned().unwrap_or(Value::Null),
        }
    }
}

/// The conversation projection as rules see it.
pub fn conversation_value(conversation: Option<&Conversation>) -> Value {
    let Some(c) = conversation else {
        return json!({
            "key": null, "id": null, "title": null, "status": null, "channel": null,
            "url": null, "bot_id": null, "account_id": null, "message_count": 0,
            "created_at": null, "closed_at": null, "last_event_at": null,
            "visitor": {"key": null, "name": null, "email": null},
            "assignee": {"type": null, "email": null, "label": null},
        });
    };
    let assignee_label = match (c.assignee_type.as_deref(), c.assignee_email.as_deref()) {
        (Some("user"), Some(email)) => Some(format!("agent {email}")),
        (Some(kind), Some(email)) => Some(format!("{kind} {email}")),
        (_, Some(email)) => Some(email.to_owned()),
        (Some(kind), None) => Some(kind.to_owned()),
        (None, None) => None,
    };
    json!({
        "key": c.key,
        "id": c.conversation_id,
        "title": c.title,
        "status": c.status,
        "channel": c.channel,
        "url": c.conversation_url,
        "bot_id": c.bot_id,
        "account_id": c.account_id,
        "message_count": c.message_count,
        "created_at": c.created_at.map(|t| t.to_string()),
        "closed_at": c.closed_at.map(|t| t.to_string()),
        "last_event_at": c.last_event_at.to_string(),
        "visitor": {"key": c.visitor_key, "name": c.visitor_name, "email": c.visitor_email},
        "assignee": {"type": c.assignee_type, "email": c.assignee_email, "label": assignee_label},
    })
}

/// The context for one event.
pub fn evaluation_context(event: &EventFacts<'_>, conversation: Option<&Conversation>) -> Value {
    let parts = match event.item {
        ItemSource::Typed(item) => ItemParts::typed(item),
        ItemSource::Raw(raw) => ItemParts::json(&serde_json::from_str(raw).unwrap_or(Value::Null)),
    };
    json!({
        "type": event.event_type,
        "message_type": event.message_type,
        "payload": parts.payload,
        "conversation": conversation_value(conversation),
        "account": {
            "id": parts.account_id,
            "key": parts.account_key,
        },
        "bot": {"id": parts.bot_id},
        "visitor": parts.visitor,
        "event": {
            "id": event.id,
            "type": event.event_type,
            "message_type": event.message_type,
            "summary": event.summary,
            "occurred_at": event.occurred_at.to_string(),
            "actor": {"type": event.actor_type, "email": event.actor_email},
        },
    })
}
