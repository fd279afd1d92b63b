//! Storing deliveries: one transaction for the items of one or several
//! requests (group commit), each item stored once.
//!
//! Per group: the events inserted (conflicting dedupe keys skipped), then
//! the touched conversations read with one query (locked in key order on
//! PostgreSQL, so that concurrent groups cannot deadlock on them), the new
//! events folded in in order (the hooks see each event's conversation as of
//! that event), and each conversation written once.

use std::collections::{BTreeMap, HashMap};

use crate::conversations::Conversation;

use diesel::prelude::*;

use crate::conversations::Observation;
use crate::prepare::PreparedItem;
use crate::{conversations, events, DbConnection};

/// What happened to one request's items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// Items stored now.
    pub stored: usize,
    /// Items whose dedupe key was already stored (or earlier in the group).
    pub duplicates: usize,
    /// Stored items by event type (for metrics).
    pub stored_by_type: BTreeMap<String, usize>,
    /// Duplicate items by event type.
    pub duplicates_by_type: BTreeMap<String, usize>,
}

impl StoreOutcome {
    /// Adds another part's outcome (a delivery stored in chunks).
    pub fn add(&mut self, other: StoreOutcome) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        for (kind, n) in other.stored_by_type {
            *self.stored_by_type.entry(kind).or_default() += n;
        }
        for (kind, n) in other.duplicates_by_type {
            *self.duplicates_by_type.entry(kind).or_default() += n;
        }
    }
}

/// An event this group stored, for [`IngestHook`]s.
#[derive(Clone, Debug)]
pub struct NewlyStored<'a> {
    pub id: i64,
    pub item: &'a PreparedItem,
    /// Its conversation right after this event was folded in.
    pub conversation: Option<Conversation>,
}

/// Work that must happen in the same transaction as the events that cause
/// it (the notification outbox), and after they commit (waking the sender).
pub trait IngestHook: Send + Sync {
    /// Runs inside the ingest transaction, after the group's events and
    /// conversations are written. An error rolls the whole group back.
    fn in_transaction(
        &self,
        conn: &mut DbConnection,
        stored: &[NewlyStored<'_>],
    ) -> QueryResult<()>;

    /// Runs after the transaction committed.
    fn committed(&self) {}
}

/// A hook that does nothing (storage without notifications).
pub struct NoHook;

impl IngestHook for NoHook {
    fn in_transaction(&self, _: &mut DbConnection, _: &[NewlyStored<'_>]) -> QueryResult<()> {
        Ok(())
    }
}

/// Stores the items of several requests in one transaction; one outcome
/// per request, in order. Either everything commits or nothing does.
pub fn store_group(
    conn: &mut DbConnection,
    requests: &[&[PreparedItem]],
) -> QueryResult<Vec<StoreOutcome>> {
    store_group_with(conn, requests, &NoHook)
}

/// [`store_group`], running `hook` in the transaction.
pub fn store_group_with(
    conn: &mut DbConnection,
    requests: &[&[PreparedItem]],
    hook: &dyn IngestHook,
) -> QueryResult<Vec<StoreOutcome>> {
    conn.transaction(|conn| {
        let all: Vec<&PreparedItem> = requests.iter().flat_map(|items| items.iter()).collect();
        let mut inserted = events::insert_new(conn, all.iter().map(|item| &item.event))?;
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut stored = Vec::new();
        for items in requests {
            let mut outcome = StoreOutcome::default();
            for item in *items {
                // The first item with a key that was inserted is the stored
                // one; any later one in the group is its duplicate.
                let kind = item.event.event_type.clone();
                if let Some(id) = inserted.remove(&item.event.dedupe_key) {
                    outcome.stored += 1;
                    *outcome.stored_by_type.entry(kind).or_default() += 1;
                    stored.push(NewlyStored {
                        id,
                        item,
                        conversation: None,
                    });
                } else {
                    outcome.duplicates += 1;
                    *outcome.duplicates_by_type.entry(kind).or_default() += 1;
                }
            }
            outcomes.push(outcome);
        }
        let observed: Vec<(usize, &Observation)> = stored
            .iter()
            .enumerate()
            .filter_map(|(index, new)| new.item.observation.as_ref().map(|obs| (index, obs)))
            .collect();
        let observations: Vec<&Observation> = observed.iter().map(|(_, obs)| *obs).collect();
        let states = conversations::observe_in_order(conn, &observations)?;
        for ((index, _), state) in observed.into_iter().zip(states) {
            if let Some(new) = stored.get_mut(index) {
                new.conversation = Some(state);
            }
        }
        if !stored.is_empty() {
            hook.in_transaction(conn, &stored)?;
        }
        Ok(outcomes)
    })
}

/// The dedupe keys an insert stored, with the new ids.
pub(crate) type Inserted = HashMap<String, i64>;
