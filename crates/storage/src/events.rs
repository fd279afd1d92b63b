//! The `events` table: every item delivered, once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::events;
use crate::{per_backend, DbConnection};

/// A row to insert.
#[derive(Clone, Debug, PartialEq, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent {
    pub dedupe_key: String,
    pub event_type: String,
    pub message_type: Option<String>,
    pub conversation_key: Option<String>,
    pub conversation_id: Option<i64>,
    pub account_id: Option<i64>,
    pub bot_id: Option<i64>,
    pub visitor_key: Option<String>,
    pub visitor_id: Option<i64>,
    pub actor_type: Option<String>,
    pub actor_email: Option<String>,
    pub handed_to: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub received_at: NaiveDateTime,
    pub summary: String,
    pub raw: String,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = events)]
pub struct StoredEvent {
    pub id: i64,
    pub dedupe_key: String,
    pub event_type: String,
    pub message_type: Option<String>,
    pub conversation_key: Option<String>,
    pub conversation_id: Option<i64>,
    pub account_id: Option<i64>,
    pub bot_id: Option<i64>,
    pub visitor_key: Option<String>,
    pub visitor_id: Option<i64>,
    pub actor_type: Option<String>,
    pub actor_email: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub received_at: NaiveDateTime,
    pub summary: String,
    pub raw: String,
}

/// Inserts the event unless its dedupe key is stored; the new id, or `None`
/// for a duplicate. Concurrent inserts of one key store it once (the unique
/// index decides).
pub fn insert_if_new(conn: &mut DbConnection, event: &NewEvent) -> QueryResult<Option<i64>> {
    per_backend!(conn, c => {
        diesel::insert_into(events::table)
            .values(event)
            .on_conflict(events::dedupe_key)
            .do_nothing()
            .returning(events::id)
            .get_result::<i64>(c)
            .optional()
    })
}

/// Rows per multi-row insert on PostgreSQL: 16 columns each, well under
/// its limit of 65,535 bound parameters.
const INSERT_CHUNK: usize = 1_000;

/// Inserts every event whose dedupe key is not stored yet, in order, and
/// returns the keys it inserted with their new ids. An event repeated within `new` is inserted
/// once.
///
/// PostgreSQL takes one multi-row insert per chunk. SQLite gets one cached
/// single-row statement per event: diesel runs SQLite batch inserts row by
/// row anyway, and its batch path fails on a conflicting row that returns
/// nothing.
pub fn insert_new<'a>(
    conn: &mut DbConnection,
    new: impl Iterator<Item = &'a NewEvent>,
) -> QueryResult<crate::ingest::Inserted> {
    let new: Vec<&NewEvent> = new.collect();
    crate::backend::batched(
        conn,
        |c| {
            let mut inserted = crate::ingest::Inserted::with_capacity(new.len());
            for chunk in new.chunks(INSERT_CHUNK) {
                let rows: Vec<(String, i64)> = diesel::insert_into(events::table)
                    .values(chunk.to_vec())
                    .on_conflict(events::dedupe_key)
                    .do_nothing()
                    .returning((events::dedupe_key, events::id))
                    .get_results(c)?;
                inserted.extend(rows);
            }
            Ok(inserted)
        },
        |conn| {
            let mut inserted = crate::ingest::Inserted::with_capacity(new.len());
            for event in &new {
                if let Some(id) = insert_if_new(conn, event)? {
                    inserted.insert(event.dedupe_key.clone(), id);
                }
            }
            Ok(inserted)
        },
    )
}

/// How many events are stored.
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    events::table.count().get_result(conn)
}

/// Every stored event, in id order (tests and small tools).
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<StoredEvent>> {
    events::table
        .order(events::id.asc())
        .select(StoredEvent::as_select())
        .load(conn)
}

/// One event by id.
pub fn get(conn: &mut DbConnection, id: i64) -> QueryResult<Option<StoredEvent>> {
    events::table
        .find(id)
        .select(StoredEvent::as_select())
        .first(conn)
        .optional()
}

