//! hookline's database layer: diesel over SQLite (embedded, the default)
//! and PostgreSQL from one schema, through one [`DbConnection`] enum; an
//! r2d2 pool; migrations embedded and run at start; one module per table.
//!
//! Diesel is blocking: async callers go through [`Ingestor`] (its own
//! threads) or `spawn_blocking`.

mod backend;
mod clock;
mod connection;
pub mod conversations;
pub mod directory;
mod error;
pub mod events;
mod gate;
pub mod health;
pub mod ingest;
pub mod migrations;
pub mod notifications;
pub mod overview;
mod prepare;
pub mod retention;
pub mod rules;
pub mod schema;
pub mod search;
pub mod sessions;
pub mod settings;
pub mod timers;
mod writer;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{Pool, PooledConnection};

pub use clock::{db_now, now, skew_process_clock};
pub use connection::{
    redact_url, write_transaction, Backend, DatabaseUrl, DbConnection, Manager, MultiBackend,
};
pub use diesel;
pub use error::StorageError;
pub use ingest::{IngestHook, NewlyStored, NoHook, StoreOutcome};
pub use prepare::{
    bounded, filed_time, prepare, prepare_text, prepare_unreadable, prepare_value, PreparedItem,
    MAX_INDEXED_BYTES,
};
pub use writer::Ingestor;

/// A pooled connection.
pub type Conn = PooledConnection<Manager>;

/// How long a request waits for a connection before the database counts as
/// unavailable (and ingest answers 503).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);

/// How hookline runs its database, beyond the URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// SQLite: the bound on the write-ahead log file, in bytes. The
    /// checkpointer resets the log whenever it passes a third of this, so that
    /// sustained ingest cannot grow it without end.
    pub sqlite_wal_limit_bytes: u64,
}

/// The default bound on the SQLite write-ahead log: 64 MiB.
pub const DEFAULT_SQLITE_WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

impl Default for Options {
    fn default() -> Options {
        Options {
            sqlite_wal_limit_bytes: DEFAULT_SQLITE_WAL_LIMIT_BYTES,
        }
    }
}

/// The database: a pool and which backend it is.
#[derive(Clone)]
pub struct Database {
    pool: Pool<Manager>,
    url: DatabaseUrl,
    options: Options,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.url.backend)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens the database `url` names (`sqlite://PATH`, `postgres://...`).
    /// For SQLite, creates the file's folder and switches the file to WAL.
    pub fn open(url: &str) -> Result<Database, StorageError> {
        Database::open_with(url, Options::default())
    }

    /// [`Database::open`] with `options`.
    pub fn open_with(url: &str, options: Options) -> Result<Database, StorageError> {
        let url = DatabaseUrl::parse(url).map_err(StorageError::Url)?;
        let max_size = match url.backend {
            Backend::Sqlite => {
                prepare_sqlite_file(&url.target, &options)?;
                8
            }
            Backend::Postgres => 16,
        };
        let pool = Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .connection_timeout(CONNECTION_TIMEOUT)
            // Failures reach the caller, who says what failed; the pool's
            // own log line would print each one a second time.
            .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
            // Connections are made on demand: opening never fails because
            // the first connection is slow; start-up work and one-shot
            // commands use a dedicated connection without the pool's
            // 3-second wait (meant for requests, which answer 503).
            .build_unchecked(Manager::new(url.clone(), options));
        Ok(Database { pool, url, options })
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// SQLite: the path of the write-ahead log file (`None` on PostgreSQL).
    pub fn wal_path(&self) -> Option<std::path::PathBuf> {
        (self.url.backend == Backend::Sqlite).then(|| format!("{}-wal", self.url.target).into())
    }

    /// SQLite: the size of the write-ahead log file in bytes (0 when there
    /// is none); `None` on PostgreSQL.
    pub fn wal_bytes(&self) -> Option<u64> {
        self.wal_path()
            .map(|path| std::fs::metadata(path).map_or(0, |m| m.len()))
    }

    pub fn backend(&self) -> Backend {
        self.url.backend
    }

    /// A connection from the pool.
    pub fn conn(&self) -> Result<Conn, StorageError> {
        Ok(self.pool.get()?)
    }

    /// A connection of its own, outside the pool (the writer keeps one, so
    /// that its SQLite page cache stays warm between transactions).
    pub fn dedicated_connection(&self) -> Result<DbConnection, StorageError> {
        Ok(connection::establish(&self.url, &self.options)?)
    }

    /// Runs pending migrations; returns how many ran.
    pub fn migrate(&self) -> Result<usize, StorageError> {
        let mut conn = self.dedicated_connection()?;
        migrations::run_pending(&mut conn)
    }
}

/// Creates the SQLite file's folder and sets WAL mode once, before the pool
/// opens several connections (each doing it at once would contend).
fn prepare_sqlite_file(path: &str, options: &Options) -> Result<(), StorageError> {
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|source| StorageError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
    }
    let mut conn = connection::establish(
        &DatabaseUrl {
            backend: Backend::Sqlite,
            target: path.to_owned(),
        },
        options,
    )?;
    conn.batch_execute("PRAGMA journal_mode = WAL;")?;
    Ok(())
}
