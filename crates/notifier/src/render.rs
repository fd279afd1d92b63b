//! The context email templates render from: the event, its conversation,
//! the transcript so far, labels, notes, what the visitor told us, links.
//! Every key is always present (null when unknown) so that templates in
//! strict mode can test it with `{{#if}}`.

use chrono::NaiveDateTime;
use hookline_model::{Item, Payload};
use hookline_storage::conversations::{self, Conversation};
use hookline_storage::diesel::QueryResult;
use hookline_storage::events::{self, StoredEvent};
use hookline_storage::notifications::Notification;
use hookline_storage::DbConnection;
use serde_json::{json, Value};

use crate::context::conversation_value;

/// Messages shown in the transcript.
const TRANSCRIPT: i64 = 20;

/// The typed payload of a stored event.
fn payload_of(event: &StoredEvent) -> Option<Payload> {
    Item::from_raw(&event.raw).and_then(|item| item.event.get().map(|e| e.payload.clone()))
}

fn when(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn clock(at: NaiveDateTime) -> String {
    at.format("%H:%M:%S").to_string()
}

/// The events of a conversation before the notified one that templates
/// show, each oldest first.
#[derive(Default)]
pub struct History {
    /// The last messages (at most [`TRANSCRIPT`]).
    pub messages: Vec<StoredEvent>,
    /// True when there were more.
    pub truncated: bool,
    /// Recent notes and label changes.
    pub annotations: Vec<StoredEvent>,
    /// Where visitor details come from (creation, variables, messages).
    pub sources: Vec<StoredEvent>,
}

impl History {
    /// From a conversation's events, oldest first (a dry run's).
    pub fn from_events(events: &[StoredEvent]) -> History {
        let of = |types: &[&str]| -> Vec<StoredEvent> {
            events
                .iter()
                .filter(|e| types.contains(&e.event_type.as_str()))
                .cloned()
                .collect()
        };
        let mut messages = of(&["message"]);
        let truncated = messages.len() as i64 > TRANSCRIPT;
        let skip = messages.len().saturating_sub(TRANSCRIPT as usize);
        messages.drain(..skip);
        let mut annotations = of(&["note", "conversation_labels"]);
        let skip = annotations.len().saturating_sub(20);
        annotations.drain(..skip);
        History {
            messages,
            truncated,
            annotations,
            sources: of(&["conversation_create", "variables", "message"]),
        }
    }
}

/// The Reply-To a rule asks for over a template context: with
/// `reply_to = "visitor"`, the conversation's visitor email when it is an
/// address.
pub fn reply_to_of(reply_to: Option<&str>, context: &Value) -> Option<String> {
    if reply_to != Some("visitor") {
        return None;
    }
    context["conversation"]["visitor"]["email"]
        .as_str()
        .map(str::trim)
        .filter(|email| email.parse::<lettre::Address>().is_ok())
        .map(str::to_owned)
}

/// `1 message`, `2 messages`.
pub fn count_of(count: i64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The template context for notification `n`.
pub fn template_context(
    conn: &mut DbConnection,
    n: &Notification,
    public_url: Option<&str>,
) -> QueryResult<Value> {
    let event = match n.event_id {
        Some(id) => events::get(conn, id)?,
        None => None,
    };
    let conversation = match &n.conversation_key {
        Some(key) => conversations::get(conn, key)?,
        None => None,
    };
    // What a timer email is about (null in other emails).
    let timer = crate::timers::template_facts(conn, n)?;
    // An event's email shows the conversation up to its event; a timer's
    // up to when it fired (the row's creation, the same on every attempt):
    // the visitor may have written again since the start event.
    let until = match (&timer, &n.conversation_key, &event) {
        (Value::Object(_), Some(_), _) => n.created_at,
        (_, _, Some(e)) => e.occurred_at,
        _ => hookline_storage::now(),
    };
    let history = match &n.conversation_key {
        Some(key) => {
            let mut messages =
                events::recent_of_types(conn, key, &["message"], until, TRANSCRIPT + 1)?;
            let truncated = messages.len() as i64 > TRANSCRIPT;
            messages.truncate(TRANSCRIPT as usize);
            messages.reverse();
            let mut annotations =
                events::recent_of_types(conn, key, &["note", "conversation_labels"], until, 20)?;
            annotations.reverse();
            let mut sources = events::recent_of_types(
                conn,
                key,
                &["conversation_create", "variables", "message"],
                until,
                200,
            )?;
            sources.reverse();
            History {
                messages,
                truncated,
                annotations,
                sources,
            }
        }
        None => History::default(),
    };
    let mut context = build_context(
        n,
        event.as_ref(),
        conversation.as_ref(),
        &history,
        public_url,
    );
    context["timer"] = timer;
    Ok(context)
}

/// The template context from what was loaded (or, in a dry run, built
/// from the events given).
pub fn build_context(
    n: &Notification,
    event: Option<&StoredEvent>,
    conversation: Option<&Conversation>,
    history: &History,
    public_url: Option<&str>,
) -> Value {
    let until = event
        .map(|e| e.occurred_at)
        .unwrap_or_else(hookline_storage::now);
    let transcript: Vec<Value> = history.messages.iter().map(transcript_line).collect();
    let truncated = history.truncated;
    let labels: Vec<Value> = history
        .annotations
        .iter()
        .filter(|e| e.event_type == "conversation_labels")
        .map(label_line)
        .collect();
    let notes: Vec<Value> = history
        .annotations
        .iter()
        .filter(|e| e.event_type == "note")
        .map(note_line)
        .collect();
    let details = visitor_details(history.sources.iter());
    let item = event.and_then(|e| Item::from_raw(&e.raw));
    let payload = item
        .as_ref()
        .and_then(|i| i.event.get())
        .map(|e| &e.payload);
    let handover = match payload {
        Some(Payload::AssigneeChange(p)) => json!({
            "from": p.from.get().map(|a| a.label()).unwrap_or_else(|| "nobody".to_owned()),
            "to": p.to.get().map(|a| a.label()).unwrap_or_else(|| "nobody".to_owned()),
            "by": p.changed_by.get().and_then(|a| a.email()),
        }),
        _ => json!({"from": null, "to": null, "by": null}),
    };
    let status_change = match payload {
        Some(Payload::Status(p)) => json!({
            "status": p.status.text(),
            "word": if p.is_close() { "closed".to_owned() } else {
                format!("set to {}", p.status.text().unwrap_or("a new status"))
            },
            "by": p.closed_by.get().map(|a| a.who()),
        }),
        _ => json!({"status": null, "word": "changed", "by": null}),
    };
    let mut conversation_json = conversation_value(conversation);
    if let Value::Object(map) = &mut conversation_json {
        let count = conversation.map_or(0, |c| c.message_count);
        map.insert(
            "messages".into(),
            Value::from(count_of(count, "message", "messages")),
        );
    }
    if let (Some(c), Value::Object(map)) = (conversation, &mut conversation_json) {
        map.insert(
            "duration".into(),
            duration(c, until).map(Value::from).unwrap_or(Value::Null),
        );
    } else if let Value::Object(map) = &mut conversation_json {
        map.insert("duration".into(), Value::Null);
        map.insert("key".into(), json!(n.conversation_key));
    }
    let hookline_link = match (public_url, &n.conversation_key) {
        (Some(base), Some(key)) => Some(crate::links::conversation_page(base, key)),
        _ => None,
    };
    json!({
        "rule": {"name": n.rule_name},
        "recipient": n.recipient,
        "event": {
            "id": n.event_id,
            "type": event.map(|e| e.event_type.clone()),
            "message_type": event.and_then(|e| e.message_type.clone()),
            "summary": event.map(|e| e.summary.clone()),
            "occurred_at": event.map(|e| when(e.occurred_at)),
        },
        "payload": item.as_ref().and_then(|i| i.event.get()).map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).and_then(|e| e.get("payload").cloned()),
        "conversation": conversation_json,
        "handover": handover,
        "status_change": status_change,
        "transcript": transcript,
        "transcript_truncated": truncated,
        "transcript_count": TRANSCRIPT,
        "labels": labels,
        "notes": notes,
        "visitor_details": details,
        "links": {
            "swiftsell": conversation
                .and_then(|c| c.conversation_url.as_deref())
                .and_then(crate::links::web_link),
            "hookline": hookline_link,
        },
    })
}

fn duration(c: &Conversation, until: NaiveDateTime) -> Option<String> {
    let start = c.created_at.unwrap_or(c.first_event_at);
    let end = c.closed_at.unwrap_or(until);
    let seconds = (end - start).num_seconds();
    (seconds >= 0).then(|| crate::timers::human(seconds))
}

/// Message types that carry a file link (the only ones whose stored JSON
/// a transcript line reads).
const WITH_LINK: [&str; 5] = [
    "image",
    "audio",
    "video",
    "document",
    "file_upload.response",
];

fn transcript_line(event: &StoredEvent) -> Value {
    let carries_link = event
        .message_type
        .as_deref()
        .is_some_and(|kind| WITH_LINK.contains(&kind));
    let link = carries_link
        .then(|| Item::from_raw(&event.raw))
        .flatten()
        .and_then(|item| {
            let event = item.event.get()?.clone();
            let Payload::Message(m) = event.payload else {
                return None;
            };
            let message = m.message.get()?;
            message
                .media()
                .and_then(|media| media.link.text().map(str::to_owned))
        });
    // Only a web link becomes a link; any other URL is shown as text.
    let web = link
        .as_deref()
        .and_then(crate::links::web_link)
        .map(str::to_owned);
    let text = if web.is_none() { link } else { None };
    json!({
        "time": clock(event.occurred_at),
        "at": when(event.occurred_at),
        "sender": event.actor_email.clone().or(event.actor_type.clone()),
        "summary": event.summary,
        "link": web,
        "link_text": text,
    })
}

fn label_line(event: &StoredEvent) -> Value {
    let (action, ids) = match payload_of(event) {
        Some(Payload::ConversationLabels(p)) => (
            p.action.text().unwrap_or("changed").to_owned(),
            p.labels
                .get()
                .map(|ls| {
                    ls.iter()
                        .filter_map(|l| l.id.get().map(|id| format!("#{id}")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        ),
        _ => ("changed".to_owned(), String::new()),
    };
    json!({
        "time": when(event.occurred_at),
        "by": event.actor_email.clone().unwrap_or_else(|| "someone".to_owned()),
        "action": action,
        "ids": ids,
    })
}

fn note_line(event: &StoredEvent) -> Value {
    let text = match payload_of(event) {
        Some(Payload::Note(p)) => p.note.text().unwrap_or_default().to_owned(),
        _ => event.summary.clone(),
    };
    json!({
        "time": when(event.occurred_at),
        "by": event.actor_email.clone().unwrap_or_else(|| "someone".to_owned()),
        "text": text,
    })
}

/// What the visitor told us: form answers and visitor variables, newest
/// value per name, in the order first seen (the model's one rule,
/// [`hookline_model::visitor::told`]). Events oldest first.
pub fn visitor_details<'a>(events: impl Iterator<Item = &'a StoredEvent>) -> Vec<Value> {
    let payloads: Vec<Payload> = events.filter_map(payload_of).collect();
    hookline_model::visitor::told(payloads.iter())
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}
