//! Values hookline generates once and keeps: the webhook token.

use diesel::prelude::*;

use crate::schema::settings;
use crate::{per_backend, DbConnection};

/// The stored value of a setting.
pub fn get(conn: &mut DbConnection, name: &str) -> QueryResult<Option<String>> {
    settings::table
        .find(name)
        .select(settings::value)
        .first(conn)
        .optional()
}

/// Stores `value` unless the setting exists, and returns the stored value:
/// when several processes start at once they all end up with the first one.
pub fn get_or_insert(conn: &mut DbConnection, name: &str, value: &str) -> QueryResult<String> {
    per_backend!(conn, c => {
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(value)))
            .on_conflict(settings::name)
            .do_nothing()
            .execute(c)
    })?;
    settings::table
        .find(name)
        .select(settings::value)
        .first(conn)
}

/// Sets a setting, replacing any stored value.
pub fn put(conn: &mut DbConnection, name: &str, value: &str) -> QueryResult<()> {
    per_backend!(conn, c => {
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(value)))
            .on_conflict(settings::name)
            .do_update()
            .set(settings::value.eq(value))
            .execute(c)
    })
    .map(|_| ())
}
