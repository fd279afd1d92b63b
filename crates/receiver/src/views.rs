//! The JSON shapes of stored things, shared by the API and the pages.

use hookline_storage::conversations::Conversation;
use hookline_storage::events::StoredEvent;
use hookline_storage::notifications::Notification;
use serde_json::{json, Value};

use crate::params::rfc3339;

/// An event in a list.
pub fn event(e: &StoredEvent) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "message_type": e.message_type,
        "conversation_key": e.conversation_key,
        "occurred_at": rfc3339(e.occurred_at),
        "received_at": rfc3339(e.received_at),
        "actor": {"type": e.actor_type, "email": e.actor_email},
        "summary": e.summary,
    })
}

/// An event with everything stored about it, the raw JSON included.
pub fn event_detail(e: &StoredEvent) -> Value {
    let mut value = event(e);
    if let Value::Object(map) = &mut value {
        map.insert("conversation_id".into(), json!(e.conversation_id));
        map.insert("account_id".into(), json!(e.account_id));
        map.insert("bot_id".into(), json!(e.bot_id));
        map.insert("visitor_key".into(), json!(e.visitor_key));
        map.insert("visitor_id".into(), json!(e.visitor_id));
        map.insert("dedupe_key".into(), json!(e.dedupe_key));
        map.insert(
            "raw".into(),
            serde_json::from_str(&e.raw).unwrap_or(Value::String(e.raw.clone())),
        );
    }
    value
}

pub fn conversation(c: &Conversation) -> Value {
    let time = |t: Option<chrono::NaiveDateTime>| t.map(rfc3339);
    json!({
        "key": c.key,
        "conversation_id": c.conversation_id,
        "account_id": c.account_id,
        "bot_id": c.bot_id,
        "title": c.title,
        "channel": c.channel,
        "conversation_url": c.conversation_url,
        "visitor": {"key": c.visitor_key, "id": c.visitor_id, "name": c.visitor_name, "email": c.visitor_email},
        "status": c.status,
        "assignee": {"type": c.assignee_type, "email": c.assignee_email},
        "created_at": time(c.created_at),
        "first_event_at": rfc3339(c.first_event_at),
        "last_event_at": rfc3339(c.last_event_at),
        "closed_at": time(c.closed_at),
        "message_count": c.message_count,
        "event_count": c.event_count,
    })
}

pub fn notification(n: &Notification) -> Value {
    let time = |t: Option<chrono::NaiveDateTime>| t.map(rfc3339);
    json!({
        "id": n.id,
        "rule_id": n.rule_id,
        "rule": n.rule_name,
        "event_id": n.event_id,
        "conversation_key": n.conversation_key,
        "recipient": n.recipient,
        "template": n.template,
        "status": n.status,
        "reason": n.reason,
        "attempts": n.attempts,
        "next_attempt_at": time(n.next_attempt_at),
        "last_error": n.last_error,
        "smtp_response": n.smtp_response,
        "subject": n.subject,
        "created_at": rfc3339(n.created_at),
        "updated_at": rfc3339(n.updated_at),
        "sent_at": time(n.sent_at),
    })
}
