//! The `timer_episodes` and `timers` tables: time-based alerts.
//!
//! An episode per (timer rule, conversation) is opened by the rule's start
//! event and ended by a stop event; each episode has one timer row per
//! step (the first alert, then each escalation), unique on (rule,
//! conversation, episode, step), so that nothing is armed or fired twice.
//! Rows are armed and cancelled in the ingest transaction; due rows are
//! claimed with a lease and fired by the timer worker. Due times are
//! compared with the database's clock ([`db_now`]), never the process's.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};

use crate::{lock_for_update, per_backend, DbConnection};

diesel::table! {
    timer_episodes (rule_id, conversation_key) {
        rule_id -> BigInt,
        conversation_key -> Text,
        episode -> Integer,
        is_open -> Bool,
        started_at -> Timestamp,
        start_event_id -> Nullable<BigInt>,
        last_start_at -> Timestamp,
        last_stop_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    timers (id) {
        id -> BigInt,
        rule_id -> BigInt,
        rule_name -> Text,
        conversation_key -> Text,
        episode -> Integer,
        step -> Integer,
        status -> Text,
        started_at -> Timestamp,
        due_at -> Timestamp,
        event_id -> Nullable<BigInt>,
        recipients -> Text,
        template -> Text,
        fingerprint -> Text,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        fired_at -> Nullable<Timestamp>,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

/// Waiting for its due time.
pub const ARMED: &str = "armed";
/// Claimed by a worker (with a lease) and being fired.
pub const FIRING: &str = "firing";
/// Fired: its emails were queued in the same transaction.
pub const FIRED: &str = "fired";
/// Ended before it fired: a stop event, a rule change, the episode ended.
pub const CANCELLED: &str = "cancelled";
/// Overdue by more than `max_lateness` (hookline was down): summarised in
/// one email per rule instead of fired.
pub const MISSED: &str = "missed";
/// Due inside quiet hours: fires when they end (`due_at` says when).
pub const HELD: &str = "held";

/// Every status, for filters and metrics.
pub const STATUSES: [&str; 6] = [ARMED, HELD, FIRING, FIRED, CANCELLED, MISSED];

/// A (rule, conversation) pair's current episode.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = timer_episodes, treat_none_as_null = true)]
pub struct Episode {
    pub rule_id: i64,
    pub conversation_key: String,
    pub episode: i32,
    pub is_open: bool,
    pub started_at: NaiveDateTime,
    pub start_event_id: Option<i64>,
    pub last_start_at: NaiveDateTime,
    pub last_stop_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, PartialEq, Insertable)]
#[diesel(table_name = timers)]
pub struct NewTimer {
    pub rule_id: i64,
    pub rule_name: String,
    pub conversation_key: String,
    pub episode: i32,
    pub step: i32,
    pub status: String,
    pub started_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    pub event_id: Option<i64>,
    pub recipients: String,
    pub template: String,
    pub fingerprint: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = timers)]
pub struct Timer {
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    pub conversation_key: String,
    pub episode: i32,
    /// 0 for the first alert, 1.. for the escalation steps.
    pub step: i32,
    pub status: String,
    /// Where the episode's clock started.
    pub started_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    /// The event that started the episode.
    pub event_id: Option<i64>,
    /// The step's recipients as the rule writes them.
    pub recipients: String,
    pub template: String,
    #[serde(skip)]
    pub fingerprint: String,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<NaiveDateTime>,
    pub fired_at: Option<NaiveDateTime>,
    pub reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub use crate::clock::db_now;

/// The episode of (rule, conversation), locked for the rest of the
/// transaction on PostgreSQL (SQLite's writer holds the database lock):
/// arming, stopping and firing an episode are serialised on this row.
pub fn episode_locked(
    conn: &mut DbConnection,
    rule_id: i64,
    conversation_key: &str,
) -> QueryResult<Option<Episode>> {
    lock_for_update!(
        conn,
        timer_episodes::table
            .find((rule_id, conversation_key))
            .select(Episode::as_select()),
        |query, c| query.first(c).optional()
    )
}

/// Writes an episode (insert or replace).
pub fn put_episode(conn: &mut DbConnection, episode: &Episode) -> QueryResult<()> {
    per_backend!(conn, c => {
        diesel::insert_into(timer_episodes::table)
            .values(episode)
            .on_conflict((timer_episodes::rule_id, timer_episodes::conversation_key))
            .do_update()
            .set(episode)
            .execute(c)
    })
    .map(|_| ())
}

/// The open episodes of a rule.
pub fn open_episodes(conn: &mut DbConnection, rule_id: i64) -> QueryResult<Vec<Episode>> {
    timer_episodes::table
        .filter(timer_episodes::rule_id.eq(rule_id))
        .filter(timer_episodes::is_open.eq(true))
        .select(Episode::as_select())
        .load(conn)
}

/// Closes every open episode of the rules not in `keep` (deleted or
/// disabled rules); how many.
pub fn close_episodes_except(
    conn: &mut DbConnection,
    keep: &[i64],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        timer_episodes::table
            .filter(timer_episodes::is_open.eq(true))
            .filter(timer_episodes::rule_id.ne_all(keep.to_vec())),
    )
    .set((
        timer_episodes::is_open.eq(false),
        timer_episodes::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Arms timer rows; a row whose (rule, conversation, episode, step) exists
/// is left as it is. How many were armed.
pub fn arm(conn: &mut DbConnection, rows: &[NewTimer]) -> QueryResult<usize> {
    let mut armed = 0;
    for row in rows {
        armed += per_backend!(&mut *conn, c => {
            diesel::insert_into(timers::table)
                .values(row)
                .on_conflict((
                    timers::rule_id,
                    timers::conversation_key,
                    timers::episode,
                    timers::step,
                ))
                .do_nothing()
                .execute(c)
        })?;
    }
    Ok(armed)
}

/// The rows of one episode, by step.
pub fn of_episode(
    conn: &mut DbConnection,
    rule_id: i64,
    conversation_key: &str,
    episode: i32,
) -> QueryResult<Vec<Timer>> {
    timers::table
        .filter(timers::rule_id.eq(rule_id))
        .filter(timers::conversation_key.eq(conversation_key))
        .filter(timers::episode.eq(episode))
        .order(timers::step.asc())
        .select(Timer::as_select())
        .load(conn)
}

/// Cancels the rows of an episode that have not fired (armed, held, or
/// claimed and not yet committed: the worker then finds them cancelled);
/// how many.
pub fn cancel_episode(
    conn: &mut DbConnection,
    rule_id: i64,
    conversation_key: &str,
    episode: i32,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        timers::table
            .filter(timers::rule_id.eq(rule_id))
            .filter(timers::conversation_key.eq(conversation_key))
            .filter(timers::episode.eq(episode))
            .filter(timers::status.eq_any([ARMED, HELD, FIRING])),
    )
    .set(cancelled(reason, now))
    .execute(conn)
}

/// The columns a cancellation sets.
#[allow(clippy::type_complexity)]
fn cancelled(
    reason: &str,
    now: NaiveDateTime,
) -> (
    diesel::dsl::Eq<timers::status, &'static str>,
    diesel::dsl::Eq<timers::reason, String>,
    diesel::dsl::Eq<timers::claimed_by, Option<String>>,
    diesel::dsl::Eq<timers::claimed_until, Option<NaiveDateTime>>,
    diesel::dsl::Eq<timers::updated_at, NaiveDateTime>,
) {
    (
        timers::status.eq(CANCELLED),
        timers::reason.eq(bounded_reason(reason)),
        timers::claimed_by.eq(None),
        timers::claimed_until.eq(None),
        timers::updated_at.eq(now),
    )
}

fn bounded_reason(reason: &str) -> String {
    reason.chars().take(2_000).collect()
}

/// Cancels one row unless it fired already; true when it did.
pub fn cancel(
    conn: &mut DbConnection,
    id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        timers::table
            .find(id)
            .filter(timers::status.eq_any([ARMED, HELD, FIRING])),
    )
    .set(cancelled(reason, now))
    .execute(conn)
    .map(|n| n > 0)
}

/// Cancels every row not fired yet of the rules not in `keep`; how many.
pub fn cancel_rules_except(
    conn: &mut DbConnection,
    keep: &[i64],
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        timers::table
            .filter(timers::status.eq_any([ARMED, HELD, FIRING]))
            .filter(timers::rule_id.ne_all(keep.to_vec())),
    )
    .set(cancelled(reason, now))
    .execute(conn)
}

/// Armed (or held) rows of `rule_id` whose fingerprint is not
/// `fingerprint`: armed under an older version of the rule.
pub fn stale_of_rule(
    conn: &mut DbConnection,
    rule_id: i64,
    fingerprint: &str,
) -> QueryResult<Vec<Timer>> {
    timers::table
        .filter(timers::rule_id.eq(rule_id))
        .filter(timers::status.eq_any([ARMED, HELD]))
        .filter(timers::fingerprint.ne(fingerprint))
        .select(Timer::as_select())
        .load(conn)
}

/// What a recomputed (or re-armed) row becomes.
#[derive(Clone, Debug)]
pub struct Rearm<'a> {
    pub status: &'a str,
    pub started_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    pub recipients: &'a str,
    pub template: &'a str,
    pub fingerprint: &'a str,
    pub reason: Option<&'a str>,
}

