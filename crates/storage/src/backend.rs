//! Where SQLite and PostgreSQL differ, in one place: every other query
//! module is written once for both and asks here, by name, for what is not
//! the same (SQL text, row locks, how a group's rows are written, the
//! full-text index, cross-process locks).
//!
//! [`crate::connection`] (opening a connection, `BEGIN IMMEDIATE`) and
//! [`crate::migrations`] (one embedded set per backend) are the backend
//! layer themselves and keep their own matches.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::{Backend, DbConnection};

/// Runs `$body` with `$c` bound to the concrete connection, for the few
/// queries that do not compile through the enum (upserts, row locks,
/// multi-row inserts). The body is written once and compiled per backend.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::DbConnection::Pg($c) => $body,
            $crate::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Runs `|$q, $c| $body` with `$q` the query `$query` locked `FOR UPDATE`
/// on PostgreSQL (for the rest of the transaction), as it is on SQLite
/// (whose writer already holds the database lock), and `$c` the concrete
/// connection. The body is written once and compiled per backend.
#[macro_export]
macro_rules! lock_for_update {
    ($conn:expr, $query:expr, |$q:ident, $c:ident| $body:expr) => {
        match $conn {
            $crate::DbConnection::Pg($c) => {
                let $q = $crate::diesel::QueryDsl::for_update($query);
                $body
            }
            $crate::DbConnection::Sqlite($c) => {
                let $q = $query;
                $body
            }
        }
    };
}

/// How a group's rows are written: on PostgreSQL `batch` runs, with the
/// concrete connection (multi-row statements save a round trip per row,
/// and they only compile there); on SQLite `row_by_row` (nothing to save
/// in-process, one cached single-row statement beats a statement compiled
/// anew for every group size, and diesel's SQLite batch path fails on a
/// conflicting row that returns nothing).
pub fn batched<T>(
    conn: &mut DbConnection,
    batch: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    row_by_row: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    match conn {
        DbConnection::Pg(c) => batch(c),
        DbConnection::Sqlite(_) => row_by_row(conn),
    }
}

/// `SELECT .. AS now`: the database's clock, UTC, as a timestamp
/// (microseconds on PostgreSQL, milliseconds on SQLite).
pub fn now_sql(conn: &DbConnection) -> &'static str {
    match conn {
        DbConnection::Pg(_) => "SELECT (clock_timestamp() AT TIME ZONE 'UTC')::timestamp(6) AS now",
        DbConnection::Sqlite(_) => "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') AS now",
    }
}

/// What ends the subquery that picks the rows a worker claims: rows
/// another worker holds are skipped on PostgreSQL; SQLite has one writer
/// at a time, so its `UPDATE .. WHERE id IN (SELECT ..)` is atomic as it is.
pub fn skip_locked(conn: &DbConnection) -> &'static str {
    match conn {
        DbConnection::Pg(_) => " FOR UPDATE SKIP LOCKED",
        DbConnection::Sqlite(_) => "",
    }
}

/// `FROM <outer> <alias>` joined with the first row of `first` (a
/// `FROM .. WHERE .. ORDER BY .. LIMIT 1` over `events` correlated with
/// `outer_alias`), whose columns `columns` it selects. PostgreSQL takes a
/// lateral join (one seek per outer row; the SQLite form makes it hash-join
/// the whole table); SQLite has no LATERAL, and its plan for a join on the
/// subquery's id is the seek and a rowid lookup.
pub fn join_first_of_events(
    conn: &DbConnection,
    outer: &str,
    joined_alias: &str,
    columns: &str,
    first: &str,
) -> String {
    match conn {
        DbConnection::Pg(_) => format!(
            "FROM {outer} LEFT JOIN LATERAL (SELECT {columns} {first}) {joined_alias} ON TRUE"
        ),
        DbConnection::Sqlite(_) => format!(
            "FROM {outer} LEFT JOIN events {joined_alias} \
             ON {joined_alias}.id = (SELECT m.id {first})"
        ),
    }
}

/// The full-text index a backend keeps over events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullText {
    /// PostgreSQL: a `tsvector` column, filled on insert.
    TsVector,
    /// SQLite: the FTS5 table `events_search`, filled behind ingest by the
    /// writer up to the mark `search_progress.indexed_through`.
    Fts5Behind,
}

/// The full-text index `conn`'s database keeps.
pub fn full_text(conn: &DbConnection) -> FullText {
    match conn {
        DbConnection::Pg(_) => FullText::TsVector,
        DbConnection::Sqlite(_) => FullText::Fts5Behind,
    }
}

/// Whether the writer fills the search index behind ingest (SQLite's
/// FTS5 table, [`FullText::Fts5Behind`]); PostgreSQL indexes on insert.
pub fn search_indexed_behind(backend: Backend) -> bool {
    backend == Backend::Sqlite
}

/// Whether hookline checkpoints the database's write-ahead log itself, on
/// a thread of its own (SQLite); PostgreSQL manages its own.
pub fn checkpoints_own_log(backend: Backend) -> bool {
    backend == Backend::Sqlite
}

/// `occurred_at` and `id` as expressions no index can order by (same
/// values, same order), so that the planner reads a page from a search's
/// matches instead of walking the time index.
pub fn unindexed_order(conn: &DbConnection) -> (&'static str, &'static str) {
    match conn {
        DbConnection::Sqlite(_) => ("+events.occurred_at", "+events.id"),
        DbConnection::Pg(_) => ("events.occurred_at + interval '0 seconds'", "events.id + 0"),
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// Runs `f` unless another process sharing the database holds the lock
/// `key` right now (`None` then): a PostgreSQL session advisory lock, held
/// while `f` runs. SQLite has one process: `f` always runs.
pub fn exclusive<T>(
    conn: &mut DbConnection,
    key: i64,
    f: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
) -> QueryResult<Option<T>> {
    if matches!(conn, DbConnection::Sqlite(_)) {
        return f(conn).map(Some);
    }
    let locked: Locked = diesel::sql_query(format!("SELECT pg_try_advisory_lock({key}) AS locked"))
        .get_result(conn)?;
    if !locked.locked {
        return Ok(None);
    }
    let result = f(conn);
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({key})"))?;
    result.map(Some)
}

/// Settings of the ingest writer's own connection: on SQLite, no
/// checkpoints on the commit path (the checkpoint thread runs them).
pub fn prepare_writer_connection(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => c.batch_execute("PRAGMA wal_autocheckpoint = 0;"),
        DbConnection::Pg(_) => Ok(()),
    }
}
