//! The group-commit writer: requests hand their items to writer threads,
//! which store everything waiting in one transaction and answer each
//! request only after its items committed. One fsync serves many requests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use tokio::sync::oneshot;

use crate::health::{supervise_thread, Component};
use crate::ingest::{store_group_with, IngestHook, StoreOutcome};
use crate::prepare::PreparedItem;
use crate::{Database, DbConnection, StorageError};

/// The most items one transaction takes before the next one starts.
const MAX_GROUP_ITEMS: usize = 2_000;

struct Job {
    items: Vec<PreparedItem>,
    reply: oneshot::Sender<Answer>,
}

/// The outcome, with the items handed back: they are freed on the
/// request's thread, not on the writer's, the one thread every event goes
/// through (a typed item is many small allocations).
struct Answer {
    result: Result<StoreOutcome, StorageError>,
    _items: Vec<PreparedItem>,
}

/// Hands items to the writer threads. Cheap to clone; the threads stop when
/// the last clone is dropped, after finishing what was queued.
#[derive(Clone)]
pub struct Ingestor {
    sender: Sender<Job>,
    /// The writer threads' health.
    pub health: Arc<Component>,
    /// Background helpers (the SQLite checkpointer) stop when the last
    /// clone is gone.
    _alive: Arc<()>,
}

impl Ingestor {
    /// Starts `writers` writer threads on `db` (one is right for SQLite,
    /// which has one writer at a time anyway; PostgreSQL gains from a few).
    pub fn start(
        db: Database,
        writers: usize,
        hook: Arc<dyn IngestHook>,
    ) -> Result<Ingestor, StorageError> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let reset = Arc::new(WalReset::default());
        let health = Component::new("ingest writer", writers.max(1), WRITER_STALL);
        for index in 0..writers.max(1) {
            let db = db.clone();
            let receiver = Arc::clone(&receiver);
            let hook = Arc::clone(&hook);
            let reset = Arc::clone(&reset);
            let health = Arc::clone(&health);
            std::thread::Builder::new()
                .name(format!("hookline-writer-{index}"))
                .spawn(move || {
                    supervise_thread(&health, || {
                        run(&db, &receiver, hook.as_ref(), &reset, &health)
                    })
                })
                .map_err(|source| StorageError::Io {
                    path: "writer thread".to_owned(),
                    source,
                })?;
        }
        let alive = Arc::new(());
        if crate::backend::checkpoints_own_log(db.backend()) {
            let db = db.clone();
            let alive = Arc::downgrade(&alive);
            std::thread::Builder::new()
                .name("hookline-checkpoint".to_owned())
                .spawn(move || checkpoint_loop(&db, &alive, &reset))
                .map_err(|source| StorageError::Io {
                    path: "checkpoint thread".to_owned(),
                    source,
                })?;
        }
        Ok(Ingestor {
            sender,
            health,
            _alive: alive,
        })
    }

    /// Stores one request's items; resolves once they are committed.
    pub async fn store(&self, items: Vec<PreparedItem>) -> Result<StoreOutcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        // Counted as waiting until answered, or until this future is dropped
        // (the client went away): a guard, so the count never leaks.
        let _waiting = Waiting::new(&self.health);
        self.sender
            .send(Job { items, reply })
            .map_err(|_| StorageError::WriterGone)?;
        let answer = answer.await.map_err(|_| StorageError::WriterGone)?;
        answer.result
    }
}

/// One request waiting for the writer, for its health.
struct Waiting<'a>(&'a Component);

