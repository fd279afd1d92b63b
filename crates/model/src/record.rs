//! From an item as received to what is kept of it: the event's facts (its
//! columns), what it says about its conversation, and its typed form. Pure;
//! runs on the request thread so that the writer only writes.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde_json::value::RawValue;

use crate::conversation::{Created, Observation, CLOSED, OPEN};
use crate::field::Field;
use crate::item::{Item, UNRECOGNIZED};
use crate::visitor::{answers, VisitorDetails};
use crate::{dedupe_key_of_json, parse_timestamp, stored_dedupe_key, summary, Payload};

/// The facts stored for one event (one row of `events`).
#[derive(Clone, Debug, PartialEq)]
pub struct EventFacts {
    pub dedupe_key: String,
    pub event_type: String,
    pub message_type: Option<String>,
    pub conversation_key: Option<String>,
    pub conversation_id: Option<i64>,
    pub account_id: Option<i64>,
    pub bot_id: Option<i64>,
    pub visitor_key: Option<String>,
    pub visitor_id: Option<i64>,
    pub actor_type: Option<String>,
    pub actor_email: Option<String>,
    /// For a handover: the email of the agent it went to (as `actor_email`
    /// keeps emails), or `""` when it went to no agent; `None` for other
    /// events. The overview's reply times wait for this agent's reply.
    pub handed_to: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub received_at: NaiveDateTime,
    pub summary: String,
    /// The item's JSON exactly as received.
    pub raw: String,
}

/// One item, read: its facts, what it says about its conversation, and
/// its typed form (for rules; `None` when it is not an object).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub event: EventFacts,
    pub observation: Option<Observation>,
    pub item: Option<Item>,
}

/// Microseconds: what both databases keep.
pub fn db_time(at: DateTime<Utc>) -> NaiveDateTime {
    at.trunc_subsecs(6).naive_utc()
}

/// Text columns hold no NUL (PostgreSQL text cannot); the raw JSON keeps
/// it, escaped.
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

/// A serde_json message without its " at line L column C".
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Reads one item of a delivery from its JSON as received: typed in one
/// pass, its dedupe key from the same text, `raw` the text itself. An item
/// that cannot be read as JSON at all (a number out of range, say) is
/// kept as [`record_unreadable`] does.
pub fn read_item(raw: &RawValue, received_at: DateTime<Utc>) -> Record {
    read_item_text(raw.get(), received_at)
}

/// [`read_item`] from text.
pub fn read_item_text(text: &str, received_at: DateTime<Utc>) -> Record {
    let typed = serde_json::from_str::<Field<Item>>(text);
    let key = dedupe_key_of_json(text);
    match (typed, key) {
        (Ok(item), Ok(key)) => record(item, text.to_owned(), key, received_at),
        (Err(error), _) | (_, Err(error)) => {
            record_unreadable(text, &strip_position(&error.to_string()), received_at)
        }
    }
}

/// The key stored for an item kept before keys carried its time: `hash`
/// (the key it was stored under) behind the time its stored JSON says it
/// happened, as [`read_item_text`] keys the same item now. For the upgrade
/// of such keys; only the item's own time is read.
pub fn stored_dedupe_key_of_raw(raw: &str, hash: &str) -> String {
    // As read_item_text decides: a text it keeps as unreadable has no time.
    let said = match (
        serde_json::from_str::<Field<Item>>(raw),
        dedupe_key_of_json(raw),
    ) {
        (Ok(item), Ok(_)) => item.get().and_then(Item::occurred_at),
        _ => None,
    };
    stored_dedupe_key(said, hash)
}

/// An item that could not even be read as a JSON value: stored as
/// received, type `unrecognized`, at its receipt time, deduplicated by its
/// exact bytes.
pub fn record_unreadable(raw: &str, problem: &str, received_at: DateTime<Utc>) -> Record {
    use sha2::{Digest, Sha256};
    let received = db_time(received_at);
    let digest = Sha256::new()
        .chain_update(b"unreadable\0")
        .chain_update(raw.as_bytes())
        .finalize();
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let event = EventFacts {
        dedupe_key: stored_dedupe_key(None, &hash),
        event_type: UNRECOGNIZED.to_owned(),
        message_type: None,
        conversation_key: None,
        conversation_id: None,
        account_id: None,
        bot_id: None,
        visitor_key: None,
        visitor_id: None,
        actor_type: None,
        actor_email: None,
        handed_to: None,
        occurred_at: received,
        received_at: received,
        summary: clean(&format!("unreadable item, stored as received: {problem}")),
        raw: raw.to_owned(),
    };
    Record {
        event,
        observation: None,
        item: None,
    }
}

