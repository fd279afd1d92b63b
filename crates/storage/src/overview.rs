//! What the overview page reads: a few aggregate queries over events,
//! notifications and conversations. Each one is bounded by a time window or
//! a limit and goes through an index, so it stays fast at a million events
//! (`hookline-bench query` measures them). Also the two small lookups the
//! list pages add to their rows: conversations' names, rules' last fire.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use crate::schema::{conversations, events, notifications};
use crate::DbConnection;

/// Events of one type in one hour.
#[derive(Clone, Debug, PartialEq)]
pub struct HourCount {
    pub event_type: String,
    /// The hour's start.
    pub hour: NaiveDateTime,
    pub count: i64,
}

/// Events of each type of `types` in each of the `hours` hours from
/// `since` (the start of an hour); hours without any are left out.
///
/// One range count per type and hour, each in the index
/// `events_type_time`: counting a range of an index is what both backends
/// do fastest, where grouping by an expression of the time sorted every
/// event of the window (a week of a million-event database: 504 ms on
/// SQLite, against 39 ms this way). A type with no event in the window
/// costs one seek.
pub fn events_per_hour(
    conn: &mut DbConnection,
    since: NaiveDateTime,
    hours: u32,
    types: &[&str],
) -> QueryResult<Vec<HourCount>> {
    let hour = chrono::Duration::hours(1);
    let end = since + hour * hours as i32;
    let in_range = |event_type: &str, from: NaiveDateTime, to: NaiveDateTime| {
        events::table
            .filter(events::event_type.eq(event_type.to_owned()))
            .filter(events::occurred_at.ge(from))
            .filter(events::occurred_at.lt(to))
    };
    let mut out = Vec::new();
    for event_type in types {
        let any: Option<i64> = in_range(event_type, since, end)
            .select(events::id)
            .first(conn)
            .optional()?;
        if any.is_none() {
            continue;
        }
        for n in 0..hours {
            let from = since + hour * n as i32;
            let count: i64 = in_range(event_type, from, from + hour)
                .count()
                .get_result(conn)?;
            if count > 0 {
                out.push(HourCount {
                    event_type: (*event_type).to_owned(),
                    hour: from,
                    count,
                });
            }
        }
    }
    Ok(out)
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
    /// Who it went to, as ingest wrote it (`""`: to no agent); `None` for
    /// handovers stored before that column existed.
    #[diesel(sql_type = Nullable<Text>)]
    pub handed_to: Option<String>,
    /// The handover as received, only where `handed_to` is `None`: who it
    /// went to is then read from it (the model's job, not the database's).
    #[diesel(sql_type = Nullable<Text>)]
    pub raw: Option<String>,
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
        "SELECT h.id AS id, h.occurred_at AS handed_at, h.handed_to AS handed_to, \
         CASE WHEN h.handed_to IS NULL THEN h.raw END AS raw, \
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
