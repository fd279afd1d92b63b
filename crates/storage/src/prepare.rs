//! From a parsed item to the rows it becomes: the event row and what it
//! says about its conversation. Pure; runs on the request thread so that the
//! writer only writes.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use hookline_model::{
    dedupe_key, normalize_name, parse_timestamp, summary, value_text, Field, Item, MessageBody,
    Payload, Variable,
};
use serde_json::Value;

use crate::conversations::{Created, Observation, CLOSED, OPEN};
use crate::events::NewEvent;

/// An item ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedItem {
    pub event: NewEvent,
    pub observation: Option<Observation>,
}

/// Microseconds: what both backends keep.
fn db_time(at: DateTime<Utc>) -> NaiveDateTime {
    at.trunc_subsecs(6).naive_utc()
}

/// PostgreSQL text cannot hold NUL; drop it from the indexed columns (the
/// raw JSON keeps it, escaped).
fn clean(text: &str) -> String {
    text.replace('\0', "")
}

fn clean_opt(text: Option<&str>) -> Option<String> {
    text.map(clean).filter(|s| !s.is_empty())
}

/// The longest value an indexed text column holds, in bytes. PostgreSQL
/// refuses index rows over ~2.7 KB; a longer type or key is stored as its
/// first 200 bytes, `…` and 16 hex digits of its SHA-256 (the same value
/// always gives the same form; the full value stays in `raw`).
pub const MAX_INDEXED_BYTES: usize = 256;

/// `text` bounded to [`MAX_INDEXED_BYTES`].
pub fn bounded(text: String) -> String {
    if text.len() <= MAX_INDEXED_BYTES {
        return text;
    }
    use sha2::{Digest, Sha256};
    let mut cut = 200;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}…{hex}", &text[..cut])
}

fn indexed(text: Option<&str>) -> Option<String> {
    clean_opt(text).map(bounded)
}

/// The earliest event time taken from a payload; before it, the receipt
/// time is used (the payload's time stays in `raw`).
fn earliest() -> NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// How far ahead of its receipt an event may say it happened.
const MAX_AHEAD: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// The time an event is filed under: the payload's, when it is plausible
/// (from 2000 to a day after receipt); otherwise the receipt time, so
/// that a year-9999 or year-0 timestamp neither pins an event to the top
/// of every list nor escapes time filters and retention.
pub fn filed_time(said: Option<NaiveDateTime>, received: NaiveDateTime) -> NaiveDateTime {
    let latest = received.checked_add_signed(MAX_AHEAD).unwrap_or(received);
    said.filter(|at| *at >= earliest() && *at <= latest)
        .unwrap_or(received)
}

/// Prepares an item that could not even be read as a JSON value (a number
/// out of range, say): stored as received, type `unrecognized`, at its
/// receipt time, deduplicated by its exact bytes.
pub fn prepare_unreadable(raw: &str, problem: &str, received_at: DateTime<Utc>) -> PreparedItem {
    use sha2::{Digest, Sha256};
    let received = db_time(received_at);
    let digest = Sha256::new()
        .chain_update(b"unreadable\0")
        .chain_update(raw.as_bytes())
        .finalize();
    let event = NewEvent {
        dedupe_key: digest.iter().map(|b| format!("{b:02x}")).collect(),
        event_type: hookline_model::UNRECOGNIZED.to_owned(),
        message_type: None,
        conversation_key: None,
        conversation_id: None,
        account_id: None,
        bot_id: None,
        visitor_key: None,
        visitor_id: None,
        actor_type: None,
        actor_email: None,
        occurred_at: received,
        received_at: received,
        summary: clean(&format!("unreadable item, stored as received: {problem}")),
        raw: raw.to_owned(),
    };
    PreparedItem {
        event,
        observation: None,
    }
}

/// Prepares one item of a delivery received at `received_at`, from its
/// JSON as received (what the webhook does: the item is typed once and
/// its raw JSON is not rebuilt from the typed form).
pub fn prepare_value(raw: &Value, received_at: DateTime<Utc>) -> PreparedItem {
    prepare_parsed(&Field::from_ref(raw), raw, received_at)
}

/// Prepares an item already typed.
pub fn prepare(item: &Field<Item>, received_at: DateTime<Utc>) -> PreparedItem {
    let raw = serde_json::to_value(item).unwrap_or(Value::Null);
    prepare_parsed(item, &raw, received_at)
}