/// Sets a row's schedule anew (rule edited, clock moved earlier, quiet
/// hours), releasing any claim; only a row that has not fired.
pub fn reschedule(
    conn: &mut DbConnection,
    id: i64,
    to: &Rearm<'_>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        timers::table
            .find(id)
            .filter(timers::status.eq_any([ARMED, HELD, FIRING])),
    )
    .set((
        timers::status.eq(to.status),
        timers::started_at.eq(to.started_at),
        timers::due_at.eq(to.due_at),
        timers::recipients.eq(to.recipients),
        timers::template.eq(to.template),
        timers::fingerprint.eq(to.fingerprint),
        timers::reason.eq(to.reason.map(bounded_reason)),
        timers::claimed_by.eq(None::<String>),
        timers::claimed_until.eq(None::<NaiveDateTime>),
        timers::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Claims up to `limit` rows due at `now` (the database's clock: pass
/// [`db_now`]): armed or held rows whose due time has come, and rows
/// claimed by a worker whose lease ran out. On PostgreSQL rows another
/// worker is claiming are skipped (`FOR UPDATE SKIP LOCKED`); SQLite has
/// one writer at a time, so its UPDATE is atomic as it is.
pub fn claim_due(
    conn: &mut DbConnection,
    worker: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i32,
) -> QueryResult<Vec<Timer>> {
    const DUE: &str = "((status IN ('armed', 'held') AND due_at <= $3) \
                        OR (status = 'firing' AND claimed_until < $3))";
    let lock = crate::backend::skip_locked(conn);
    let sql = format!(
        "UPDATE timers SET status = 'firing', claimed_by = $1, claimed_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM timers WHERE {DUE} ORDER BY due_at, id LIMIT $4{lock}) \
         RETURNING id"
    );
    let ids: Vec<ClaimedId> = diesel::sql_query(sql)
        .bind::<Text, _>(worker)
        .bind::<Timestamp, _>(lease_until)
        .bind::<Timestamp, _>(now)
        .bind::<Integer, _>(limit)
        .load(conn)?;
    let ids: Vec<i64> = ids.into_iter().map(|row| row.id).collect();
    timers::table
        .filter(timers::id.eq_any(ids))
        .order((timers::due_at.asc(), timers::id.asc()))
        .select(Timer::as_select())
        .load(conn)
}

/// The row `id`, when `worker` still holds its claim.
pub fn claimed_by(conn: &mut DbConnection, id: i64, worker: &str) -> QueryResult<Option<Timer>> {
    timers::table
        .find(id)
        .filter(timers::status.eq(FIRING))
        .filter(timers::claimed_by.eq(worker))
        .select(Timer::as_select())
        .first(conn)
        .optional()
}

/// Records that a claimed row fired (or was missed) at `now`, with why.
pub fn finish(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    status: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        timers::table
            .find(id)
            .filter(timers::status.eq(FIRING))
            .filter(timers::claimed_by.eq(worker)),
    )
    .set((
        timers::status.eq(status),
        timers::reason.eq(bounded_reason(reason)),
        timers::fired_at.eq(now),
        timers::claimed_by.eq(None::<String>),
        timers::claimed_until.eq(None::<NaiveDateTime>),
        timers::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// Hands a claimed row back (shutdown, or an error while firing): armed
/// again, due as it was.
pub fn release(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        timers::table
            .find(id)
            .filter(timers::status.eq(FIRING))
            .filter(timers::claimed_by.eq(worker)),
    )
    .set((
        timers::status.eq(ARMED),
        timers::claimed_by.eq(None::<String>),
        timers::claimed_until.eq(None::<NaiveDateTime>),
        timers::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|_| ())
}

pub fn get(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Timer>> {
    timers::table
        .find(id)
        .select(Timer::as_select())
        .first(conn)
        .optional()
}

/// Every row, oldest first (tests and small tools).
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<Timer>> {
    timers::table
        .order(timers::id.asc())
        .select(Timer::as_select())
        .load(conn)
}

/// A conversation's rows, newest first (at most `limit`).
pub fn for_conversation(conn: &mut DbConnection, key: &str, limit: i64) -> QueryResult<Vec<Timer>> {
    timers::table
        .filter(timers::conversation_key.eq(key))
        .order(timers::id.desc())
        .limit(limit)
        .select(Timer::as_select())
        .load(conn)
}

/// The rows a fired (or missed) timer email is about: those of `rule_id`
/// finished with `status` at `at` (the moment the email was queued), in
/// conversation `key` when given.
pub fn finished_at(
    conn: &mut DbConnection,
    rule_id: i64,
    status: &str,
    key: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<Vec<Timer>> {
    let mut query = timers::table
        .filter(timers::rule_id.eq(rule_id))
        .filter(timers::status.eq(status.to_owned()))
        .filter(timers::fired_at.eq(at))
        .select(Timer::as_select())
        .into_boxed::<crate::MultiBackend>();
    if let Some(key) = key {
        query = query.filter(timers::conversation_key.eq(key.to_owned()));
    }
    query.order(timers::id.asc()).limit(500).load(conn)
}

/// Filters of the timer list.
#[derive(Clone, Debug, Default)]
pub struct TimerFilter {
    pub status: Option<String>,
    pub rule: Option<String>,
    pub conversation: Option<String>,
}

/// One page of rows, newest first, below id `cursor`.
pub fn page(
    conn: &mut DbConnection,
    filter: &TimerFilter,
    cursor: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Timer>> {
    let mut query = timers::table
        .select(Timer::as_select())
        .into_boxed::<crate::MultiBackend>();
    if let Some(s) = &filter.status {
        query = query.filter(timers::status.eq(s.clone()));
    }
    if let Some(r) = &filter.rule {
        query = query.filter(timers::rule_name.eq(r.clone()));
    }
    if let Some(c) = &filter.conversation {
        query = query.filter(timers::conversation_key.eq(c.clone()));
    }
    if let Some(id) = cursor {
        query = query.filter(timers::id.lt(id));
    }
    query.order(timers::id.desc()).limit(limit).load(conn)
}

/// How many rows have each status (metrics).
pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    timers::table
        .group_by(timers::status)
        .select((timers::status, diesel::dsl::count_star()))
        .load(conn)
}

/// The due time of the oldest row that is due at `now` and not fired
/// (metrics: how far behind the worker is).
pub fn oldest_overdue(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    timers::table
        .filter(timers::status.eq_any([ARMED, HELD, FIRING]))
        .filter(timers::due_at.le(now))
        .select(diesel::dsl::min(timers::due_at))
        .first(conn)
}

/// Records that a claimed row was overdue past `max_lateness`: `missed`,
/// not summarised yet (`fired_at` empty until [`mark_summarised`]).
pub fn finish_missed(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        timers::table
            .find(id)
            .filter(timers::status.eq(FIRING))
            .filter(timers::claimed_by.eq(worker)),
    )
    .set((
        timers::status.eq(MISSED),
        timers::reason.eq(bounded_reason(reason)),
        timers::fired_at.eq(None::<NaiveDateTime>),
        timers::claimed_by.eq(None::<String>),
        timers::claimed_until.eq(None::<NaiveDateTime>),
        timers::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// Missed rows not summarised yet, oldest first, locked on PostgreSQL (a
/// second worker waits, then finds them summarised).
pub fn unsummarised_locked(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<Timer>> {
    let rows = timers::table
        .filter(timers::status.eq(MISSED))
        .filter(timers::fired_at.is_null())
        .order(timers::id.asc())
        .limit(limit);
    lock_for_update!(conn, rows.select(Timer::as_select()), |query, c| query
        .load(c))
}

/// Marks missed rows summarised at `now` (the summary email's time).
pub fn mark_summarised(
    conn: &mut DbConnection,
    ids: &[i64],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(timers::table.filter(timers::id.eq_any(ids.to_vec())))
        .set((timers::fired_at.eq(now), timers::updated_at.eq(now)))
        .execute(conn)
}

/// Whether any missed row waits for its summary (a read: no lock taken).
pub fn has_unsummarised(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        timers::table
            .filter(timers::status.eq(MISSED))
            .filter(timers::fired_at.is_null()),
    ))
    .get_result(conn)
}

/// Whether any row is due at `now` (a read: [`claim_due`] takes the write
/// lock, so the worker asks this first on each poll).
pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        timers::table.filter(
            timers::status
                .eq_any([ARMED, HELD])
                .and(timers::due_at.le(now))
                .or(timers::status.eq(FIRING).and(timers::claimed_until.lt(now))),
        ),
    ))
    .get_result(conn)
}
