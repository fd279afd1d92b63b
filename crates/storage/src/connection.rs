//! One connection type over both backends, and the r2d2 manager that picks
//! the backend from the URL scheme.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

/// A connection to PostgreSQL or SQLite. PostgreSQL comes first, as the
/// derive tries variants in order when it establishes from a URL (we never
/// let it: [`Manager`] chooses by scheme).
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs `f` in a transaction that holds the write lock from its first
/// statement: `BEGIN IMMEDIATE` on SQLite, a plain transaction on
/// PostgreSQL (row locks are taken as rows are written).
///
/// SQLite's default `BEGIN` takes a read snapshot and asks for the write
/// lock only at the first write; if the ingest writer committed since the
/// snapshot, that upgrade fails at once with "database is locked", busy
/// timeout or not. Any transaction that reads before it writes (maintenance,
/// admin writes) must come through here. Waiting for the lock up front
/// honours the busy timeout: it queues behind the writer's current commit,
/// and the ingest writer lets it go first between two groups
/// (`crate::gate`), so it gets its turn under sustained ingest too.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    use diesel::connection::TransactionManager;
    type Manager = DbConnection;
    match conn {
        DbConnection::Sqlite(c) => crate::gate::begin_immediate(c)?,
        DbConnection::Pg(_) => {
            <Manager as TransactionManager<DbConnection>>::begin_transaction(conn)?
        }
    }
    // The rest as diesel's own `transaction`: the enum's transaction
    // manager hands each step to the connection's, which now knows a
    // transaction is open.
    match f(&mut *conn) {
        Ok(value) => {
            <Manager as TransactionManager<DbConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <Manager as TransactionManager<DbConnection>>::rollback_transaction(conn) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                Err(rollback) => Err(rollback.into()),
            }
        }
    }
}

/// Which database a URL points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        }
    }
}

/// A database URL split into its backend and what that backend's client
/// takes (the file path for SQLite, the URL itself for PostgreSQL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub backend: Backend,
    pub target: String,
}

impl DatabaseUrl {
    /// `postgres://...` or `postgresql://...` select PostgreSQL;
    /// `sqlite://PATH` or `sqlite:PATH` select SQLite at PATH.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl {
                backend: Backend::Postgres,
                target: url.to_owned(),
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"));
        match path {
            Some(path) if !path.is_empty() => Ok(DatabaseUrl {
                backend: Backend::Sqlite,
                target: path.to_owned(),
            }),
            _ => Err(format!(
                "unsupported database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
                redact_url(url)
            )),
        }
    }
}

/// The URL with any password replaced by `***`, for logs and banners.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

/// The r2d2 manager: opens the backend the URL names and sets SQLite's
/// per-connection pragmas.
#[derive(Clone, Debug)]
pub struct Manager {
    url: DatabaseUrl,
    options: crate::Options,
}

impl Manager {
    pub fn new(url: DatabaseUrl, options: crate::Options) -> Manager {
        Manager { url, options }
    }
}

/// How long a SQLite connection waits for the write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn establish(
    url: &DatabaseUrl,
    options: &crate::Options,
) -> Result<DbConnection, ConnectionError> {
    match url.backend {
        Backend::Postgres => PgConnection::establish(&url.target).map(DbConnection::Pg),
        Backend::Sqlite => {
            let mut conn = SqliteConnection::establish(&url.target)?;
            // synchronous=FULL: an acknowledged event survives power loss,
            // not only a crash of the process. journal_size_limit: whenever
            // the write-ahead log starts over, a file grown past the bound
            // is cut back to it (the checkpointer keeps it under; see
            // `writer::checkpoint_loop`).
            let pragmas = format!(
                "PRAGMA busy_timeout = {}; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -32768; PRAGMA mmap_size = 268435456; PRAGMA temp_store = MEMORY; \
                 PRAGMA journal_size_limit = {};",
                SQLITE_BUSY_TIMEOUT.as_millis(),
                options.sqlite_wal_limit_bytes
            );
            conn.batch_execute(&pragmas)
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(DbConnection::Sqlite(conn))
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        establish(&self.url, &self.options).map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_selects_the_backend() {
        let pg = DatabaseUrl::parse("postgres://u:p@h/db").unwrap();
        assert_eq!(pg.backend, Backend::Postgres);
        let sqlite = DatabaseUrl::parse("sqlite://hookline-data/hookline.db").unwrap();
        assert_eq!(sqlite.backend, Backend::Sqlite);
        assert_eq!(sqlite.target, "hookline-data/hookline.db");
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap().target,
            "/tmp/x.db"
        );
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("hookline.db").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }
}
