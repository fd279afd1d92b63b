//! The `conversations` projection: each conversation's current state,
//! updated in the same transaction as the events that change it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::conversations;
use crate::{per_backend, DbConnection};

/// A conversation's current state.
#[derive(
    Clone, Debug, PartialEq, Queryable, Selectable, Insertable, AsChangeset, serde::Serialize,
)]
#[diesel(table_name = conversations, treat_none_as_null = true)]
pub struct Conversation {
    pub key: String,
    pub conversation_id: Option<i64>,
    pub account_id: Option<i64>,
    pub bot_id: Option<i64>,
    pub visitor_key: Option<String>,
    pub visitor_id: Option<i64>,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub conversation_url: Option<String>,
    pub visitor_name: Option<String>,
    pub visitor_email: Option<String>,
    pub visitor_at: Option<NaiveDateTime>,
    /// `open` or `closed`.
    pub status: String,
    pub status_at: Option<NaiveDateTime>,
    pub assignee_type: Option<String>,
    pub assignee_email: Option<String>,
    pub assignee_at: Option<NaiveDateTime>,
    pub created_at: Option<NaiveDateTime>,
    pub first_event_at: NaiveDateTime,
    pub last_event_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    pub message_count: i64,
    pub event_count: i64,
}

pub const OPEN: &str = "open";
pub const CLOSED: &str = "closed";

/// What one event says about its conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    pub key: String,
    pub at: NaiveDateTime,
    pub conversation_id: Option<i64>,
    pub account_id: Option<i64>,
    pub bot_id: Option<i64>,
    pub visitor_key: Option<String>,
    pub visitor_id: Option<i64>,
    /// From `conversation_create`.
    pub created: Option<Created>,
    /// Visitor details captured (name, email), from variables and forms.
    pub visitor_name: Option<String>,
    pub visitor_email: Option<String>,
    /// `open` or `closed`, from `status`.
    pub status: Option<&'static str>,
    /// The new assignee (type, email), from `assignee_change` and
    /// `conversation_create`.
    pub assignee: Option<(Option<String>, Option<String>)>,
    pub is_message: bool,
}

/// What `conversation_create` says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Created {
    pub created_at: NaiveDateTime,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub conversation_url: Option<String>,
}

fn newer(candidate: NaiveDateTime, current: Option<NaiveDateTime>) -> bool {
    current.is_none_or(|current| candidate >= current)
}

impl Conversation {
    /// A conversation seen for the first time through `obs`.
    pub fn new(obs: &Observation) -> Conversation {
        let mut conversation = Conversation {
            key: obs.key.clone(),
            conversation_id: None,
            account_id: None,
            bot_id: None,
            visitor_key: None,
            visitor_id: None,
            title: None,
            channel: None,
            conversation_url: None,
            visitor_name: None,
            visitor_email: None,
            visitor_at: None,
            status: OPEN.to_owned(),
            status_at: None,
            assignee_type: None,
            assignee_email: None,
            assignee_at: None,
            created_at: None,
            first_event_at: obs.at,
            last_event_at: obs.at,
            closed_at: None,
            message_count: 0,
            event_count: 0,
        };
        conversation.apply(obs);
        conversation
    }