/// The record of a typed item, given its raw text and the hash of its
/// canonical JSON ([`crate::dedupe_key`]).
pub fn record(item: Field<Item>, raw: String, hash: String, received_at: DateTime<Utc>) -> Record {
    let received = db_time(received_at);
    let typed = item.get();
    let said = typed.and_then(Item::occurred_at);
    let occurred = filed_time(said.map(db_time), received);
    let actor = typed.and_then(Item::actor);
    let event = EventFacts {
        dedupe_key: stored_dedupe_key(said, &hash),
        event_type: bounded(clean(typed.map_or(UNRECOGNIZED, Item::event_type))),
        message_type: indexed(typed.and_then(Item::message_type)),
        conversation_key: indexed(typed.and_then(Item::conversation_key)),
        conversation_id: typed.and_then(Item::conversation_id),
        account_id: typed.and_then(Item::account_id),
        bot_id: typed.and_then(Item::bot_id),
        visitor_key: indexed(typed.and_then(Item::visitor_key)),
        visitor_id: typed.and_then(Item::visitor_id),
        actor_type: indexed(actor.and_then(|a| a.type_name())),
        actor_email: indexed(actor.and_then(|a| a.email())),
        handed_to: typed
            .and_then(Item::handover_to_agent)
            .map(|agent| indexed(agent).unwrap_or_default()),
        occurred_at: occurred,
        received_at: received,
        summary: clean(&summary(&item)),
        raw,
    };
    let observation = typed.and_then(|item| observe(item, &event));
    let item = match item {
        Field::Typed(item) => Some(item),
        _ => None,
    };
    Record {
        event,
        observation,
        item,
    }
}

/// What an event says about its conversation (`None` without a key).
pub fn observe(item: &Item, event: &EventFacts) -> Option<Observation> {
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
        }
        Payload::Message(_) => obs.is_message = true,
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
        Payload::Variables(_)
        | Payload::ConversationLabels(_)
        | Payload::Note(_)
        | Payload::Unknown(_) => {}
    }
    let details = VisitorDetails::from_answers(&answers(payload));
    obs.visitor_name = details.name.as_deref().and_then(|s| clean_opt(Some(s)));
    obs.visitor_email = details.email.as_deref().and_then(|s| clean_opt(Some(s)));
    Some(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    const NOTE: &str =
        r#"{"timestamp":"2026-11-30 10:00:00.250","event":{"type":"note","payload":{"note":"x"}}}"#;

    #[test]
    fn the_stored_key_is_the_said_time_then_the_hash() {
        let record = read_item_text(NOTE, at("2026-11-30T10:00:01Z"));
        let hash = dedupe_key_of_json(NOTE).unwrap();
        let micros = at("2026-11-30T10:00:00.250Z").timestamp_micros();
        assert_eq!(record.event.dedupe_key, format!("{micros:018}|{hash}"));
    }

    #[test]
    fn the_stored_key_does_not_depend_on_when_the_item_came() {
        // A day and a half ahead of its first receipt, the time is not
        // filed (implausible); re-sent two days later it is: same key.
        let future = r#"{"timestamp":"2026-12-02 00:00:00","event":{"type":"note","payload":{}}}"#;
        let first = read_item_text(future, at("2026-11-30T12:00:00Z"));
        let again = read_item_text(future, at("2026-12-02T12:00:00Z"));
        assert_ne!(first.event.occurred_at, again.event.occurred_at);
        assert_eq!(first.event.dedupe_key, again.event.dedupe_key);
        let untimed = r#"{"event":{"type":"note","payload":{}}}"#;
        let first = read_item_text(untimed, at("2026-11-30T12:00:00Z"));
        let again = read_item_text(untimed, at("2026-12-02T12:00:00Z"));
        assert_eq!(first.event.dedupe_key, again.event.dedupe_key);
        assert!(first.event.dedupe_key.starts_with('|'));
    }

    #[test]
    fn the_key_of_stored_raw_is_the_key_of_the_item_now() {
        let spaced = "{ \"event\": {\"payload\": {\"note\": \"x\"}, \"type\": \"note\"},\n \"timestamp\": \"2026-11-30 10:00:00.250\" }";
        for text in [
            NOTE,
            spaced,
            "[1,2]",
            r#"{"n":1e999}"#,
            "{\"timestamp\":\"1969-12-31 23:59:59\"}",
        ] {
            let now = read_item_text(text, at("2026-11-30T10:00:01Z"))
                .event
                .dedupe_key;
            let hash = now
                .split_once('|')
                .map(|(_, hash)| hash)
                .unwrap_or_default();
            assert_eq!(stored_dedupe_key_of_raw(text, hash), now, "{text}");
        }
    }
}
