//! The `rules` table. The definition is JSON that the notifier validates;
//! every change bumps the `rules_version` setting in the same transaction,
//! so that every hookline process sharing the database reloads.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::rules;
use crate::{settings, write_transaction, DbConnection};

/// The setting that changes whenever any rule does.
pub const VERSION_SETTING: &str = "rules_version";

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = rules)]
pub struct RuleRow {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    /// The rule's JSON (`on`, `all`, `any`, `to`, `template`, `throttle`).
    pub definition: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Insertable, AsChangeset)]
#[diesel(table_name = rules)]
pub struct RuleChange<'a> {
    pub name: &'a str,
    pub enabled: bool,
    pub definition: &'a str,
    pub updated_at: NaiveDateTime,
}

fn now() -> NaiveDateTime {
    crate::now()
}

/// Marks the rules as changed (call inside the changing transaction).
pub(crate) fn bump_version(conn: &mut DbConnection) -> QueryResult<()> {
    let version = chrono::Utc::now().timestamp_micros().to_string();
    settings::put(conn, VERSION_SETTING, &version)
}

/// The current rules version; `None` before any change.
pub fn version(conn: &mut DbConnection) -> QueryResult<Option<String>> {
    settings::get(conn, VERSION_SETTING)
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<RuleRow>> {
    rules::table
        .order(rules::name.asc())
        .select(RuleRow::as_select())
        .load(conn)
}

pub fn get(conn: &mut DbConnection, id: i64) -> QueryResult<Option<RuleRow>> {
    rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_name(conn: &mut DbConnection, name: &str) -> QueryResult<Option<RuleRow>> {
    rules::table
        .filter(rules::name.eq(name))
        .select(RuleRow::as_select())
        .first(conn)
        .optional()
}

/// Creates a rule; fails on a duplicate name (unique index).
pub fn insert(conn: &mut DbConnection, change: &RuleChange<'_>) -> QueryResult<RuleRow> {
    write_transaction(conn, |conn| {
        let created_at = now();
        diesel::insert_into(rules::table)
            .values((change, rules::created_at.eq(created_at)))
            .execute(conn)?;
        bump_version(conn)?;
        rules::table
            .filter(rules::name.eq(change.name))
            .select(RuleRow::as_select())
            .first(conn)
    })
}

/// Replaces rule `id`; `None` when there is no such rule.
pub fn update(
    conn: &mut DbConnection,
    id: i64,
    change: &RuleChange<'_>,
) -> QueryResult<Option<RuleRow>> {
    write_transaction(conn, |conn| {
        let changed = diesel::update(rules::table.find(id))
            .set(change)
            .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        bump_version(conn)?;
        get(conn, id)
    })
}

/// Deletes rule `id`; false when there was none.
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    write_transaction(conn, |conn| {
        let deleted = diesel::delete(rules::table.find(id)).execute(conn)?;
        if deleted > 0 {
            bump_version(conn)?;
        }
        Ok(deleted > 0)
    })
}

/// Inserts or replaces each rule by name, all or nothing; returns
/// (created, updated).
pub fn upsert_all(
    conn: &mut DbConnection,
    changes: &[RuleChange<'_>],
) -> QueryResult<(usize, usize)> {
    write_transaction(conn, |conn| upsert_all_in(conn, changes))
}

/// [`upsert_all`] inside the caller's write transaction (an import that
/// also stores calendars and recipients).
pub fn upsert_all_in(
    conn: &mut DbConnection,
    changes: &[RuleChange<'_>],
) -> QueryResult<(usize, usize)> {
    {
        let (mut created, mut updated) = (0, 0);
        for change in changes {
            match by_name(conn, change.name)? {
                Some(existing) => {
                    diesel::update(rules::table.find(existing.id))
                        .set(change)
                        .execute(conn)?;
                    updated += 1;
                }
                None => {
                    diesel::insert_into(rules::table)
                        .values((change, rules::created_at.eq(now())))
                        .execute(conn)?;
                    created += 1;
                }
            }
        }
        bump_version(conn)?;
        Ok((created, updated))
    }
}
