//! What the overview page reads: a few aggregate queries over events,
//! notifications and conversations. Each one is bounded by a time window or
//! a limit and goes through an index, so it stays fast at a million events
//! (`hookline-bench query` measures them). Also the two small lookups the
//! list pages add to their rows: conversations' names, rules' last fire.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use crate::schema::{conversations, notifications};
use crate::DbConnection;

/// Events of one type in one hour.
#[derive(Clone, Debug, PartialEq, QueryableByName)]
pub struct HourCount {
    #[diesel(sql_type = Text)]
    pub event_type: String,
    /// The hour, `YYYY-MM-DD HH` (UTC).
    #[diesel(sql_type = Text)]
    pub hour: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The hour of a stored time as `YYYY-MM-DD HH`, in each backend's SQL.
/// SQLite keeps timestamps as text that starts this way.
fn hour_of(conn: &DbConnection, column: &str) -> String {
    crate::backend::hour_of(conn, column)
}

/// Events of the types `types` per hour since `since`. Naming the types
/// lets both backends read just the window of each type from
/// `events_type_time` (without them SQLite reads the whole index). A type
/// that is not a plain lower-case name is left out: they are written into
/// the statement.
pub fn events_per_hour(
    conn: &mut DbConnection,
    since: NaiveDateTime,
    types: &[&str],
) -> QueryResult<Vec<HourCount>> {
    let listed: Vec<String> = types
        .iter()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(|t| format!("'{t}'"))
        .collect();
    if listed.is_empty() {
        return Ok(Vec::new());
    }
    let hour = hour_of(conn, "occurred_at");
    diesel::sql_query(format!(
        "SELECT event_type, {hour} AS hour, COUNT(*) AS count FROM events \
         WHERE event_type IN ({}) AND occurred_at >= $1 GROUP BY event_type, {hour}",
        listed.join(", ")
    ))
    .bind::<Timestamp, _>(since)
    .load(conn)
}

/// How many events occurred since `since` (a range of `events_time`).
pub fn events_since(conn: &mut DbConnection, since: NaiveDateTime) -> QueryResult<i64> {
    crate::schema::events::table
        .filter(crate::schema::events::occurred_at.ge(since))
        .count()
        .get_result(conn)
}

/// Notifications created since `since`, counted by their status now.
pub fn emails_by_status(
    conn: &mut DbConnection,
    since: NaiveDateTime,
) -> QueryResult<Vec<(String, i64)>> {
    notifications::table
        .filter(notifications::created_at.ge(since))
        .group_by(notifications::status)
        .select((notifications::status, diesel::dsl::count_star()))
        .load(conn)
}

/// Open conversations that no agent holds (assigned to a bot or to
/// nobody), oldest first, at most `limit`; and how many there are.
pub fn waiting_for_agent(
    conn: &mut DbConnection,
    limit: i64,
) -> QueryResult<(Vec<crate::conversations::Conversation>, i64)> {
    use crate::conversations::ConversationRow;
    let waiting = || {
        conversations::table
            .filter(conversations::status.eq(crate::conversations::OPEN))
            .filter(
                conversations::assignee_type
                    .is_null()
                    .or(conversations::assignee_type.eq("bot")),
            )
    };
    let rows: Vec<ConversationRow> = waiting()
        .order((
            conversations::first_event_at.asc(),
            conversations::key.asc(),
        ))
        .limit(limit)
        .select(ConversationRow::as_select())
        .load(conn)?;
    let total = waiting().count().get_result(conn)?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// A handover and the first message an agent wrote in its conversation at
/// or after it (if any).
#[derive(Clone, Debug, PartialEq, QueryableByName)]
pub struct Handover {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Timestamp)]
    pub handed_at: NaiveDateTime,
    /// The handover as received: who it went to is read from it (the
    /// model's job, not the database's).
    #[diesel(sql_type = Text)]
    pub raw: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub replied_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Text>)]
    pub replied_by: Option<String>,
}

/// Every handover (`assignee_change`) since `since`, each with the first
/// agent message of its conversation at or after it. One statement: the
/// handovers come from `events_type_time`, each reply is one seek in the
/// partial index `events_agent_messages` (so the cost grows with the
/// handovers in the window, not with the events stored).
pub fn handovers_and_replies(
    conn: &mut DbConnection,
    since: NaiveDateTime,
) -> QueryResult<Vec<Handover>> {
    // The literals must stay literals: they are what lets both backends
    // use the partial index.
    const FIRST_REPLY: &str = "FROM events m \
        WHERE m.conversation_key = h.conversation_key \
          AND m.event_type = 'message' AND m.actor_type = 'user' \
          AND m.occurred_at >= h.occurred_at \
        ORDER BY m.occurred_at, m.id LIMIT 1";
    const HANDOVERS: &str = "WHERE h.event_type = 'assignee_change' AND h.occurred_at >= $1";
    // PostgreSQL hash-joins the whole table for the SQLite form (1.5 s at
    // a million events): see the backend's join.
    let from = crate::backend::join_first_of_events(
        conn,
        "events h",
        "r",
        "m.occurred_at, m.actor_email",
        FIRST_REPLY,
    );
    let sql = format!(
        "SELECT h.id AS id, h.occurred_at AS handed_at, h.raw AS raw, \
         r.occurred_at AS replied_at, r.actor_email AS replied_by {from} {HANDOVERS}"
    );
    diesel::sql_query(sql)
        .bind::<Timestamp, _>(since)
        .load(conn)
}

/// A conversation as lists name it: its visitor and its title.
#[derive(Clone, Debug, PartialEq, Queryable)]
pub struct ConversationName {
    pub key: String,
    pub visitor_name: Option<String>,
    pub visitor_email: Option<String>,
    pub title: Option<String>,
}

/// The names of the conversations `keys` (one page of a list: by primary
/// key, at most as many rows as keys).
pub fn conversation_names(
    conn: &mut DbConnection,
    keys: &[String],
) -> QueryResult<Vec<ConversationName>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    conversations::table
        .filter(conversations::key.eq_any(keys))
        .select((
            conversations::key,
            conversations::visitor_name,
            conversations::visitor_email,
            conversations::title,
        ))
        .load(conn)
}

/// When each rule last fired (its newest notification, whatever became of
/// it), by rule id.
pub fn last_fired(conn: &mut DbConnection) -> QueryResult<Vec<(i64, NaiveDateTime)>> {
    let rows: Vec<(Option<i64>, Option<NaiveDateTime>)> = notifications::table
        .filter(notifications::rule_id.is_not_null())
        .group_by(notifications::rule_id)
        .select((
            notifications::rule_id,
            diesel::dsl::max(notifications::created_at),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, at)| Some((id?, at?)))
        .collect())
}
