//! Retention and erasure: deleting old data in bounded batches (no long
//! locks, no hour-long transaction on a big table), and everything about
//! one visitor on request.

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::schema::{conversations, events, notifications};
use crate::DbConnection;

/// Rows deleted per transaction.
pub const BATCH: i64 = 1_000;

/// How many rows went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Deleted {
    pub events: usize,
    pub conversations: usize,
    pub notifications: usize,
}

/// Deletes events that happened before `cutoff`, conversations last active
/// before it, and finished notifications (sent, dead, suppressed, skipped)
/// created before it, `BATCH` rows per
/// transaction.
pub fn purge_before(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<Deleted> {
    let mut deleted = Deleted::default();
    loop {
        let n = conn.transaction(|conn| {
            // Never one still waiting to go out (queued, sending, failed).
            let ids: Vec<i64> = notifications::table
                .filter(notifications::created_at.lt(cutoff))
                .filter(notifications::status.eq_any(crate::notifications::FINAL))
                .select(notifications::id)
                .limit(BATCH)
                .load(conn)?;
            diesel::delete(notifications::table.filter(notifications::id.eq_any(&ids)))
                .execute(conn)
        })?;
        deleted.notifications += n;
        if (n as i64) < BATCH {
            break;
        }
    }
    loop {
        let n = conn.transaction(|conn| {
            let ids: Vec<i64> = events::table
                .filter(events::occurred_at.lt(cutoff))
                .select(events::id)
                .limit(BATCH)
                .load(conn)?;
            diesel::delete(events::table.filter(events::id.eq_any(&ids))).execute(conn)
        })?;
        deleted.events += n;
        if (n as i64) < BATCH {
            break;
        }
    }
    loop {
        let n = conn.transaction(|conn| {
            let keys: Vec<String> = conversations::table
                .filter(conversations::last_event_at.lt(cutoff))
                .select(conversations::key)
                .limit(BATCH)
                .load(conn)?;
            diesel::delete(conversations::table.filter(conversations::key.eq_any(&keys)))
                .execute(conn)
        })?;
        deleted.conversations += n;
        if (n as i64) < BATCH {
            break;
        }
    }
    Ok(deleted)
}

/// An arbitrary constant: the PostgreSQL advisory lock held by the one
/// process running retention at a time.
const RETENTION_LOCK: i64 = 0x686f_6f6b_7265;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// [`purge_before`], unless another process sharing the database is
/// running it right now (`None` then). SQLite has one process.
pub fn purge_exclusive(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
) -> QueryResult<Option<Deleted>> {
    if matches!(conn, DbConnection::Sqlite(_)) {
        return purge_before(conn, cutoff).map(Some);
    }
    let locked: Locked = diesel::sql_query(format!(
        "SELECT pg_try_advisory_lock({RETENTION_LOCK}) AS locked"
    ))
    .get_result(conn)?;
    if !locked.locked {
        return Ok(None);
    }
    let result = purge_before(conn, cutoff);
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({RETENTION_LOCK})"))?;
    result.map(Some)
}

/// Deletes everything stored about a visitor: their events, their
/// conversations, and the emails about either; one transaction.
pub fn erase_visitor(conn: &mut DbConnection, visitor_key: &str) -> QueryResult<Deleted> {
    conn.transaction(|conn| {
        let keys: Vec<String> = conversations::table
            .filter(conversations::visitor_key.eq(visitor_key))
            .select(conversations::key)
            .load(conn)?;
        let event_ids: Vec<i64> = events::table
            .filter(
                events::visitor_key
                    .eq(visitor_key)
                    .or(events::conversation_key.eq_any(&keys)),
            )
            .select(events::id)
            .load(conn)?;
        let notifications = diesel::delete(
            notifications::table.filter(
                notifications::conversation_key
                    .eq_any(&keys)
                    .or(notifications::event_id.eq_any(&event_ids)),
            ),
        )
        .execute(conn)?;
        let events =
            diesel::delete(events::table.filter(events::id.eq_any(&event_ids))).execute(conn)?;
        let conversations =
            diesel::delete(conversations::table.filter(conversations::key.eq_any(&keys)))
                .execute(conn)?;
        Ok(Deleted {
            events,
            conversations,
            notifications,
        })
    })
}
