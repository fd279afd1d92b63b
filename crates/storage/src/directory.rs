//! The `calendars` and `recipients` tables: named business calendars that
//! timer rules share, and recipients with quiet hours of their own. The
//! definitions are JSON the notifier validates. Every change bumps the
//! rules version in the same transaction, so that every hookline process
//! sharing the database reloads its rules with them. The functions here run
//! inside the caller's write transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{calendars, recipients};
use crate::DbConnection;

#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = calendars)]
pub struct CalendarRow {
    pub name: String,
    /// `{"time_zone", "hours", "holidays"}` as JSON.
    pub definition: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = recipients)]
pub struct RecipientRow {
    /// Lower case.
    pub email: String,
    /// A calendar's name.
    pub quiet_hours: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn calendars(conn: &mut DbConnection) -> QueryResult<Vec<CalendarRow>> {
    calendars::table
        .order(calendars::name.asc())
        .select(CalendarRow::as_select())
        .load(conn)
}

pub fn recipients(conn: &mut DbConnection) -> QueryResult<Vec<RecipientRow>> {
    recipients::table
        .order(recipients::email.asc())
        .select(RecipientRow::as_select())
        .load(conn)
}

/// Creates or replaces calendar `name`; true when it was created.
pub fn put_calendar(
    conn: &mut DbConnection,
    name: &str,
    definition: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(calendars::table.find(name))
        .set((
            calendars::definition.eq(definition),
            calendars::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(calendars::table)
            .values((
                calendars::name.eq(name),
                calendars::definition.eq(definition),
                calendars::created_at.eq(now),
                calendars::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    crate::rules::bump_version(conn)?;
    Ok(updated == 0)
}

/// Deletes calendar `name`; false when there was none.
pub fn delete_calendar(conn: &mut DbConnection, name: &str) -> QueryResult<bool> {
    let deleted = diesel::delete(calendars::table.find(name)).execute(conn)?;
    if deleted > 0 {
        crate::rules::bump_version(conn)?;
    }
    Ok(deleted > 0)
}

/// Creates or replaces recipient `email` (lower case); true when it was
/// created.
pub fn put_recipient(
    conn: &mut DbConnection,
    email: &str,
    quiet_hours: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(recipients::table.find(email))
        .set((
            recipients::quiet_hours.eq(quiet_hours),
            recipients::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(recipients::table)
            .values((
                recipients::email.eq(email),
                recipients::quiet_hours.eq(quiet_hours),
                recipients::created_at.eq(now),
                recipients::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    crate::rules::bump_version(conn)?;
    Ok(updated == 0)
}

/// Deletes recipient `email`; false when there was none.
pub fn delete_recipient(conn: &mut DbConnection, email: &str) -> QueryResult<bool> {
    let deleted = diesel::delete(recipients::table.find(email)).execute(conn)?;
    if deleted > 0 {
        crate::rules::bump_version(conn)?;
    }
    Ok(deleted > 0)
}