/// A conversation's events, oldest first (by occurrence, then arrival):
/// at most `limit`, those after `after` (the (occurred_at, id) of the
/// previous page's last event). Keyset paging over the index
/// (conversation_key, occurred_at, id): a long conversation is read a page
/// at a time, never whole.
pub fn for_conversation(
    conn: &mut DbConnection,
    key: &str,
    after: Option<EventCursor>,
    limit: i64,
) -> QueryResult<Vec<StoredEvent>> {
    let mut query = events::table
        .filter(events::conversation_key.eq(key.to_owned()))
        .select(StoredEvent::as_select())
        .into_boxed::<crate::MultiBackend>();
    if let Some((at, id)) = after {
        query = query.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("(events.occurred_at, events.id) > (")
                .bind::<diesel::sql_types::Timestamp, _>(at)
                .sql(", ")
                .bind::<diesel::sql_types::BigInt, _>(id)
                .sql(")"),
        );
    }
    query
        .order((events::occurred_at.asc(), events::id.asc()))
        .limit(limit)
        .load(conn)
}

/// A conversation's newest `limit` events before `before` (all when
/// `None`), newest first: the conversation page shows the latest events and
/// pages back in time.
pub fn for_conversation_before(
    conn: &mut DbConnection,
    key: &str,
    before: Option<EventCursor>,
    limit: i64,
) -> QueryResult<Vec<StoredEvent>> {
    let mut query = events::table
        .filter(events::conversation_key.eq(key.to_owned()))
        .select(StoredEvent::as_select())
        .into_boxed::<crate::MultiBackend>();
    if let Some((at, id)) = before {
        query = query.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("(events.occurred_at, events.id) < (")
                .bind::<diesel::sql_types::Timestamp, _>(at)
                .sql(", ")
                .bind::<diesel::sql_types::BigInt, _>(id)
                .sql(")"),
        );
    }
    query
        .order((events::occurred_at.desc(), events::id.desc()))
        .limit(limit)
        .load(conn)
}

/// Whether an event with this dedupe key is stored.
pub fn exists(conn: &mut DbConnection, dedupe_key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        events::table.filter(events::dedupe_key.eq(dedupe_key)),
    ))
    .get_result(conn)
}

/// A conversation's latest events of the given types that happened at or
/// before `until`, newest first.
pub fn recent_of_types(
    conn: &mut DbConnection,
    key: &str,
    types: &[&str],
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<StoredEvent>> {
    events::table
        .filter(events::conversation_key.eq(key))
        .filter(events::event_type.eq_any(types))
        .filter(events::occurred_at.le(until))
        .order((events::occurred_at.desc(), events::id.desc()))
        .limit(limit)
        .select(StoredEvent::as_select())
        .load(conn)
}

diesel::define_sql_function!(
    /// SQL `lower()`, on both backends.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
);

/// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` escaped.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Filters of the event history; every one optional.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub message_type: Option<String>,
    pub conversation: Option<String>,
    pub account: Option<i64>,
    pub bot: Option<i64>,
    pub visitor: Option<String>,
    /// Actor email.
    pub actor: Option<String>,
    /// occurred_at >= since.
    pub since: Option<NaiveDateTime>,
    /// occurred_at < until.
    pub until: Option<NaiveDateTime>,
    /// Words in the summary or the raw JSON (message text, notes): see
    /// [`crate::search`].
    pub q: Option<String>,
    /// Only events at or below this id (a consistent snapshot for exports).
    pub max_id: Option<i64>,
}

/// Where the previous page ended: (occurred_at, id) of its last item.
pub type EventCursor = (NaiveDateTime, i64);