impl<'a> Waiting<'a> {
    fn new(component: &'a Component) -> Waiting<'a> {
        component.pending(1);
        Waiting(component)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.pending(-1);
    }
}

/// Background work (search indexing) starts once no request has come for
/// this long after a group: under sustained ingest it waits for a pause,
/// so that it neither delays webhooks nor adds to the log the checkpointer
/// is trying to keep under its bound.
const IDLE_BEFORE_WORK: Duration = Duration::from_millis(50);

/// Between two batches of background work, the writer leaves the write
/// lock free this long (for the outbox worker's claims, maintenance).
const IDLE_WORK_GAP: Duration = Duration::from_millis(2);

/// When nothing has come for this long after a write, the writer gives its
/// page cache back (SQLite keeps up to 32 MB per connection): after a
/// burst the process returns to its idle size, and the next write reads
/// the pages it needs again (from the operating system's cache, in
/// microseconds).
const RELEASE_CACHE_AFTER: Duration = Duration::from_secs(1);

/// What the queue held.
enum Next {
    Group(Vec<Job>),
    /// Nothing waiting (only when not blocking).
    Empty,
    /// Every sender is gone: the writer stops.
    Closed,
}

/// Takes the next group of waiting jobs: the first (waiting for it when
/// `block`), then whatever else is queued, up to [`MAX_GROUP_ITEMS`].
fn next_group(receiver: &Mutex<Receiver<Job>>, block: bool, wait: Duration) -> Next {
    let receiver = receiver.lock().unwrap_or_else(PoisonError::into_inner);
    let first = if block {
        match receiver.recv() {
            Ok(job) => job,
            Err(_) => return Next::Closed,
        }
    } else {
        // A short wait rather than none: while it waits, other connections
        // (the outbox worker's claims, maintenance) get the write lock
        // between two batches of background work; a job arriving meanwhile
        // is taken at once.
        match receiver.recv_timeout(wait) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => return Next::Empty,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Next::Closed,
        }
    };
    let mut count = first.items.len();
    let mut group = vec![first];
    while count < MAX_GROUP_ITEMS {
        match receiver.try_recv() {
            Ok(job) => {
                count += job.items.len();
                group.push(job);
            }
            Err(_) => break,
        }
    }
    Next::Group(group)
}

/// No finished group for this long while requests wait: the writer is
/// stalled (`/readyz` says so).
const WRITER_STALL: Duration = Duration::from_secs(30);

/// A panic's message.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

fn run(
    db: &Database,
    receiver: &Mutex<Receiver<Job>>,
    hook: &dyn IngestHook,
    reset_wal: &WalReset,
    health: &Component,
) {
    let mut writer = Writer {
        db,
        conn: None,
        hook,
        search_paused_until: None,
        turns: crate::gate::Turns::default(),
    };
    // SQLite's search index is filled here, while nothing waits (see
    // `crate::search`); at start, in case events wait from before.
    let mut search_behind = crate::backend::search_indexed_behind(db.backend());
    // Whether the last thing done was a group (not background work).
    let mut just_wrote = false;
    // Whether the connection's page cache may hold pages since its last
    // release.
    let mut cache_filled = false;
    loop {
        let wait = if search_behind && just_wrote {
            IDLE_BEFORE_WORK
        } else if search_behind {
            IDLE_WORK_GAP
        } else {
            RELEASE_CACHE_AFTER
        };
        let block = !search_behind && !cache_filled;
        let group = match next_group(receiver, block, wait) {
            Next::Group(group) => group,
            Next::Closed => break,
            Next::Empty if !search_behind => {
                writer.release_cache();
                cache_filled = false;
                continue;
            }
            Next::Empty => {
                cache_filled = true;
                // Index batches write to the log too: a reset the
                // checkpointer asked for goes first.
                between_writes(&mut writer, reset_wal);
                search_behind = writer.index_search();
                just_wrote = false;
                continue;
            }
        };
        let started = std::time::Instant::now();
        let results = writer.write_contained(&group);
        health.progressed();
        tracing::trace!(
            requests = group.len(),
            micros = started.elapsed().as_micros() as u64,
            "group"
        );
        for (job, result) in group.into_iter().zip(results) {
            // The request may have gone (client disconnected): nothing to do.
            let _ = job.reply.send(Answer {
                result,
                _items: job.items,
            });
        }
        search_behind = crate::backend::search_indexed_behind(db.backend());
        just_wrote = true;
        cache_filled = true;
        between_writes(&mut writer, reset_wal);
    }
}

