//! The group-commit writer: requests hand their items to writer threads,
//! which store everything waiting in one transaction and answer each
//! request only after its items committed. One fsync serves many requests.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::ingest::{store_group, StoreOutcome};
use crate::prepare::PreparedItem;
use crate::{Database, StorageError};

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
}

impl Ingestor {
    /// Starts `writers` writer threads on `db` (one is right for SQLite,
    /// which has one writer at a time anyway; PostgreSQL gains from a few).
    pub fn start(db: Database, writers: usize) -> Result<Ingestor, StorageError> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..writers.max(1) {
            let db = db.clone();
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("hookline-writer-{index}"))
                .spawn(move || run(&db, &receiver))
                .map_err(|source| StorageError::Io {
                    path: "writer thread".to_owned(),
                    source,
                })?;
        }
        Ok(Ingestor { sender })
    }

    /// Stores one request's items; resolves once they are committed.
    pub async fn store(&self, items: Vec<PreparedItem>) -> Result<StoreOutcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Job { items, reply })
            .map_err(|_| StorageError::WriterGone)?;
        answer.await.map_err(|_| StorageError::WriterGone)?
    }
}

/// Takes the next group of waiting jobs: blocks for the first, then takes
/// whatever else is queued, up to [`MAX_GROUP_ITEMS`].
fn next_group(receiver: &Mutex<Receiver<Job>>) -> Option<Vec<Job>> {
    let receiver = receiver.lock().ok()?;
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

fn run(db: &Database, receiver: &Mutex<Receiver<Job>>) {
    while let Some(group) = next_group(receiver) {
        let results = write(db, &group);
        for (job, result) in group.into_iter().zip(results) {
            // The request may have gone (client disconnected): nothing to do.
            let _ = job.reply.send(result);
        }
    }
}

/// Writes a group in one transaction. If that fails and the group holds
/// several requests, each is retried alone, so that one request the
/// database refuses does not fail the others.
fn write(db: &Database, group: &[Job]) -> Vec<Result<StoreOutcome, StorageError>> {
    let all: Vec<&[PreparedItem]> = group.iter().map(|job| job.items.as_slice()).collect();
    match store(db, &all) {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(error) if group.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(%error, requests = group.len(), "group commit failed; storing each request alone");
            all.iter()
                .map(|items| {
                    store(db, &[items])
                        .and_then(|mut outcomes| outcomes.pop().ok_or(StorageError::WriterGone))
                })
                .collect()
        }
    }
}

fn store(db: &Database, requests: &[&[PreparedItem]]) -> Result<Vec<StoreOutcome>, StorageError> {
    let mut conn = db.conn()?;
    Ok(store_group(&mut conn, requests)?)
}
