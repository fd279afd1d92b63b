//! The group-commit writer: requests hand their items to writer threads,
//! which store everything waiting in one transaction and answer each
//! request only after its items committed. One fsync serves many requests.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use tokio::sync::oneshot;

use crate::health::{supervise_thread, Component};
use crate::ingest::{store_group_with, IngestHook, StoreOutcome};
use crate::prepare::PreparedItem;
use crate::{Backend, Database, DbConnection, StorageError};

/// The most items one transaction takes before the next one starts.
const MAX_GROUP_ITEMS: usize = 2_000;

struct Job {
    items: Vec<PreparedItem>,
    reply: oneshot::Sender<Result<StoreOutcome, StorageError>>,
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
        let health = Component::new("ingest writer", writers.max(1), WRITER_STALL);
        for index in 0..writers.max(1) {
            let db = db.clone();
            let receiver = Arc::clone(&receiver);
            let hook = Arc::clone(&hook);
            let health = Arc::clone(&health);
            std::thread::Builder::new()
                .name(format!("hookline-writer-{index}"))
                .spawn(move || {
                    supervise_thread(&health, || run(&db, &receiver, hook.as_ref(), &health))
                })
                .map_err(|source| StorageError::Io {
                    path: "writer thread".to_owned(),
                    source,
                })?;
        }
        let alive = Arc::new(());
        if db.backend() == Backend::Sqlite {
            let db = db.clone();
            let alive = Arc::downgrade(&alive);
            std::thread::Builder::new()
                .name("hookline-checkpoint".to_owned())
                .spawn(move || checkpoint_loop(&db, &alive))
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
        self.health.pending(1);
        let result = match self.sender.send(Job { items, reply }) {
            Ok(()) => answer.await.map_err(|_| StorageError::WriterGone),
            Err(_) => Err(StorageError::WriterGone),
        };
        self.health.pending(-1);
        result?
    }
}

/// Takes the next group of waiting jobs: blocks for the first, then takes
/// whatever else is queued, up to [`MAX_GROUP_ITEMS`].
fn next_group(receiver: &Mutex<Receiver<Job>>) -> Option<Vec<Job>> {
    let receiver = receiver.lock().unwrap_or_else(PoisonError::into_inner);
    let first = receiver.recv().ok()?;
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
    Some(group)
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

fn run(db: &Database, receiver: &Mutex<Receiver<Job>>, hook: &dyn IngestHook, health: &Component) {
    let mut writer = Writer {
        db,
        conn: None,
        hook,
    };
    while let Some(group) = next_group(receiver) {
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
            let _ = job.reply.send(result);
        }
    }
}

/// A writer thread's connection: its own, kept across groups, dropped
/// after an error and opened again for the next group.
struct Writer<'a> {
    db: &'a Database,
    conn: Option<DbConnection>,
    hook: &'a dyn IngestHook,
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

    fn connection(&mut self) -> Result<&mut DbConnection, StorageError> {
        if self.conn.is_none() {
            let mut conn = self.db.dedicated_connection()?;
            if let DbConnection::Sqlite(c) = &mut conn {
                // Checkpoints run on their own thread, off the commit path.
                c.batch_execute("PRAGMA wal_autocheckpoint = 0;")?;
            }
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

    fn connection_alive(&mut self) -> bool {
        self.conn
            .as_mut()
            .is_some_and(|conn| conn.batch_execute("SELECT 1").is_ok())
    }
}

/// How often the WAL is copied back into the SQLite database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies committed WAL frames into the database file in the background
/// (PASSIVE: never blocks the writer), so that commits only append to the
/// WAL. Durability does not depend on it: a commit is durable once its WAL
/// frames are synced.
fn checkpoint_loop(db: &Database, alive: &Weak<()>) {
    let mut conn: Option<DbConnection> = None;
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        let result = match &mut conn {
            Some(c) => c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);"),
            None => match db.dedicated_connection() {
                Ok(c) => {
                    conn = Some(c);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "checkpoint: cannot open the database");
                    continue;
                }
            },
        };
        if let Err(error) = result {
            tracing::warn!(%error, "checkpoint failed; will retry");
            conn = None;
        }
    }
}
