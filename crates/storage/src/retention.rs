//! Retention and erasure: deleting old data in small batches that
//! interleave with ingest, and everything about one visitor on request.
//!
//! Every batch is one statement in a transaction that takes the write lock
//! up front ([`write_transaction`]): on SQLite a read-then-write transaction
//! would fail with "database is locked" whenever ingest committed in
//! between. Each statement chooses its rows by subquery, never by a list of
//! ids bound as parameters (SQLite takes at most 32,766), and re-checks its
//! condition on the row it deletes, so that a row that became live since
//! it was chosen (a conversation with a new event) stays.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::{write_transaction, DbConnection};

/// Rows deleted per transaction.
pub const BATCH: i64 = 1_000;

/// Event ids swept per transaction when erasing a visitor (events have no
/// index by visitor: each transaction reads one bounded range of the
/// primary key instead of the whole table).
pub const ERASE_ID_RANGE: i64 = 20_000;

/// How many rows went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Deleted {
    pub events: usize,
    pub conversations: usize,
    pub notifications: usize,
}

/// `status IN (...)` of the notifications that will not go out again
/// (constants, not user input).
fn final_statuses() -> String {
    crate::notifications::FINAL
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How often a batch is tried again after PostgreSQL chose it as a
/// deadlock's victim.
const DEADLOCK_RETRIES: usize = 5;

/// [`write_transaction`], tried again when PostgreSQL aborts it to break a
/// deadlock. Two deletions of overlapping rows in different orders (an
/// erase and a purge, or either and ingest) can each wait for the other;
/// PostgreSQL then fails one with "deadlock detected", and the batch is
/// safe to run again: nothing of it was kept.
fn batch_transaction<T>(
    conn: &mut DbConnection,
    mut f: impl FnMut(&mut DbConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    let mut attempt = 0;
    loop {
        match write_transaction(conn, &mut f) {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("deadlock detected") && attempt < DEADLOCK_RETRIES =>
            {
                attempt += 1;
                tracing::info!(
                    attempt,
                    "maintenance batch chosen as a deadlock's victim; trying it again"
                );
                std::thread::sleep(std::time::Duration::from_millis(10 * attempt as u64));
            }
            other => return other,
        }
    }
}

/// Runs `statement` in its own write transaction until a run deletes fewer
/// than [`BATCH`] rows; the total.
fn in_batches(
    conn: &mut DbConnection,
    mut statement: impl FnMut(&mut DbConnection) -> QueryResult<usize>,
) -> QueryResult<usize> {
    let mut total = 0;
    loop {
        let n = batch_transaction(conn, &mut statement)?;
        total += n;
        if (n as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Deletes events that happened before `cutoff`, conversations last active
/// before it, and finished notifications (sent, dead, suppressed, skipped)
/// created before it, [`BATCH`] rows per transaction.
///
/// Each DELETE re-checks the cutoff on the row itself: a conversation that
/// received an event after the cutoff while the purge ran is kept, on
/// PostgreSQL too (where the re-check runs on the row's newest committed
/// version once a concurrent ingest releases it).
pub fn purge_before(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<Deleted> {
    let finals = final_statuses();
    let notifications = in_batches(conn, |conn| {
        // Never one still waiting to go out (queued, sending, failed).
        diesel::sql_query(format!(
            "DELETE FROM notifications WHERE id IN (\
                 SELECT id FROM notifications WHERE created_at < $1 AND status IN ({finals}) \
                 LIMIT {BATCH}) \
             AND created_at < $1 AND status IN ({finals})"
        ))
        .bind::<Timestamp, _>(cutoff)
        .execute(conn)
    })?;
    // Timers that are done (fired, cancelled, missed and summarised), and
    // closed episodes, older than the cutoff.
    in_batches(conn, |conn| {
        diesel::sql_query(format!(
            "DELETE FROM timers WHERE id IN (\
                 SELECT id FROM timers WHERE updated_at < $1 \
                 AND (status IN ('fired', 'cancelled') OR (status = 'missed' AND fired_at IS NOT NULL)) \
                 LIMIT {BATCH})"
        ))
        .bind::<Timestamp, _>(cutoff)
        .execute(conn)
    })?;
    diesel::sql_query("DELETE FROM timer_episodes WHERE is_open = FALSE AND updated_at < $1")
        .bind::<Timestamp, _>(cutoff)
        .execute(conn)?;
    let events = in_batches(conn, |conn| {
        diesel::sql_query(format!(
            "DELETE FROM events WHERE id IN (\
                 SELECT id FROM events WHERE occurred_at < $1 LIMIT {BATCH}) \
             AND occurred_at < $1"
        ))
        .bind::<Timestamp, _>(cutoff)
        .execute(conn)
    })?;
    let conversations = in_batches(conn, |conn| {
        diesel::sql_query(format!(
            "DELETE FROM conversations WHERE key IN (\
                 SELECT key FROM conversations WHERE last_event_at < $1 LIMIT {BATCH}) \
             AND last_event_at < $1"
        ))
        .bind::<Timestamp, _>(cutoff)
        .execute(conn)
    })?;
    Ok(Deleted {
        events,
        conversations,
        notifications,
    })
}

/// An arbitrary constant: the PostgreSQL advisory lock held by the one
/// process running retention at a time.
const RETENTION_LOCK: i64 = 0x686f_6f6b_7265;

/// [`purge_before`], unless another process sharing the database is
/// running it right now (`None` then). SQLite has one process.
pub fn purge_exclusive(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
) -> QueryResult<Option<Deleted>> {
    crate::backend::exclusive(conn, RETENTION_LOCK, |conn| purge_before(conn, cutoff))
}

#[derive(QueryableByName)]
struct IdRange {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    low: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    high: Option<i64>,
}

fn event_id_range(conn: &mut DbConnection) -> QueryResult<(i64, i64)> {
    let range: IdRange =
        diesel::sql_query("SELECT MIN(id) AS low, MAX(id) AS high FROM events").get_result(conn)?;
    Ok((range.low.unwrap_or(0), range.high.unwrap_or(0)))
}

/// The events of a visitor: theirs, and any in their conversations, with
/// ids in ($2, $3]. (SQLite numbers `$N` parameters in the order they first
/// appear: `$1` must come first.)
const VISITOR_EVENTS: &str = "(visitor_key = $1 OR conversation_key IN \
     (SELECT key FROM conversations WHERE visitor_key = $1)) AND id > $2 AND id <= $3";

/// Deletes everything stored about a visitor: their events, their
/// conversations, and the emails about either.
///
/// In many small transactions, so that ingest goes on meanwhile: events are
/// swept [`ERASE_ID_RANGE`] ids at a time (with the emails about them),
/// then the emails about the visitor's conversations and the conversations
/// [`BATCH`] rows at a time. Not atomic: if it stops half-way, running it
/// again finishes the job.
pub fn erase_visitor(conn: &mut DbConnection, visitor_key: &str) -> QueryResult<Deleted> {
    let mut deleted = Deleted::default();
    let (low, mut high) = event_id_range(conn)?;
    let mut from = low - 1;
    while from < high {
        let to = from + ERASE_ID_RANGE;
        let (notifications, events) = batch_transaction(conn, |conn| {
            let notifications = diesel::sql_query(format!(
                "DELETE FROM notifications WHERE event_id IN (SELECT id FROM events WHERE {VISITOR_EVENTS})"
            ))
            .bind::<Text, _>(visitor_key)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(to)
            .execute(conn)?;
            let events = diesel::sql_query(format!("DELETE FROM events WHERE {VISITOR_EVENTS}"))
                .bind::<Text, _>(visitor_key)
                .bind::<BigInt, _>(from)
                .bind::<BigInt, _>(to)
                .execute(conn)?;
            Ok::<_, diesel::result::Error>((notifications, events))
        })?;
        deleted.notifications += notifications;
        deleted.events += events;
        from = to;
        if from >= high {
            // Events stored meanwhile may be the visitor's too.
            high = event_id_range(conn)?.1;
        }
    }
    deleted.notifications += in_batches(conn, |conn| {
        diesel::sql_query(format!(
            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE conversation_key IN \
                 (SELECT key FROM conversations WHERE visitor_key = $1) LIMIT {BATCH})"
        ))
        .bind::<Text, _>(visitor_key)
        .execute(conn)
    })?;
    // The visitor's conversations' timers (time-based alerts) and episodes.
    for table in ["timers", "timer_episodes"] {
        diesel::sql_query(format!(
            "DELETE FROM {table} WHERE conversation_key IN \
                 (SELECT key FROM conversations WHERE visitor_key = $1)"
        ))
        .bind::<Text, _>(visitor_key)
        .execute(conn)?;
    }
    deleted.conversations += in_batches(conn, |conn| {
        diesel::sql_query(format!(
            "DELETE FROM conversations WHERE key IN \
                 (SELECT key FROM conversations WHERE visitor_key = $1 LIMIT {BATCH})"
        ))
        .bind::<Text, _>(visitor_key)
        .execute(conn)
    })?;
    Ok(deleted)
}