    /// Folds one event into the state. Events may arrive in any order:
    /// each group of fields takes the value of the newest event that set it.
    pub fn apply(&mut self, obs: &Observation) {
        self.event_count += 1;
        if obs.is_message {
            self.message_count += 1;
        }
        self.first_event_at = self.first_event_at.min(obs.at);
        self.last_event_at = self.last_event_at.max(obs.at);
        fill(&mut self.conversation_id, obs.conversation_id);
        fill(&mut self.account_id, obs.account_id);
        fill(&mut self.bot_id, obs.bot_id);
        fill(&mut self.visitor_key, obs.visitor_key.clone());
        fill(&mut self.visitor_id, obs.visitor_id);
        if let Some(created) = &obs.created {
            self.created_at = Some(created.created_at);
            replace(&mut self.title, created.title.clone());
            replace(&mut self.channel, created.channel.clone());
            replace(&mut self.conversation_url, created.conversation_url.clone());
        }
        if (obs.visitor_name.is_some() || obs.visitor_email.is_some())
            && newer(obs.at, self.visitor_at)
        {
            self.visitor_at = Some(obs.at);
            replace(&mut self.visitor_name, obs.visitor_name.clone());
            replace(&mut self.visitor_email, obs.visitor_email.clone());
        } else {
            fill(&mut self.visitor_name, obs.visitor_name.clone());
            fill(&mut self.visitor_email, obs.visitor_email.clone());
        }
        if let Some(status) = obs.status {
            if newer(obs.at, self.status_at) {
                self.status = status.to_owned();
                self.status_at = Some(obs.at);
                self.closed_at = (status == CLOSED).then_some(obs.at);
            }
        }
        if let Some((kind, email)) = &obs.assignee {
            // conversation_create's initial assignee loses to any handover.
            let at = obs
                .created
                .as_ref()
                .map_or(obs.at, |created| created.created_at.min(obs.at));
            if newer(at, self.assignee_at) {
                self.assignee_type = kind.clone();
                self.assignee_email = email.clone();
                self.assignee_at = Some(at);
            }
        }
    }
}

