//! The `conversations` projection: each conversation's current state,
//! updated in the same transaction as the events that change it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::backend::batched;
use crate::schema::conversations;
use crate::{lock_for_update, per_backend, DbConnection};

pub use hookline_model::conversation::{Conversation, Created, Observation, CLOSED, OPEN};

/// A conversation as its row: the model's [`Conversation`], field for field.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = conversations, treat_none_as_null = true)]
pub struct ConversationRow {
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

macro_rules! same_fields {
    ($from:ident => $to:ident) => {
        impl From<$from> for $to {
            fn from(c: $from) -> $to {
                $to {
                    key: c.key,
                    conversation_id: c.conversation_id,
                    account_id: c.account_id,
                    bot_id: c.bot_id,
                    visitor_key: c.visitor_key,
                    visitor_id: c.visitor_id,
                    title: c.title,
                    channel: c.channel,
                    conversation_url: c.conversation_url,
                    visitor_name: c.visitor_name,
                    visitor_email: c.visitor_email,
                    visitor_at: c.visitor_at,
                    status: c.status,
                    status_at: c.status_at,
                    assignee_type: c.assignee_type,
                    assignee_email: c.assignee_email,
                    assignee_at: c.assignee_at,
                    created_at: c.created_at,
                    first_event_at: c.first_event_at,
                    last_event_at: c.last_event_at,
                    closed_at: c.closed_at,
                    message_count: c.message_count,
                    event_count: c.event_count,
                }
            }
        }
    };
}

same_fields!(ConversationRow => Conversation);
same_fields!(Conversation => ConversationRow);

fn row(conversation: &Conversation) -> ConversationRow {
    conversation.clone().into()
}

/// One conversation by key.
pub fn get(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Conversation>> {
    // No `LIMIT ?` (the key is unique anyway): SQLite re-compiled the
    // cached statement on every run when the limit was a bound parameter.
    let rows: Vec<ConversationRow> = per_backend!(conn, c => {
        conversations::table
            .find(key)
            .select(ConversationRow::as_select())
            .load(c)
    })?;
    Ok(rows.into_iter().next().map(Conversation::from))
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
            .values(row(&fresh))
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
    let stored: Vec<Conversation> = batched(
        conn,
        |c| {
            let mut stored = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(500) {
                let rows: Vec<ConversationRow> = conversations::table
                    .filter(conversations::key.eq_any(chunk))
                    .order(conversations::key.asc())
                    .select(ConversationRow::as_select())
                    .for_update()
                    .load(c)?;
                stored.extend(rows.into_iter().map(Conversation::from));
            }
            Ok(stored)
        },
        // One cached statement per key: a statement with as many
        // parameters as keys had to be compiled anew for every group.
        |conn| {
            let mut stored = Vec::with_capacity(keys.len());
            for key in &keys {
                stored.extend(get(conn, key)?);
            }
            Ok(stored)
        },
    )?;
    let mut stored: HashMap<String, Conversation> = stored
        .into_iter()
        .map(|conversation| (conversation.key.clone(), conversation))
        .collect();
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
    let created = insert_new(conn, fresh.values().map(|(current, _)| current))?;
    for (key, (_, seen)) in &fresh {
        if !created.contains(*key) {
            // Another process created it since we looked: fold into theirs.
            observe_all(conn, seen)?;
        }
    }
    Ok(states)
}

/// Inserts conversations not stored yet; returns the keys it inserted
/// (a key missing was created meanwhile by another process). PostgreSQL
/// takes one multi-row statement per hundred (23 columns each); SQLite a
/// cached single-row statement each (no round trips to save, and diesel's
/// SQLite batch path fails on a conflicting row that returns nothing).
fn insert_new<'a>(
    conn: &mut DbConnection,
    new: impl Iterator<Item = &'a Conversation>,
) -> QueryResult<std::collections::HashSet<String>> {
    let rows: Vec<ConversationRow> = new.map(row).collect();
    batched(
        conn,
        |c| {
            let mut created = std::collections::HashSet::with_capacity(rows.len());
            for chunk in rows.chunks(100) {
                let keys: Vec<String> = diesel::insert_into(conversations::table)
                    .values(chunk)
                    .on_conflict(conversations::key)
                    .do_nothing()
                    .returning(conversations::key)
                    .get_results(c)?;
                created.extend(keys);
            }
            Ok(created)
        },
        |conn| {
            let mut created = std::collections::HashSet::with_capacity(rows.len());
            for new in &rows {
                let inserted = per_backend!(&mut *conn, c => {
                    diesel::insert_into(conversations::table)
                        .values(new)
                        .on_conflict(conversations::key)
                        .do_nothing()
                        .execute(c)
                })?;
                if inserted == 1 {
                    created.insert(new.key.clone());
                }
            }
            Ok(created)
        },
    )
}

/// Writes conversations this transaction has locked. On PostgreSQL, one
/// statement per hundred rows (an upsert that always hits the existing,
/// locked rows) instead of a round trip each.
fn save_all(conn: &mut DbConnection, changed: &[Conversation]) -> QueryResult<()> {
    use conversations::dsl as c;
    use diesel::upsert::excluded;
    batched(
        conn,
        |pg| {
            for chunk in changed.chunks(100) {
                let rows: Vec<ConversationRow> = chunk.iter().map(row).collect();
                diesel::insert_into(conversations::table)
                    .values(rows)
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
        },
        |conn| {
            changed
                .iter()
                .try_for_each(|conversation| save(conn, conversation))
        },
    )
}

/// The stored conversation, locked for the rest of the transaction on
/// PostgreSQL (SQLite's writer already holds the database lock).
fn locked(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Conversation>> {
    // No `LIMIT` (the key is unique): see [`get`].
    let rows: Vec<ConversationRow> = lock_for_update!(
        conn,
        conversations::table
            .find(key)
            .select(ConversationRow::as_select()),
        |query, c| query.load(c)
    )?;
    Ok(rows.into_iter().next().map(Conversation::from))
}

/// Writes one conversation, on the backend's own connection: through the
/// `MultiConnection` wrapper the SQLite writer spent ~20 µs more per event
/// (measured with the ingest benchmark's writer CPU figure).
fn save(conn: &mut DbConnection, conversation: &Conversation) -> QueryResult<()> {
    per_backend!(conn, c => {
        diesel::update(conversations::table.find(&conversation.key))
            .set(row(conversation))
            .execute(c)
            .map(|_| ())
    })
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
        .select(ConversationRow::as_select())
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
        .load::<ConversationRow>(conn)
        .map(|rows| rows.into_iter().map(Conversation::from).collect())
}
