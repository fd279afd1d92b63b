//! `GET /events`, `GET /events/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_notifier::context::evaluation_context;
use hookline_notifier::fields::{flatten, FieldValue};
use hookline_storage::events::{self, EventFilter};
use serde_json::json;

use super::{db_error, with_db};
use crate::error::ApiError;
use crate::params::{
    cursor, param, split_time_cursor, time_cursor, CursorKind, Kind, Param, Query, LIMIT,
};
use crate::{views, AppState};

pub const FILTERS: [Param; 10] = [
    param(
        "type",
        Kind::Text,
        "Event type: conversation_create, message, status, assignee_change, ...",
    ),
    param(
        "message_type",
        Kind::Text,
        "Message type: text, image, form.response, ...",
    ),
    param("conversation", Kind::Text, "Conversation key."),
    param("account", Kind::Integer, "Account id."),
    param("bot", Kind::Integer, "Bot id."),
    param("visitor", Kind::Text, "Visitor key."),
    param(
        "actor",
        Kind::Text,
        "Email of who sent, closed, handed over, noted.",
    ),
    param(
        "since",
        Kind::Time,
        "Events that happened at or after this time (RFC 3339).",
    ),
    param(
        "until",
        Kind::Time,
        "Events that happened before this time (RFC 3339).",
    ),
    param(
        "q",
        Kind::Words,
        "Words in the summary or the raw JSON (message text, notes, addresses): every word of q must be a word there, in any case; a word followed by * (invo*) matches any word starting so. A q without a letter or digit is refused (400).",
    ),
];

pub const LIST_PARAMS: [Param; 12] = [
    FILTERS[0],
    FILTERS[1],
    FILTERS[2],
    FILTERS[3],
    FILTERS[4],
    FILTERS[5],
    FILTERS[6],
    FILTERS[7],
    FILTERS[8],
    FILTERS[9],
    LIMIT,
    cursor(CursorKind::TimeAndId),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/events").get(list))
        .service(web::resource("/events/{id}").get(get))
        .service(web::resource("/events/{id}/fields").get(fields));
}

/// The filter from a validated query.
pub fn filter(query: &Query) -> Result<EventFilter, ApiError> {
    // Stored in their bounded form: a filter by a long value finds it.
    let indexed = |name: &str| query.text(name).map(hookline_storage::bounded);
    let q = query.text("q");
    Ok(EventFilter {
        event_type: indexed("type"),
        message_type: indexed("message_type"),
        conversation: indexed("conversation"),
        account: query.integer("account")?,
        bot: query.integer("bot")?,
        visitor: indexed("visitor"),
        actor: indexed("actor"),
        since: query.time("since")?,
        until: query.time("until")?,
        q,
        max_id: None,
    })
}

/// One page of events and the cursor of the next, for the API and pages.
pub async fn load_page(
    state: &web::Data<AppState>,
    query: &Query,
) -> Result<(Vec<events::StoredEvent>, Option<String>), ApiError> {
    let filter = filter(query)?;
    let limit = query.limit()?;
    let cursor = match query.cursor()? {
        Some(text) => {
            let (at, id) = split_time_cursor(&text)
                .and_then(|(at, id)| Some((at, id.parse::<i64>().ok()?)))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        "parameter \"cursor\": not an events cursor",
                    )
                })?;
            Some((at, id))
        }
        None => None,
    };
    let rows = with_db(state, move |conn| {
        events::page_without_raw(conn, &filter, cursor, limit + 1).map_err(db_error)
    })
    .await?;
    Ok(paged(rows, limit, |e| {
        time_cursor(e.occurred_at, &e.id.to_string())
    }))
}

/// Splits `limit + 1` rows into a page and the next cursor.
pub fn paged<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    (rows, next)
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(&req, &LIST_PARAMS)?;
    let (rows, next) = load_page(&state, &query).await?;
    super::json_page(rows, next, views::event).await
}

/// Every field path and value rules see on stored event `id` (the
/// conversation as it is now); `None` when there is no such event.
pub fn event_fields(
    conn: &mut hookline_storage::DbConnection,
    id: i64,
) -> Result<Option<Vec<FieldValue>>, ApiError> {
    let Some(event) = events::get(conn, id).map_err(db_error)? else {
        return Ok(None);
    };
    let conversation = match &event.conversation_key {
        Some(key) => hookline_storage::conversations::get(conn, key).map_err(db_error)?,
        None => None,
    };
    let context = evaluation_context(
        &hookline_notifier::context::EventFacts::stored(&event),
        conversation.as_ref(),
    );
    Ok(Some(flatten(&context)))
}

/// An event id from the path: a number, or 400 naming it.
fn event_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("event id {raw:?} is not a number"),
        )
    })
}

/// `GET /events/{id}/fields`: the field browser.
async fn fields(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    let fields = with_db(&state, move |conn| event_fields(conn, id)).await?;
    let fields = fields.ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    Ok(HttpResponse::Ok().json(json!({
        "event_id": id,
        "note": "conversation.* is the conversation's state now; rules saw it as of the event",
        "fields": fields,
    })))
}

async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    let event = with_db(&state, move |conn| events::get(conn, id).map_err(db_error)).await?;
    event
        .map(|e| HttpResponse::Ok().json(views::event_detail(&e)))
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))
}
