//! The `notifications` table: the outbox and the record of every email,
//! sent or not, and why.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};

use crate::schema::notifications;
use crate::DbConnection;

pub const QUEUED: &str = "queued";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";
pub const DEAD: &str = "dead";
pub const SUPPRESSED: &str = "suppressed";
pub const SKIPPED: &str = "skipped";
/// The rule itself failed on this event (the reason says how); the event
/// was stored all the same.
pub const ERROR: &str = "error";
/// Due inside its recipient's quiet hours: goes at `next_attempt_at`
/// (written from the database's clock), when they end.
pub const HELD: &str = "held";

/// The statuses of notifications that will not go out (again) by themselves.
pub const FINAL: [&str; 5] = [SENT, DEAD, SUPPRESSED, SKIPPED, ERROR];

/// Every status, for filters and metrics.
pub const STATUSES: [&str; 9] = [
    QUEUED, HELD, SENDING, SENT, FAILED, DEAD, SUPPRESSED, SKIPPED, ERROR,
];

#[derive(Clone, Debug, PartialEq, Insertable)]
#[diesel(table_name = notifications)]
pub struct NewNotification {
    pub rule_id: Option<i64>,
    pub rule_name: String,
    pub event_id: Option<i64>,
    pub conversation_key: Option<String>,
    pub recipient: String,
    pub template: String,
    pub status: String,
    pub reason: Option<String>,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = notifications)]
pub struct Notification {
    pub id: i64,
    pub rule_id: Option<i64>,
    pub rule_name: String,
    pub event_id: Option<i64>,
    pub conversation_key: Option<String>,
    pub recipient: String,
    pub template: String,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub smtp_response: Option<String>,
    pub subject: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, new: &NewNotification) -> QueryResult<()> {
    diesel::insert_into(notifications::table)
        .values(new)
        .execute(conn)
        .map(|_| ())
}

/// Rows per multi-row insert on PostgreSQL: 11 columns each, well under
/// its limit of 65,535 bound parameters.
const INSERT_CHUNK: usize = 1_000;

/// Inserts `rows` in order: one multi-row statement per thousand on
/// PostgreSQL (a group's outbox rows in one round trip), a cached
/// single-row statement each on SQLite.
pub fn insert_all(conn: &mut DbConnection, rows: &[NewNotification]) -> QueryResult<()> {
    crate::backend::batched(
        conn,
        |c| {
            for chunk in rows.chunks(INSERT_CHUNK) {
                diesel::insert_into(notifications::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(())
        },
        |conn| rows.iter().try_for_each(|row| insert(conn, row)),
    )
}

/// Whether (rule, conversation, recipient) has a notification that went or
/// will go out since `since`: the throttle check.
pub fn recently_notified(
    conn: &mut DbConnection,
    rule_name: &str,
    conversation_key: Option<&str>,
    recipient: &str,
    since: NaiveDateTime,
) -> QueryResult<bool> {
    let active = [QUEUED, HELD, SENDING, SENT, FAILED];
    let recent = notifications::table
        .filter(notifications::rule_name.eq(rule_name))
        .filter(notifications::recipient.eq(recipient))
        .filter(notifications::status.eq_any(active))
        .filter(notifications::created_at.gt(since));
    match conversation_key {
        Some(key) => diesel::select(diesel::dsl::exists(
            recent.filter(notifications::conversation_key.eq(key)),
        ))
        .get_result(conn),
        None => diesel::select(diesel::dsl::exists(
            recent.filter(notifications::conversation_key.is_null()),
        ))
        .get_result(conn),
    }
}

/// Emails to `recipient` created after `since` that went or will go out
/// (queued, held, sending, sent, failed, dead), over every rule.
pub fn count_to_recipient_since(
    conn: &mut DbConnection,
    recipient: &str,
    since: NaiveDateTime,
) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::recipient.eq(recipient))
        .filter(notifications::created_at.gt(since))
        .filter(notifications::status.eq_any([QUEUED, HELD, SENDING, SENT, FAILED, DEAD]))
        .count()
        .get_result(conn)
}