/// Between two write transactions (groups, or search-index batches) the
/// writer holds no lock: the one moment a reset of the log does not have
/// to win the write lock from it.
fn between_writes(writer: &mut Writer<'_>, reset_wal: &WalReset) {
    if let Some(DbConnection::Sqlite(conn)) = writer.conn.as_mut() {
        writer.turns.let_maintenance_in(conn);
    }
    reset_wal.groups.fetch_add(1, Ordering::Relaxed);
    if reset_wal.wanted.swap(false, Ordering::Relaxed) && !writer.reset_wal() {
        // Another checkpoint was running: try again after the next write.
        reset_wal.wanted.store(true, Ordering::Relaxed);
    }
}

/// A writer thread's connection: its own, kept across groups, dropped
/// after an error and opened again for the next group.
struct Writer<'a> {
    db: &'a Database,
    conn: Option<DbConnection>,
    hook: &'a dyn IngestHook,
    /// After a failed search-index batch, none until then.
    search_paused_until: Option<std::time::Instant>,
    /// SQLite: maintenance's turns between groups.
    turns: crate::gate::Turns,
}

impl Writer<'_> {
    /// [`Writer::write`], with a panic contained: the connection (maybe in
    /// the middle of a transaction) is dropped, which rolls it back, and
    /// each request is tried alone, so only the request that panics again
    /// fails (503: the platform retries it); the writer carries on.
    fn write_contained(&mut self, group: &[Job]) -> Vec<Result<StoreOutcome, StorageError>> {
        let attempt = |writer: &mut Self, jobs: &[Job]| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.write(jobs)))
        };
        match attempt(self, group) {
            Ok(results) => results,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(panic = %message, requests = group.len(), "writing a group panicked; storing each request alone");
                self.conn = None;
                group
                    .chunks(1)
                    .map(|job| match attempt(self, job) {
                        Ok(mut results) => results.pop().unwrap_or(Err(StorageError::WriterGone)),
                        Err(panic) => {
                            self.conn = None;
                            let message = panic_message(panic.as_ref());
                            tracing::error!(panic = %message, "storing a request panicked; it is answered 503");
                            Err(StorageError::Panicked(message))
                        }
                    })
                    .collect()
            }
        }
    }

    /// Writes a group in one transaction. If that fails and the group holds
    /// several requests, each is retried alone, so that one request the
    /// database refuses does not fail the others.
    fn write(&mut self, group: &[Job]) -> Vec<Result<StoreOutcome, StorageError>> {
        let all: Vec<&[PreparedItem]> = group.iter().map(|job| job.items.as_slice()).collect();
        match self.store(&all) {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(error) if group.len() == 1 => vec![Err(error)],
            Err(error) => {
                tracing::warn!(%error, requests = group.len(), "group commit failed; storing each request alone");
                all.iter()
                    .map(|items| {
                        self.store(&[items])
                            .and_then(|mut outcomes| outcomes.pop().ok_or(StorageError::WriterGone))
                    })
                    .collect()
            }
        }
    }

    /// Indexes one batch of events for search (SQLite), between groups.
    /// True when more may be waiting; false when the index has caught up,
    /// or failed (logged; tried again after the next group).
    fn index_search(&mut self) -> bool {
        if self
            .search_paused_until
            .is_some_and(|until| std::time::Instant::now() < until)
        {
            return false;
        }
        let Ok(conn) = self.connection() else {
            return false;
        };
        match crate::search::index_pending(conn, crate::search::INDEX_BATCH) {
            Ok(n) => {
                self.search_paused_until = None;
                n as i64 == crate::search::INDEX_BATCH
            }
            Err(error) => {
                tracing::warn!(%error, "search index: a batch failed; trying again in a minute (recent events are found by a scan meanwhile)");
                // Dropped: a new connection starts with synchronous = FULL.
                self.conn = None;
                self.search_paused_until =
                    Some(std::time::Instant::now() + Duration::from_secs(60));
                false
            }
        }
    }

    fn connection(&mut self) -> Result<&mut DbConnection, StorageError> {
        if self.conn.is_none() {
            let mut conn = self.db.dedicated_connection()?;
            crate::backend::prepare_writer_connection(&mut conn)?;
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or(StorageError::WriterGone)
    }

    /// Stores a group. A connection the database dropped (a restart, the
    /// network) is replaced and the group tried once more on the new one.
    /// Safe even if the first commit did land before the connection broke:
    /// the dedupe keys then make the retry store nothing twice (the items
    /// count as duplicates), and conversations and the outbox are only
    /// changed for items stored now.
    fn store(&mut self, requests: &[&[PreparedItem]]) -> Result<Vec<StoreOutcome>, StorageError> {
        let hook = self.hook;
        let mut result = store_group_with(self.connection()?, requests, hook);
        if result.is_err() && !self.connection_alive() {
            self.conn = None;
            result = store_group_with(self.connection()?, requests, hook);
        }
        match result {
            Ok(outcomes) => {
                self.hook.committed();
                Ok(outcomes)
            }
            Err(error) => {
                if !self.connection_alive() {
                    self.conn = None;
                }
                Err(error.into())
            }
        }
    }

    /// Checkpoints the whole log and truncates it (SQLite), waiting at most
    /// [`WRITER_RESET_WAIT`] for readers of the old log: commits wait
    /// meanwhile, so a slow reader costs a short pause, and the checkpointer
    /// asks again later. False when it
    /// could not start (another checkpoint held the checkpoint lock: SQLite
    /// answers that at once, without waiting).
    fn reset_wal(&mut self) -> bool {
        let Ok(conn) = self.connection() else {
            return true;
        };
        let started = std::time::Instant::now();
        match truncate_wal(conn, WRITER_RESET_WAIT) {
            Ok(busy) => {
                tracing::debug!(
                    busy,
                    millis = started.elapsed().as_millis() as u64,
                    "checkpoint: log reset by the writer"
                );
                true
            }
            Err(error) => {
                tracing::debug!(%error, "checkpoint: the writer could not reset the log yet");
                false
            }
        }
    }

    /// Frees the connection's page cache (SQLite; PostgreSQL's is the
    /// server's). A failure costs only the memory: logged, not fatal.
    fn release_cache(&mut self) {
        if let Some(DbConnection::Sqlite(conn)) = self.conn.as_mut() {
            if let Err(error) = conn.batch_execute("PRAGMA shrink_memory") {
                tracing::debug!(%error, "writer: could not release its page cache");
            }
        }
    }

    fn connection_alive(&mut self) -> bool {
        self.conn
            .as_mut()
            .is_some_and(|conn| conn.batch_execute("SELECT 1").is_ok())
    }
}