/// `query` narrowed to the events `filter` selects, all but its `q`.
fn with_filters<'a, ST: 'a>(
    mut query: events::BoxedQuery<'a, crate::MultiBackend, ST>,
    filter: &EventFilter,
) -> events::BoxedQuery<'a, crate::MultiBackend, ST> {
    if let Some(t) = &filter.event_type {
        query = query.filter(events::event_type.eq(t.clone()));
    }
    if let Some(t) = &filter.message_type {
        query = query.filter(events::message_type.eq(t.clone()));
    }
    if let Some(c) = &filter.conversation {
        query = query.filter(events::conversation_key.eq(c.clone()));
    }
    if let Some(a) = filter.account {
        query = query.filter(events::account_id.eq(a));
    }
    if let Some(b) = filter.bot {
        query = query.filter(events::bot_id.eq(b));
    }
    if let Some(v) = &filter.visitor {
        query = query.filter(events::visitor_key.eq(v.clone()));
    }
    if let Some(a) = &filter.actor {
        query = query.filter(lower(events::actor_email.assume_not_null()).eq(a.to_lowercase()));
    }
    if let Some(since) = filter.since {
        query = query.filter(events::occurred_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(events::occurred_at.lt(until));
    }
    if let Some(max) = filter.max_id {
        query = query.filter(events::id.le(max));
    }
    query
}

/// `(occurred_at, id) < at` as a row-value comparison, so that both
/// databases read the index range (occurred_at, id) directly; `a < x OR
/// (a = x AND id < y)` made PostgreSQL filter instead.
fn before((at, id): EventCursor, op: &str) -> crate::search::Predicate {
    Box::new(
        diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "(events.occurred_at, events.id) {op} ("
        ))
        .bind::<diesel::sql_types::Timestamp, _>(at)
        .sql(", ")
        .bind::<diesel::sql_types::BigInt, _>(id)
        .sql(")"),
    )
}

/// One page of events, newest first (by occurred_at, then id), after
/// `cursor`. Keyset paging: a page deep in the history costs what the first
/// does, and events arriving meanwhile do not shift pages.
pub fn page(
    conn: &mut DbConnection,
    filter: &EventFilter,
    cursor: Option<EventCursor>,
    limit: i64,
) -> QueryResult<Vec<StoredEvent>> {
    page_with(conn, filter, cursor, limit, true)
}

/// [`page`] for lists that do not show the raw JSON: each event's `raw` is
/// empty, and is not read. A page of 500 events whose items are each near
/// the body limit would otherwise hold all their JSON in memory for
/// nothing.
pub fn page_without_raw(
    conn: &mut DbConnection,
    filter: &EventFilter,
    cursor: Option<EventCursor>,
    limit: i64,
) -> QueryResult<Vec<StoredEvent>> {
    page_with(conn, filter, cursor, limit, false)
}

/// `columns(with_raw)`: every column of [`StoredEvent`], in its order (it
/// loads by position), `raw` last and read only when `with_raw` (an empty
/// text otherwise). The list is written once, for the type and the value.
macro_rules! stored_event_columns {
    ($($column:ident),* $(,)?) => {
        type Columns = (
            $(events::$column,)*
            diesel::expression::SqlLiteral<diesel::sql_types::Text>,
        );

        fn columns(with_raw: bool) -> Columns {
            (
                $(events::$column,)*
                diesel::dsl::sql::<diesel::sql_types::Text>(if with_raw { "events.raw" } else { "''" }),
            )
        }
    };
}

stored_event_columns!(
    id,
    dedupe_key,
    event_type,
    message_type,
    conversation_key,
    conversation_id,
    account_id,
    bot_id,
    visitor_key,
    visitor_id,
    actor_type,
    actor_email,
    occurred_at,
    received_at,
    summary,
);

