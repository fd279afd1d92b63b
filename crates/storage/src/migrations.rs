//! Migrations per backend, embedded in the binary and run at start.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::{DbConnection, StorageError};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// An arbitrary constant: the PostgreSQL advisory lock that keeps several
/// hookline processes starting at once from migrating at the same time.
const PG_MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69;

fn migration_error(error: impl std::fmt::Display) -> StorageError {
    StorageError::Migration(error.to_string())
}

/// Runs the pending migrations, then finishes what one left to code;
/// returns how many ran.
pub fn run_pending(conn: &mut DbConnection) -> Result<usize, StorageError> {
    let pg = matches!(conn, DbConnection::Pg(_));
    if pg {
        conn.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
    }
    let result = run(conn, None).and_then(|ran| finish_dedupe_keys(conn).map(|()| ran));
    if pg {
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
    }
    result
}

/// Runs only the pending migrations older than `version`, as an older
/// hookline would have (for tests of an upgrade); returns how many ran.
pub fn run_pending_before(conn: &mut DbConnection, version: &str) -> Result<usize, StorageError> {
    run(conn, Some(version))
}

fn run(conn: &mut DbConnection, before: Option<&str>) -> Result<usize, StorageError> {
    match conn {
        DbConnection::Sqlite(c) => run_source(c, SQLITE, before),
        DbConnection::Pg(c) => run_source(c, POSTGRES, before),
    }
}

fn run_source<C, DB>(
    conn: &mut C,
    source: EmbeddedMigrations,
    before: Option<&str>,
) -> Result<usize, StorageError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    let Some(version) = before else {
        return conn
            .run_pending_migrations(source)
            .map(|done| done.len())
            .map_err(migration_error);
    };
    // Diesel's versions are the names' dates and numbers without dashes.
    let digits = |v: &str| v.replace('-', "");
    let before = digits(version);
    let mut pending = conn.pending_migrations(source).map_err(migration_error)?;
    pending.sort_by_key(|m| digits(&m.name().version().to_string()));
    let mut ran = 0;
    for migration in pending {
        if digits(&migration.name().version().to_string()) >= before {
            break;
        }
        conn.run_migration(&*migration).map_err(migration_error)?;
        ran += 1;
    }
    Ok(ran)
}

/// The setting migration `2026-12-01-000060` leaves for
/// [`finish_dedupe_keys`].
const KEYS_TO_FINISH: &str = "dedupe_keys_to_finish";

/// Stored keys the SQL could not give their item's time (events filed
/// under their receipt time: no time in the item, or one that was not
/// plausible when it came) get it here, from each stored item's JSON as
/// the model reads it now, in one transaction with the removal of the
/// setting that asks for it. A no-op (one read) once done.
fn finish_dedupe_keys(conn: &mut DbConnection) -> Result<(), StorageError> {
    use crate::schema::{events, settings};
    use diesel::prelude::*;

    if crate::settings::get(conn, KEYS_TO_FINISH)?.is_none() {
        return Ok(());
    }
    conn.transaction(|conn| {
        let mut after = 0_i64;
        loop {
            let rows: Vec<(i64, String, String)> = events::table
                .filter(events::id.gt(after))
                .filter(events::dedupe_key.not_like("%|%"))
                .order(events::id.asc())
                .limit(500)
                .select((events::id, events::dedupe_key, events::raw))
                .load(conn)?;
            let Some(&(last, _, _)) = rows.last() else {
                break;
            };
            after = last;
            for (id, hash, raw) in rows {
                let key = hookline_model::record::stored_dedupe_key_of_raw(&raw, &hash);
                diesel::update(events::table.find(id))
                    .set(events::dedupe_key.eq(key))
                    .execute(conn)?;
            }
        }
        diesel::delete(settings::table.find(KEYS_TO_FINISH)).execute(conn)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// True when every embedded migration has run.
pub fn is_current(conn: &mut DbConnection) -> Result<bool, StorageError> {
    match conn {
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE),
        DbConnection::Pg(c) => c.has_pending_migration(POSTGRES),
    }
    .map(|pending| !pending)
    .map_err(migration_error)
}

/// Reverts every migration (for tests that prove each `down.sql` undoes its
/// `up.sql`).
pub fn revert_all(conn: &mut DbConnection) -> Result<usize, StorageError> {
    match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE),
        DbConnection::Pg(c) => c.revert_all_migrations(POSTGRES),
    }
    .map(|done| done.len())
    .map_err(migration_error)
}

/// Reverts the newest migration that ran (for tests of an upgrade).
pub fn revert_last(conn: &mut DbConnection) -> Result<(), StorageError> {
    match conn {
        DbConnection::Sqlite(c) => c.revert_last_migration(SQLITE).map(|_| ()),
        DbConnection::Pg(c) => c.revert_last_migration(POSTGRES).map(|_| ()),
    }
    .map_err(migration_error)
}