/// Sets a field that was unknown.
fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Overwrites a field with a newer known value.
fn replace<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// One conversation by key.
pub fn get(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Conversation>> {
    // No `LIMIT ?` (the key is unique anyway): SQLite re-compiled the
    // cached statement on every run when the limit was a bound parameter.
    let rows: Vec<Conversation> = per_backend!(conn, c => {
        conversations::table
            .find(key)
            .select(Conversation::as_select())
            .load(c)
    })?;
    Ok(rows.into_iter().next())
}

/// Folds a conversation's new events into its stored state, creating it
/// if new: one read and one write however many events. On PostgreSQL the
/// row is locked (`FOR UPDATE`) so that concurrent ingest in several
/// processes does not lose an update.
pub fn observe_all(conn: &mut DbConnection, observations: &[&Observation]) -> QueryResult<()> {
    let Some((first, rest)) = observations.split_first() else {
        return Ok(());
    };
    if let Some(mut current) = locked(conn, &first.key)? {
        for obs in observations {
            current.apply(obs);
        }
        return save(conn, &current);
    }
    let mut fresh = Conversation::new(first);
    for obs in rest {
        fresh.apply(obs);
    }
    let inserted = per_backend!(&mut *conn, c => {
        diesel::insert_into(conversations::table)
            .values(&fresh)
            .on_conflict(conversations::key)
            .do_nothing()
            .execute(c)
    })?;
    if inserted == 1 {
        return Ok(());
    }
    // Another process created it since we looked: fold into theirs.
    let Some(mut current) = locked(conn, &first.key)? else {
        return Err(diesel::result::Error::NotFound);
    };
    for obs in observations {
        current.apply(obs);
    }
    save(conn, &current)
}

/// Folds a group's observations, in order, into the conversations they
/// touch, and returns the state right after each observation (what rules
/// see for that event). The stored conversations are read with one query
/// (locked in key order on PostgreSQL), and each touched conversation is
/// written once.
pub fn observe_in_order(
    conn: &mut DbConnection,
    observations: &[&Observation],
) -> QueryResult<Vec<Conversation>> {
    use std::collections::{BTreeMap, HashMap};
    let mut keys: Vec<&str> = observations.iter().map(|o| o.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut stored: HashMap<String, Conversation> = HashMap::new();
    match conn {
        DbConnection::Pg(c) => {
            for chunk in keys.chunks(500) {
                let rows: Vec<Conversation> = conversations::table
                    .filter(conversations::key.eq_any(chunk))
                    .order(conversations::key.asc())
                    .select(Conversation::as_select())
                    .for_update()
                    .load(c)?;
                stored.extend(rows.into_iter().map(|c| (c.key.clone(), c)));
            }
        }
        // One cached statement per key: SQLite has no round trips to save,
        // and a statement with as many parameters as keys had to be
        // compiled anew for every group.
        DbConnection::Sqlite(_) => {
            for key in keys {
                if let Some(row) = get(conn, key)? {
                    stored.insert(row.key.clone(), row);
                }
            }
        }
    }
    let mut fresh: BTreeMap<&str, (Conversation, Vec<&Observation>)> = BTreeMap::new();
    let mut states = Vec::with_capacity(observations.len());
    for obs in observations {
        if let Some(current) = stored.get_mut(&obs.key) {
            current.apply(obs);
            states.push(current.clone());
        } else if let Some((current, seen)) = fresh.get_mut(obs.key.as_str()) {
            current.apply(obs);
            seen.push(obs);
            states.push(current.clone());
        } else {
            let current = Conversation::new(obs);
            states.push(current.clone());
            fresh.insert(obs.key.as_str(), (current, vec![obs]));
        }
    }
    let changed: Vec<Conversation> = stored.into_values().collect();
    save_all(conn, &changed)?;
    for (current, seen) in fresh.values() {
        let inserted = per_backend!(&mut *conn, c => {
            diesel::insert_into(conversations::table)
                .values(current)
                .on_conflict(conversations::key)
                .do_nothing()
                .execute(c)
        })?;
        if inserted == 0 {
            // Another process created it since we looked: fold into theirs.
            observe_all(conn, seen)?;
        }
    }
    Ok(states)
}

/// Writes conversations this transaction has locked. On PostgreSQL, one
/// statement per hundred rows (an upsert that always hits the existing,
/// locked rows) instead of a round trip each.
fn save_all(conn: &mut DbConnection, changed: &[Conversation]) -> QueryResult<()> {
    use conversations::dsl as c;
    use diesel::upsert::excluded;
    match conn {
        DbConnection::Pg(pg) => {
            for chunk in changed.chunks(100) {
                diesel::insert_into(conversations::table)
                    .values(chunk)
                    .on_conflict(c::key)
                    .do_update()
                    .set((
                        c::conversation_id.eq(excluded(c::conversation_id)),
                        c::account_id.eq(excluded(c::account_id)),
                        c::bot_id.eq(excluded(c::bot_id)),
                        c::visitor_key.eq(excluded(c::visitor_key)),
                        c::visitor_id.eq(excluded(c::visitor_id)),
                        c::title.eq(excluded(c::title)),
                        c::channel.eq(excluded(c::channel)),
                        c::conversation_url.eq(excluded(c::conversation_url)),
                        c::visitor_name.eq(excluded(c::visitor_name)),
                        c::visitor_email.eq(excluded(c::visitor_email)),
                        c::visitor_at.eq(excluded(c::visitor_at)),
                        c::status.eq(excluded(c::status)),
                        c::status_at.eq(excluded(c::status_at)),
                        c::assignee_type.eq(excluded(c::assignee_type)),
                        c::assignee_email.eq(excluded(c::assignee_email)),
                        c::assignee_at.eq(excluded(c::assignee_at)),
                        c::created_at.eq(excluded(c::created_at)),
                        c::first_event_at.eq(excluded(c::first_event_at)),
                        c::last_event_at.eq(excluded(c::last_event_at)),
                        c::closed_at.eq(excluded(c::closed_at)),
                        c::message_count.eq(excluded(c::message_count)),
                        c::event_count.eq(excluded(c::event_count)),
                    ))
                    .execute(pg)?;
            }
            Ok(())
        }
        DbConnection::Sqlite(_) => changed
            .iter()
            .try_for_each(|conversation| save(conn, conversation)),
    }
}

/// The stored conversation, locked for the rest of the transaction on
/// PostgreSQL (SQLite's writer already holds the database lock).
fn locked(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Conversation>> {
    let table = conversations::table.find(key);
    match conn {
        DbConnection::Pg(c) => table
            .select(Conversation::as_select())
            .for_update()
            .first(c)
            .optional(),
        DbConnection::Sqlite(_) => get(conn, key),
    }
}

/// Writes one conversation, on the backend's own connection: through the
/// `MultiConnection` wrapper the SQLite writer spent ~20 µs more per event
/// (measured with the ingest benchmark's writer CPU figure).
fn save(conn: &mut DbConnection, conversation: &Conversation) -> QueryResult<()> {
    per_backend!(conn, c => {
        diesel::update(conversations::table.find(&conversation.key))
            .set(conversation)
            .execute(c)
            .map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn at(second: i64) -> NaiveDateTime {
        DateTime::from_timestamp(1_700_000_000 + second, 0)
            .unwrap()
            .naive_utc()
    }

    fn obs(second: i64) -> Observation {
        Observation {
            key: "c".into(),
            at: at(second),
            ..Observation::default()
        }
    }

    #[test]
    fn late_older_status_does_not_override_newer() {
        let mut close = obs(10);
        close.status = Some(CLOSED);
        let mut reopen = obs(5);
        reopen.status = Some(OPEN);
        let mut conversation = Conversation::new(&close);
        conversation.apply(&reopen);
        assert_eq!(conversation.status, CLOSED);
        assert_eq!(conversation.closed_at, Some(at(10)));
        assert_eq!(conversation.first_event_at, at(5));
        assert_eq!(conversation.last_event_at, at(10));
    }

    #[test]
    fn newest_assignee_wins_whatever_the_arrival_order() {
        let mut first = obs(1);
        first.assignee = Some((Some("user".into()), Some("a@x".into())));
        let mut second = obs(2);
        second.assignee = Some((Some("user".into()), Some("b@x".into())));
        let mut forward = Conversation::new(&first);
        forward.apply(&second);
        let mut backward = Conversation::new(&second);
        backward.apply(&first);
        assert_eq!(forward.assignee_email.as_deref(), Some("b@x"));
        assert_eq!(backward.assignee_email.as_deref(), Some("b@x"));
    }

    #[test]
    fn messages_are_counted() {
        let mut message = obs(1);
        message.is_message = true;
        let mut conversation = Conversation::new(&message);
        conversation.apply(&obs(2));
        conversation.apply(&message);
        assert_eq!(conversation.message_count, 2);
        assert_eq!(conversation.event_count, 3);
    }
}

/// Filters of the conversation list.
#[derive(Clone, Debug, Default)]
pub struct ConversationFilter {
    /// `open` or `closed`.
    pub status: Option<String>,
    /// Assignee email.
    pub assignee: Option<String>,
    pub bot: Option<i64>,
    /// last_event_at >= since.
    pub since: Option<NaiveDateTime>,
    /// last_event_at < until.
    pub until: Option<NaiveDateTime>,
    /// Text in the key, title, visitor name or email.
    pub q: Option<String>,
}

/// Where the previous page ended: (last_event_at, key).
pub type ConversationCursor = (NaiveDateTime, String);

/// One page of conversations, most recently active first (keyset paging).
pub fn page(
    conn: &mut DbConnection,
    filter: &ConversationFilter,
    cursor: Option<ConversationCursor>,
    limit: i64,
) -> QueryResult<Vec<Conversation>> {
    use crate::events::{contains_pattern, lower};
    let mut query = conversations::table
        .select(Conversation::as_select())
        .into_boxed::<crate::MultiBackend>();
    if let Some(s) = &filter.status {
        query = query.filter(conversations::status.eq(s.clone()));
    }
    if let Some(a) = &filter.assignee {
        query = query
            .filter(lower(conversations::assignee_email.assume_not_null()).eq(a.to_lowercase()));
    }
    if let Some(b) = filter.bot {
        query = query.filter(conversations::bot_id.eq(b));
    }
    if let Some(since) = filter.since {
        query = query.filter(conversations::last_event_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(conversations::last_event_at.lt(until));
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.trim().is_empty()) {
        let pattern = contains_pattern(q.trim());
        query = query.filter(
            lower(conversations::key)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(conversations::title.assume_not_null())
                    .like(pattern.clone())
                    .escape('\\'))
                .or(lower(conversations::visitor_name.assume_not_null())
                    .like(pattern.clone())
                    .escape('\\'))
                .or(lower(conversations::visitor_email.assume_not_null())
                    .like(pattern)
                    .escape('\\')),
        );
    }
    if let Some((at, key)) = cursor {
        query = query.filter(
            conversations::last_event_at
                .lt(at)
                .or(conversations::last_event_at
                    .eq(at)
                    .and(conversations::key.lt(key))),
        );
    }
    query
        .order((
            conversations::last_event_at.desc(),
            conversations::key.desc(),
        ))
        .limit(limit)
        .load(conn)
}