/// The recorded answers (`smtp_response`) of the emails about a visitor:
/// those of their conversations and of their events (what
/// [`crate::retention::erase_visitor`] deletes).
pub fn responses_for_visitor(
    conn: &mut DbConnection,
    visitor_key: &str,
) -> QueryResult<Vec<String>> {
    use crate::schema::{conversations, events};
    let keys = conversations::table
        .filter(conversations::visitor_key.eq(visitor_key))
        .select(conversations::key);
    let event_ids = events::table
        .filter(events::visitor_key.eq(visitor_key))
        .select(events::id);
    let by_conversation: Vec<Option<String>> = notifications::table
        .filter(notifications::conversation_key.eq_any(keys.nullable()))
        .select(notifications::smtp_response)
        .load(conn)?;
    let by_event: Vec<Option<String>> = notifications::table
        .filter(notifications::event_id.eq_any(event_ids.nullable()))
        .select(notifications::smtp_response)
        .load(conn)?;
    let mut responses: Vec<String> = by_conversation
        .into_iter()
        .chain(by_event)
        .flatten()
        .collect();
    responses.sort();
    responses.dedup();
    Ok(responses)
}

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Claims up to `limit` notifications that are due (queued, held until a
/// time that has come, failed and due for retry, or claimed by a worker whose lease ran out), for `worker`
/// until `lease_until`. Each claim counts as an attempt. On PostgreSQL rows
/// another worker holds are skipped (`FOR UPDATE SKIP LOCKED`); SQLite has
/// one writer at a time, so its UPDATE is atomic as it is.
///
/// `now` is the database's clock ([`crate::db_now`]), as are the retry
/// times and leases the worker writes. A `queued` row is due at once,
/// whatever its `next_attempt_at`: ingest stamps that with its own process
/// clock, which may run ahead of the database's. A `held` row's time comes
/// from the database's clock, and it waits for it.
pub fn claim_due(
    conn: &mut DbConnection,
    worker: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i32,
) -> QueryResult<Vec<Notification>> {
    const DUE: &str = "(status = 'queued' \
                        OR (status IN ('failed', 'held') AND next_attempt_at <= $3) \
                        OR (status = 'sending' AND claimed_until < $3))";
    let lock = crate::backend::skip_locked(conn);
    let sql = format!(
        "UPDATE notifications SET status = 'sending', claimed_by = $1, claimed_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE id IN (SELECT id FROM notifications WHERE {DUE} \
         ORDER BY next_attempt_at, id LIMIT $4{lock}) RETURNING id"
    );
    let ids: Vec<ClaimedId> = diesel::sql_query(sql)
        .bind::<Text, _>(worker)
        .bind::<Timestamp, _>(lease_until)
        .bind::<Timestamp, _>(now)
        .bind::<Integer, _>(limit)
        .load(conn)?;
    let ids: Vec<i64> = ids.into_iter().map(|row| row.id).collect();
    notifications::table
        .filter(notifications::id.eq_any(ids))
        .order(notifications::id.asc())
        .select(Notification::as_select())
        .load(conn)
}

/// A query for the row `id` while `worker` still holds its claim.
type Claimed = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Find<notifications::table, i64>,
        diesel::dsl::Eq<notifications::status, &'static str>,
    >,
    diesel::dsl::Eq<notifications::claimed_by, String>,
>;

/// The row `id` while `worker` still holds its claim: a worker whose lease
/// ran out (and whose row another worker took) changes nothing.
fn claimed(id: i64, worker: &str) -> Claimed {
    notifications::table
        .find(id)
        .filter(notifications::status.eq(SENDING))
        .filter(notifications::claimed_by.eq(worker.to_owned()))
}

/// Extends `worker`'s claim on row `id` to `until`; false when the claim is
/// no longer this worker's (its lease ran out and another worker took the
/// row, or it was recorded).
pub fn renew_claim(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(claimed(id, worker))
        .set(notifications::claimed_until.eq(until))
        .execute(conn)
        .map(|n| n > 0)
}

/// Records a delivery: `sent`, with the SMTP server's answer; false when
/// the claim was no longer this worker's.
pub fn mark_sent(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    subject: &str,
    smtp_response: &str,
    message: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(claimed(id, worker))
        .set((
            notifications::status.eq(SENT),
            notifications::subject.eq(subject),
            notifications::smtp_response.eq(smtp_response),
            notifications::message.eq(message),
            notifications::sent_at.eq(now),
            notifications::updated_at.eq(now),
            notifications::last_error.eq(None::<String>),
            notifications::claimed_by.eq(None::<String>),
            notifications::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(|n| n > 0)
}

/// Records a failed attempt: `failed` with the next try at `retry_at`, or
/// `dead` when there is none.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    subject: Option<&str>,
    error: &str,
    retry_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let status = if retry_at.is_some() { FAILED } else { DEAD };
    diesel::update(claimed(id, worker))
        .set((
            notifications::status.eq(status),
            notifications::subject.eq(subject),
            notifications::last_error.eq(error),
            notifications::next_attempt_at.eq(retry_at),
            notifications::updated_at.eq(now),
            notifications::claimed_by.eq(None::<String>),
            notifications::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(|n| n > 0)
}

/// Queues a notification again (resend): due now, attempts reset. Only a
/// notification that is not queued, being sent, or without a recipient:
/// false otherwise (one statement, so a worker claiming it meanwhile wins).
pub fn requeue(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        notifications::table
            .find(id)
            .filter(notifications::status.eq_any([SENT, FAILED, DEAD, SUPPRESSED]))
            // An `error` row (a rule failed) has no recipient to send to.
            .filter(notifications::recipient.ne("")),
    )
    .set((
        notifications::status.eq(QUEUED),
        notifications::attempts.eq(0),
        notifications::next_attempt_at.eq(now),
        notifications::updated_at.eq(now),
        notifications::claimed_by.eq(None::<String>),
        notifications::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// The message of a sent email as it went (none: not sent, sent before
/// hookline kept messages, or too large to keep).
pub fn message(conn: &mut DbConnection, id: i64) -> QueryResult<Option<String>> {
    notifications::table
        .find(id)
        .select(notifications::message)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

pub fn get(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Notification>> {
    notifications::table
        .find(id)
        .select(Notification::as_select())
        .first(conn)
        .optional()
}

/// Every notification, oldest first (tests and small tools).
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<Notification>> {
    notifications::table
        .order(notifications::id.asc())
        .select(Notification::as_select())
        .load(conn)
}

/// A conversation's first `limit` notifications, oldest first.
pub fn for_conversation(
    conn: &mut DbConnection,
    key: &str,
    limit: i64,
) -> QueryResult<Vec<Notification>> {
    notifications::table
        .filter(notifications::conversation_key.eq(key))
        .order(notifications::id.asc())
        .limit(limit)
        .select(Notification::as_select())
        .load(conn)
}

/// Hands back a claimed notification that was not sent (shutdown): due
/// now, the claim's attempt not counted.
pub fn release(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(claimed(id, worker))
        .set((
            notifications::status.eq(QUEUED),
            notifications::attempts.eq(notifications::attempts - 1),
            notifications::next_attempt_at.eq(now),
            notifications::updated_at.eq(now),
            notifications::claimed_by.eq(None::<String>),
            notifications::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Filters of the notification log.
#[derive(Clone, Debug, Default)]
pub struct NotificationFilter {
    pub status: Option<String>,
    pub rule: Option<String>,
    pub conversation: Option<String>,
    pub recipient: Option<String>,
}

/// One page of notifications, newest first, below id `cursor`.
pub fn page(
    conn: &mut DbConnection,
    filter: &NotificationFilter,
    cursor: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Notification>> {
    let mut query = notifications::table
        .select(Notification::as_select())
        .into_boxed::<crate::MultiBackend>();
    if let Some(s) = &filter.status {
        query = query.filter(notifications::status.eq(s.clone()));
    }
    if let Some(r) = &filter.rule {
        query = query.filter(notifications::rule_name.eq(r.clone()));
    }
    if let Some(c) = &filter.conversation {
        query = query.filter(notifications::conversation_key.eq(c.clone()));
    }
    if let Some(r) = &filter.recipient {
        query = query.filter(crate::events::lower(notifications::recipient).eq(r.to_lowercase()));
    }
    if let Some(id) = cursor {
        query = query.filter(notifications::id.lt(id));
    }
    query
        .order(notifications::id.desc())
        .limit(limit)
        .load(conn)
}

/// How many notifications have each status (for metrics).
pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    notifications::table
        .group_by(notifications::status)
        .select((notifications::status, diesel::dsl::count_star()))
        .load(conn)
}

/// When the oldest notification still waiting to go out was created.
pub fn oldest_pending(conn: &mut DbConnection) -> QueryResult<Option<NaiveDateTime>> {
    notifications::table
        .filter(notifications::status.eq_any([QUEUED, SENDING, FAILED]))
        .select(diesel::dsl::min(notifications::created_at))
        .first(conn)
}

/// The held notifications (recipient, id), to re-compute when quiet hours
/// change.
pub fn held(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    notifications::table
        .filter(notifications::status.eq(HELD))
        .select((notifications::recipient, notifications::id))
        .load(conn)
}

/// Moves a held notification to `until` with `reason`, or, with `None`
/// (its recipient's quiet hours are gone), makes it due now.
pub fn reschedule_held(
    conn: &mut DbConnection,
    id: i64,
    until: Option<NaiveDateTime>,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        notifications::table
            .find(id)
            .filter(notifications::status.eq(HELD)),
    )
    .set((
        notifications::next_attempt_at.eq(until.unwrap_or(now)),
        notifications::reason.eq(reason),
        notifications::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n > 0)
}