fn prepare_parsed(
    item: &Field<Item>,
    raw_value: &Value,
    received_at: DateTime<Utc>,
) -> PreparedItem {
    let raw = serde_json::to_string(raw_value).unwrap_or_else(|_| raw_value.to_string());
    let received = db_time(received_at);
    let typed = item.get();
    let occurred = filed_time(typed.and_then(Item::occurred_at).map(db_time), received);
    let actor = typed.and_then(Item::actor);
    let event = NewEvent {
        dedupe_key: dedupe_key(raw_value),
        event_type: bounded(clean(
            typed.map_or(hookline_model::UNRECOGNIZED, Item::event_type),
        )),
        message_type: indexed(typed.and_then(Item::message_type)),
        conversation_key: indexed(typed.and_then(Item::conversation_key)),
        conversation_id: typed.and_then(Item::conversation_id),
        account_id: typed.and_then(Item::account_id),
        bot_id: typed.and_then(Item::bot_id),
        visitor_key: indexed(typed.and_then(Item::visitor_key)),
        visitor_id: typed.and_then(Item::visitor_id),
        actor_type: indexed(actor.and_then(|a| a.type_name())),
        actor_email: indexed(actor.and_then(|a| a.email())),
        occurred_at: occurred,
        received_at: received,
        summary: clean(&summary(item)),
        raw,
    };
    let observation = typed.and_then(|item| observe(item, &event));
    PreparedItem { event, observation }
}

fn observe(item: &Item, event: &NewEvent) -> Option<Observation> {
    let mut obs = Observation {
        key: event.conversation_key.clone()?,
        at: event.occurred_at,
        conversation_id: event.conversation_id,
        account_id: event.account_id,
        bot_id: event.bot_id,
        visitor_key: event.visitor_key.clone(),
        visitor_id: event.visitor_id,
        ..Observation::default()
    };
    let Some(payload) = item.event.get().map(|e| &e.payload) else {
        return Some(obs);
    };
    let mut details = VisitorDetails::default();
    match payload {
        Payload::ConversationCreate(p) => {
            obs.created = Some(Created {
                created_at: p
                    .created_at
                    .text()
                    .and_then(parse_timestamp)
                    .map(db_time)
                    .unwrap_or(event.occurred_at),
                title: clean_opt(p.title.text()),
                channel: p.channel_name().as_deref().and_then(|c| clean_opt(Some(c))),
                // Shown as a link: only web addresses, never javascript: and the like.
                conversation_url: clean_opt(p.variable_text("conversation_url"))
                    .filter(|url| url.starts_with("https://") || url.starts_with("http://")),
            });
            if let Some(actor) = p.assigned_to_user.get() {
                obs.assignee = Some((clean_opt(actor.type_name()), clean_opt(actor.email())));
            }
            if p.is_closed.get().and_then(|f| f.as_bool()) == Some(true) {
                obs.status = Some(CLOSED);
            }
            details.offer_variables(p.variables.get());
        }
        Payload::Message(p) => {
            obs.is_message = true;
            match p.message.get().map(|m| &m.body) {
                Some(MessageBody::FormResponse(form)) => {
                    for field in form
                        .payload
                        .get()
                        .and_then(|f| f.fields.get())
                        .into_iter()
                        .flatten()
                    {
                        let value = field.value.get().map(value_text);
                        let label = field.label.text().unwrap_or_default();
                        let variable = field
                            .variable
                            .text()
                            .map(normalize_name)
                            .unwrap_or_default();
                        let kind = field.kind.text().unwrap_or_default();
                        details.offer(&[label, variable, kind], value);
                    }
                }
                Some(MessageBody::AppointmentBookingResponse(booking)) => {
                    details.offer_variables(booking.payload.get().and_then(|b| b.variables.get()));
                }
                _ => {}
            }
        }
        Payload::Status(p) => {
            obs.status = Some(if p.is_close() { CLOSED } else { OPEN });
        }
        Payload::AssigneeChange(p) => {
            let to = p.to.get();
            obs.assignee = Some((
                clean_opt(to.and_then(|a| a.type_name())),
                clean_opt(to.and_then(|a| a.email())),
            ));
        }
        Payload::Variables(p) => details.offer_variables(p.variables.get()),
        Payload::ConversationLabels(_) | Payload::Note(_) | Payload::Unknown(_) => {}
    }
    obs.visitor_name = details.name;
    obs.visitor_email = details.email;
    Some(obs)
}

/// The visitor's name and email, picked out of variables and form answers
/// by their names (`visitor_name`, `$user.info.email`, a field labelled
/// "Email" or of type `email`).
#[derive(Default)]
struct VisitorDetails {
    name: Option<String>,
    email: Option<String>,
}

impl VisitorDetails {
    fn offer_variables(&mut self, variables: Option<&Vec<Variable>>) {
        for variable in variables.into_iter().flatten() {
            let name = variable.display_name().unwrap_or_default();
            self.offer(&[&name], variable.value.get().map(value_text));
        }
    }

    fn offer(&mut self, names: &[&str], value: Option<String>) {
        let Some(value) = value.map(|v| clean(v.trim())).filter(|v| !v.is_empty()) else {
            return;
        };
        let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let is_email = names.iter().any(|n| n.contains("email") || n == "e-mail");
        let is_name = names.iter().any(|n| {
            matches!(
                n.as_str(),
                "name" | "visitor_name" | "full_name" | "fullname" | "contact_name"
            ) || n.ends_with(".name")
        });
        if is_email && value.contains('@') {
            self.email = Some(value);
        } else if is_name && self.name.is_none() {
            self.name = Some(value);
        }
    }
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
}
