//! The two clocks hookline reads: the process's ([`now`]), which stamps
//! rows, and the database's ([`db_now`]), which every due time and lease is
//! compared with, so that instances whose clocks disagree (with each other
//! or with the database) neither send early nor late.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Timestamp;

use crate::DbConnection;

/// Microseconds added to the process clock: zero, except in tests that
/// play a process whose clock is off ([`skew_process_clock`]).
static PROCESS_SKEW_MICROS: AtomicI64 = AtomicI64::new(0);

/// The current time as stored, by the process clock: UTC, microseconds
/// (what both backends keep).
pub fn now() -> NaiveDateTime {
    use chrono::SubsecRound;
    let skew = chrono::Duration::microseconds(PROCESS_SKEW_MICROS.load(Ordering::Relaxed));
    let now = chrono::Utc::now().trunc_subsecs(6).naive_utc();
    now.checked_add_signed(skew).unwrap_or(now)
}

/// Tests only: from now on [`now`] answers `by` off the real clock, for
/// the whole process (a test binary of its own, so that no other test
/// sees it). The database clock is not affected.
#[doc(hidden)]
pub fn skew_process_clock(by: chrono::Duration) {
    PROCESS_SKEW_MICROS.store(by.num_microseconds().unwrap_or(0), Ordering::Relaxed);
}

#[derive(QueryableByName)]
struct Now {
    #[diesel(sql_type = Timestamp)]
    now: NaiveDateTime,
}

/// The database's clock (UTC, microseconds on PostgreSQL, milliseconds on
/// SQLite): what due times and leases are compared with, so that a process
/// whose clock is off neither fires early nor late.
pub fn db_now(conn: &mut DbConnection) -> QueryResult<NaiveDateTime> {
    diesel::sql_query(crate::backend::now_sql(conn))
        .get_result::<Now>(conn)
        .map(|row| row.now)
}