/// How often the checkpointer looks at the size of the write-ahead log.
const CHECKPOINT_TICK: Duration = Duration::from_millis(25);

/// How often committed WAL frames are copied back into the database file
/// (PASSIVE) when the log is under its bound. Often, so that a reset has
/// little left to copy while commits wait.
const PASSIVE_EVERY: Duration = Duration::from_millis(100);

/// How long a resetting checkpoint waits for readers of the old log before
/// it gives up until the next try. Commits wait meanwhile: kept short, so
/// that one slow reader does not stall ingest for long.
const RESET_BUSY_TIMEOUT: Duration = Duration::from_millis(1_000);

/// How long the writer's own reset waits for readers: commits wait too.
const WRITER_RESET_WAIT: Duration = Duration::from_millis(50);

/// How long the checkpointer leaves a wanted reset to the writer before it
/// does it itself (the writer is idle, or stuck).
const RESET_HANDOVER: Duration = Duration::from_millis(500);

/// Keeps the write-ahead log small, off the commit path.
///
/// Every [`PASSIVE_EVERY`], a PASSIVE checkpoint copies committed frames into
/// the database file without blocking anyone. That alone never makes the log
/// shorter under sustained ingest: SQLite only starts the log over when a
/// writer finds every frame copied, and a busy writer always has new ones.
/// So once the file passes a third of the bound
/// ([`crate::Options::sqlite_wal_limit_bytes`]), the checkpointer runs one
/// more passive checkpoint and asks the writer (through `reset_wal`) to run
/// a TRUNCATE checkpoint between two
/// groups: it copies what is left (little, after the passive ones), waits
/// for readers of the old log, and cuts the file to zero. Run from here it
/// rarely got the write lock at all, the busy writer taking it back after
/// each commit. If the writer has written nothing for [`RESET_HANDOVER`]
/// (no ingest), the checkpointer does it; if it is busy, it is asked again. (A RESTART checkpoint, cheaper, did
/// not keep the file bounded: the log did not always start over.)
/// Durability does not depend on any of it: a commit is durable once its
/// WAL frames are synced.
/// What the checkpointer and the writers share.
#[derive(Default)]
struct WalReset {
    /// Set by the checkpointer: the next writer between two groups resets
    /// the log.
    wanted: AtomicBool,
    /// Groups written so far: the checkpointer resets the log itself only
    /// when this stands still (the writer is idle); taking the write lock
    /// from a busy writer failed, and held the log growing meanwhile.
    groups: AtomicU64,
}

