//! The evaluation context rules see: one JSON object whose roots are the
//! field roots of conditions (`type`, `message_type`, `payload`,
//! `conversation`, `account`, `bot`, `visitor`, `event`).

use chrono::NaiveDateTime;
use hookline_storage::conversations::Conversation;
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
    /// The item JSON as received.
    pub raw: &'a str,
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
    let item: Value = serde_json::from_str(event.raw).unwrap_or(Value::Null);
    let payload = item
        .get("event")
        .and_then(|e| e.get("payload"))
        .cloned()
        .unwrap_or(Value::Null);
    let account = item.get("account");
    json!({
        "type": event.event_type,
        "message_type": event.message_type,
        "payload": payload,
        "conversation": conversation_value(conversation),
        "account": {
            "id": account.and_then(|a| a.get("id")).cloned(),
            "key": account.and_then(|a| a.get("key")).cloned(),
        },
        "bot": {"id": account.and_then(|a| a.get("bot")).and_then(|b| b.get("id")).cloned()},
        "visitor": item.get("visitor").cloned().unwrap_or(Value::Null),
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
