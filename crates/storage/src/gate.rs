//! SQLite: a turn for maintenance between the ingest writer's groups.
//!
//! Under sustained ingest the writer takes SQLite's write lock back within
//! microseconds of each commit. Another connection asking for it
//! (retention, `purge`, `erase`, an admin's write, in this process or in a
//! `hookline` command) polls on SQLite's busy timeout and almost never
//! lands in that gap: it failed with "database is locked" after its ten
//! seconds whenever webhooks kept arriving.
//!
//! So such a transaction first takes an exclusive `flock` on a file beside
//! the database (`<database>-gate`, empty), asks for the write lock every
//! millisecond while it holds it, and lets go once it has the lock. The
//! writer checks that file between two groups (a shared `try_lock`, about a
//! microsecond) and, while someone holds it, waits for them to get their
//! lock (at most [`WRITER_YIELD`]). Maintenance and ingest then take turns
//! a batch at a time. A flock goes with the process that held it, so a
//! killed command leaves nothing behind; the file is only ever a lock.
//! Without the file (a database in memory, a folder it cannot be created
//! in) everything works as before, on the busy timeout alone.

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{QueryResult, RunQueryDsl};

/// The longest the writer waits, between two groups, for a transaction
/// that holds the gate to get its lock; it goes on after that.
const WRITER_YIELD: Duration = Duration::from_millis(250);

/// After a wait that ran out (a command stopped while it held the gate),
/// the writer does not look at the gate for this long.
const WRITER_IGNORES_STUCK_GATE: Duration = Duration::from_secs(5);

/// How often a transaction holding the gate asks for the write lock, and
/// the writer checks whether it got it.
const POLL: Duration = Duration::from_millis(1);

/// The gate file of the database `conn` is on, opened (created if need
/// be, private to its owner); None for a database in memory or when it
/// cannot be opened.
fn open(conn: &mut SqliteConnection) -> Option<File> {
    #[derive(diesel::QueryableByName)]
    struct Main {
        #[diesel(sql_type = diesel::sql_types::Text)]
        file: String,
    }
    let main: Main = diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result(conn)
        .ok()?;
    if main.file.is_empty() {
        return None;
    }
    let path = PathBuf::from(format!("{}-gate", main.file));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    // The database file's mode, as SQLite gives its -wal and -shm files,
    // so that every user who may write the database may use the gate.
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mode = std::fs::metadata(&main.file).map_or(0o600, |m| m.permissions().mode() & 0o666);
        options.mode(mode);
    }
    // A gate another user created may not be writable: a flock needs only
    // a file open for reading.
    match options.open(&path).or_else(|_| std::fs::File::open(&path)) {
        Ok(file) => Some(file),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "no maintenance gate: under sustained ingest, maintenance may wait for the write lock until its busy timeout");
            None
        }
    }
}

fn is_busy(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::DatabaseError(_, info)
        if info.message().contains("locked") || info.message().contains("busy"))
}

/// The connection's busy timeout, in milliseconds.
fn busy_timeout(conn: &mut SqliteConnection) -> QueryResult<i64> {
    #[derive(diesel::QueryableByName)]
    struct Timeout {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        timeout: i64,
    }
    let current: Timeout = diesel::sql_query("PRAGMA busy_timeout").get_result(conn)?;
    Ok(current.timeout)
}

/// `BEGIN IMMEDIATE`, waiting for the write lock as long as the
/// connection's busy timeout, with the ingest writer holding back between
/// its groups meanwhile (see the module documentation).
pub(crate) fn begin_immediate(conn: &mut SqliteConnection) -> QueryResult<()> {
    use diesel::connection::TransactionManager;
    let begin = |c: &mut SqliteConnection| {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
    };
    let Some(gate) = open(conn) else {
        return begin(conn);
    };
    let timeout = busy_timeout(conn)?;
    let deadline = Instant::now() + Duration::from_millis(timeout.max(0).unsigned_abs());
    // Other maintenance first, one at a time; without the gate in time, on
    // the busy timeout as before.
    loop {
        match gate.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(POLL),
            Err(_) => return begin(conn),
        }
    }
    conn.batch_execute("PRAGMA busy_timeout = 0")?;
    let result = loop {
        match begin(conn) {
            Err(error) if is_busy(&error) && Instant::now() < deadline => std::thread::sleep(POLL),
            other => break other,
        }
    };
    let restored = conn.batch_execute(&format!("PRAGMA busy_timeout = {timeout}"));
    drop(gate);
    if let Err(error) = restored {
        // A connection left without its busy timeout would fail every
        // write under contention: refuse this one loudly.
        tracing::warn!(%error, "could not restore the busy timeout after waiting at the maintenance gate");
        if result.is_ok() {
            let _ = <AnsiTransactionManager as TransactionManager<SqliteConnection>>::rollback_transaction(conn);
        }
        return Err(error);
    }
    result
}

/// The writer's side: between two groups, lets a transaction waiting at
/// the gate get the write lock first.
#[derive(Default)]
pub(crate) struct Turns {
    gate: Option<File>,
    opened: bool,
    ignore_until: Option<Instant>,
}

impl Turns {
    pub(crate) fn let_maintenance_in(&mut self, conn: &mut SqliteConnection) {
        if !self.opened {
            self.gate = open(conn);
            self.opened = true;
        }
        let Some(gate) = &self.gate else {
            return;
        };
        if self
            .ignore_until
            .is_some_and(|until| Instant::now() < until)
        {
            return;
        }
        let started = Instant::now();
        loop {
            match gate.try_lock_shared() {
                Ok(()) => {
                    let _ = gate.unlock();
                    return;
                }
                Err(TryLockError::WouldBlock) if started.elapsed() < WRITER_YIELD => {
                    std::thread::sleep(POLL)
                }
                Err(TryLockError::WouldBlock) => {
                    // Usually another maintenance transaction holds the
                    // write lock for long (an erase), and the one at the
                    // gate waits behind it: nothing to warn about.
                    tracing::debug!(
                        "a maintenance transaction held the gate for {} ms without taking the write lock; ingest goes on without waiting for {} s",
                        WRITER_YIELD.as_millis(),
                        WRITER_IGNORES_STUCK_GATE.as_secs()
                    );
                    self.ignore_until = Some(Instant::now() + WRITER_IGNORES_STUCK_GATE);
                    return;
                }
                Err(TryLockError::Error(error)) => {
                    tracing::warn!(%error, "maintenance gate unusable; ingest no longer yields to maintenance");
                    self.gate = None;
                    return;
                }
            }
        }
    }
}
