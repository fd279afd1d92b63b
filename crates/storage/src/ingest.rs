//! Storing deliveries: one transaction for the items of one or several
//! requests (group commit), each item stored once.

use diesel::prelude::*;

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
        requests
            .iter()
            .map(|items| store_items(conn, items))
            .collect()
    })
}

fn store_items(conn: &mut DbConnection, items: &[PreparedItem]) -> QueryResult<StoreOutcome> {
    let mut outcome = StoreOutcome::default();
    for item in items {
        match events::insert_if_new(conn, &item.event)? {
            Some(_id) => {
                outcome.stored += 1;
                if let Some(obs) = &item.observation {
                    conversations::observe(conn, obs)?;
                }
            }
            None => outcome.duplicates += 1,
        }
    }
    Ok(outcome)
}
