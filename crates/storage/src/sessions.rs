//! Admin page sessions, server-side: a row per login, keyed by a hash of
//! the session id the cookie carries (the id itself is never stored).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::admin_sessions;
use crate::DbConnection;

/// Records a session until `expires_at`.
pub fn insert(
    conn: &mut DbConnection,
    id_hash: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    // Expired rows go as new ones come.
    diesel::delete(admin_sessions::table.filter(admin_sessions::expires_at.lt(now)))
        .execute(conn)?;
    diesel::insert_into(admin_sessions::table)
        .values((
            admin_sessions::id_hash.eq(id_hash),
            admin_sessions::created_at.eq(now),
            admin_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// True when the session exists and has not expired.
pub fn is_active(conn: &mut DbConnection, id_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        admin_sessions::table
            .filter(admin_sessions::id_hash.eq(id_hash))
            .filter(admin_sessions::expires_at.gt(now)),
    ))
    .get_result(conn)
}

/// Ends one session.
pub fn delete(conn: &mut DbConnection, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(admin_sessions::table.filter(admin_sessions::id_hash.eq(id_hash))).execute(conn)
}

/// Ends every session (the admin token changed).
pub fn delete_all(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::delete(admin_sessions::table).execute(conn)
}
