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

/// Runs the pending migrations; returns how many ran.
pub fn run_pending(conn: &mut DbConnection) -> Result<usize, StorageError> {
    match conn {
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(|done| done.len())
            .map_err(migration_error),
        DbConnection::Pg(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|done| done.len())
                .map_err(migration_error);
            c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
            result
        }
    }
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