fn checkpoint_loop(db: &Database, alive: &Weak<()>, reset_wal: &WalReset) {
    let Some(wal) = db.wal_path() else {
        return;
    };
    let trigger = db.options().sqlite_wal_limit_bytes / 3;
    let mut conn: Option<DbConnection> = None;
    let mut last_passive = std::time::Instant::now();
    // When the writer was asked, and how many groups it had written then.
    let mut asked: Option<(std::time::Instant, u64)> = None;
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_TICK);
        let Some(c) = conn.as_mut() else {
            match open_checkpointer(db) {
                Ok(c) => conn = Some(c),
                Err(error) => tracing::warn!(%error, "checkpoint: cannot open the database"),
            }
            continue;
        };
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let groups = reset_wal.groups.load(Ordering::Relaxed);
        let result = match asked {
            _ if size <= trigger => {
                asked = None;
                if last_passive.elapsed() < PASSIVE_EVERY {
                    continue;
                }
                last_passive = std::time::Instant::now();
                checkpoint(c, "PASSIVE").map(|_| ())
            }
            None => {
                // Copy what can be copied without blocking anyone first:
                // the writer's reset then has only the last moment's frames
                // to copy.
                let result = checkpoint(c, "PASSIVE").map(|_| ());
                last_passive = std::time::Instant::now();
                asked = Some((last_passive, groups));
                reset_wal.wanted.store(true, Ordering::Relaxed);
                result
            }
            Some((since, then)) if since.elapsed() > RESET_HANDOVER => {
                if groups == then {
                    // The writer is idle: no lock to win from it.
                    tracing::debug!(wal_bytes = size, "checkpoint: resetting the idle log");
                    asked = None;
                    reset_wal.wanted.store(false, Ordering::Relaxed);
                    truncate_wal(c, RESET_BUSY_TIMEOUT).map(|_| ())
                } else {
                    // The writer is busy and its reset did not take (a
                    // reader held the old log): ask again.
                    asked = Some((std::time::Instant::now(), groups));
                    reset_wal.wanted.store(true, Ordering::Relaxed);
                    continue;
                }
            }
            Some(_) => continue,
        };
        if let Err(error) = result {
            tracing::warn!(%error, "checkpoint failed; will retry");
            conn = None;
        }
    }
}

fn open_checkpointer(db: &Database) -> Result<DbConnection, StorageError> {
    let mut conn = db.dedicated_connection()?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {};",
        RESET_BUSY_TIMEOUT.as_millis()
    ))?;
    Ok(conn)
}

/// What `PRAGMA wal_checkpoint` answers: `busy` is 1 when it could not
/// finish (a writer or a reader held on past the busy timeout).
#[derive(diesel::QueryableByName)]
struct CheckpointOutcome {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
}

fn checkpoint(conn: &mut DbConnection, mode: &str) -> diesel::QueryResult<CheckpointOutcome> {
    use diesel::RunQueryDsl;
    diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result(conn)
}

/// A TRUNCATE checkpoint waiting at most `wait` for readers, the
/// connection's own busy timeout restored after; whether it gave up (busy).
fn truncate_wal(conn: &mut DbConnection, wait: Duration) -> diesel::QueryResult<bool> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Timeout {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        timeout: i64,
    }
    let previous: Timeout = diesel::sql_query("PRAGMA busy_timeout").get_result(conn)?;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {};", wait.as_millis()))?;
    let outcome = checkpoint(conn, "TRUNCATE");
    conn.batch_execute(&format!("PRAGMA busy_timeout = {};", previous.timeout))?;
    Ok(outcome?.busy != 0)
}