fn page_with(
    conn: &mut DbConnection,
    filter: &EventFilter,
    cursor: Option<EventCursor>,
    limit: i64,
    with_raw: bool,
) -> QueryResult<Vec<StoredEvent>> {
    let mut rare = false;
    if let Some(q) = filter.q.as_deref() {
        rare = crate::search::rare(conn, q)?;
        if !rare {
            if let Some(page) = newest_window(conn, filter, q, cursor, limit, with_raw)? {
                return Ok(page);
            }
        }
    }
    let mut query = with_filters(
        events::table
            .select(columns(with_raw))
            .into_boxed::<crate::MultiBackend>(),
        filter,
    );
    let mut few_matches = false;
    if let Some(q) = filter.q.as_deref() {
        if let Some(matches) = crate::search::predicate(conn, q, None) {
            query = query.filter(matches);
            few_matches = rare || crate::search::few_matches(conn, q)?;
        }
    }
    if let Some(cursor) = cursor {
        query = query.filter(before(cursor, "<"));
    }
    query = if few_matches {
        let (at, id) = crate::search::unindexed_order(conn);
        query.order((
            diesel::dsl::sql::<diesel::sql_types::Timestamp>(at).desc(),
            diesel::dsl::sql::<diesel::sql_types::BigInt>(id).desc(),
        ))
    } else {
        query.order((events::occurred_at.desc(), events::id.desc()))
    };
    query.limit(limit).load::<StoredEvent>(conn)
}

/// The newest events a word search looks at first: when the page is found
/// among them, it is the answer, and the search costs what reading these
/// costs, however common its words are over the whole history.
pub const SEARCH_WINDOW: i64 = 2_000;

/// A search's page from the newest [`SEARCH_WINDOW`] events the other
/// filters select (after `cursor`), if it is all there: full, or the window
/// held every such event. None otherwise (rarer words): the caller searches
/// the whole history. A common word's page is found here without reading
/// every match (SQLite) or counting them (PostgreSQL).
fn newest_window(
    conn: &mut DbConnection,
    filter: &EventFilter,
    q: &str,
    cursor: Option<EventCursor>,
    limit: i64,
    with_raw: bool,
) -> QueryResult<Option<Vec<StoredEvent>>> {
    if crate::search::words(q).is_empty() {
        return Ok(None);
    }
    let mut window = with_filters(
        events::table
            .select((events::occurred_at, events::id))
            .into_boxed::<crate::MultiBackend>(),
        filter,
    );
    if let Some(cursor) = cursor {
        window = window.filter(before(cursor, "<"));
    }
    let window: Vec<(NaiveDateTime, i64)> = window
        .order((events::occurred_at.desc(), events::id.desc()))
        .limit(SEARCH_WINDOW)
        .load(conn)?;
    let (Some(&oldest), Some(low), Some(high)) = (
        window.last(),
        window.iter().map(|&(_, id)| id).min(),
        window.iter().map(|&(_, id)| id).max(),
    ) else {
        return Ok(Some(Vec::new()));
    };
    let whole = (window.len() as i64) < SEARCH_WINDOW;
    let Some(matches) = crate::search::predicate(conn, q, Some((low, high))) else {
        return Ok(None);
    };
    let mut query = with_filters(
        events::table
            .select(columns(with_raw))
            .into_boxed::<crate::MultiBackend>(),
        filter,
    )
    .filter(matches)
    // The plain bound too: PostgreSQL estimates it from its statistics, the
    // row value not, and then walks the time index instead of every match.
    .filter(events::occurred_at.ge(oldest.0))
    .filter(before(oldest, ">="));
    if let Some(cursor) = cursor {
        query = query.filter(before(cursor, "<"));
    }
    let page: Vec<StoredEvent> = query
        .order((events::occurred_at.desc(), events::id.desc()))
        .limit(limit)
        .load::<StoredEvent>(conn)?;
    Ok((whole || page.len() as i64 >= limit).then_some(page))
}

/// The highest stored id (0 when empty).
pub fn max_id(conn: &mut DbConnection) -> QueryResult<i64> {
    events::table
        .select(diesel::dsl::max(events::id))
        .first::<Option<i64>>(conn)
        .map(Option::unwrap_or_default)
}
