//! Storing deliveries: one transaction for the items of one or several
//! requests (group commit), each item stored once.
//!
//! Per group: one multi-row insert of the events (conflicting dedupe keys
//! skipped), then each touched conversation read once, folded with all of
//! its new events, and written once, in key order (so that concurrent
//! groups on PostgreSQL lock conversations in the same order and cannot
//! deadlock on them).

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;

use crate::conversations::Observation;
use crate::prepare::PreparedItem;
use crate::{conversations, events, DbConnection};

/// What happened to one request's items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// Items stored now.
    pub stored: usize,
    /// Items whose dedupe key was already stored (or earlier in the group).
    pub duplicates: usize,
}

/// Stores the items of several requests in one transaction; one outcome
/// per request, in order. Either everything commits or nothing does.
pub fn store_group(
    conn: &mut DbConnection,
    requests: &[&[PreparedItem]],
) -> QueryResult<Vec<StoreOutcome>> {
    conn.transaction(|conn| {
        let all: Vec<&PreparedItem> = requests.iter().flat_map(|items| items.iter()).collect();
        let mut inserted = events::insert_new(conn, all.iter().map(|item| &item.event))?;
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut touched: BTreeMap<&str, Vec<&Observation>> = BTreeMap::new();
        for items in requests {
            let mut outcome = StoreOutcome::default();
            for item in *items {
                // The first item with a key that was inserted is the stored
                // one; any later one in the group is its duplicate.
                if inserted.remove(&item.event.dedupe_key) {
                    outcome.stored += 1;
                    if let Some(obs) = &item.observation {
                        touched.entry(obs.key.as_str()).or_default().push(obs);
                    }
                } else {
                    outcome.duplicates += 1;
                }
            }
            outcomes.push(outcome);
        }
        for observations in touched.values() {
            conversations::observe_all(conn, observations)?;
        }
        Ok(outcomes)
    })
}

/// The dedupe keys a multi-row insert stored.
pub(crate) type Inserted = HashSet<String>;
