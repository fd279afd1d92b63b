//! `GET /conversations`, `GET /conversations/{key}`.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_storage::conversations::{self, ConversationFilter};
use hookline_storage::{events, notifications};
use serde_json::json;

use super::events::paged;
use super::{db_error, with_db};
use crate::error::ApiError;
use crate::params::{
    cursor, param, split_time_cursor, time_cursor, CursorKind, Kind, Param, Query, LIMIT, MAX_LIMIT,
};
use crate::{views, AppState};

pub const LIST_PARAMS: [Param; 8] = [
    param(
        "status",
        Kind::OneOf(&["open", "closed"]),
        "open or closed.",
    ),
    param("assignee", Kind::Text, "Assignee email."),
    param("bot", Kind::Integer, "Bot id."),
    param(
        "since",
        Kind::Time,
        "Active at or after this time (RFC 3339).",
    ),
    param(
        "until",
        Kind::Time,
        "Last active before this time (RFC 3339).",
    ),
    param(
        "q",
        Kind::Text,
        "Text in the key, title, visitor name or email.",
    ),
    LIMIT,
    cursor(CursorKind::TimeAndKey),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Resources, not `cfg.route`: another method on a known path is a 405
    // with `Allow`, not a 404.
    cfg.service(web::resource("/conversations").get(list))
        .service(web::resource("/conversations/{key}").get(get));
}

pub async fn load_page(
    state: &web::Data<AppState>,
    query: &Query,
) -> Result<(Vec<conversations::Conversation>, Option<String>), ApiError> {
    let filter = ConversationFilter {
        status: query.text("status"),
        assignee: query.text("assignee"),
        bot: query.integer("bot")?,
        since: query.time("since")?,
        until: query.time("until")?,
        q: query.text("q"),
    };
    let limit = query.limit()?;
    let cursor = match query.cursor()? {
        Some(text) => Some(
            split_time_cursor(&text)
                .map(|(at, key)| (at, key.to_owned()))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        "parameter \"cursor\": not a conversations cursor",
                    )
                })?,
        ),
        None => None,
    };
    let rows = with_db(state, move |conn| {
        conversations::page(conn, &filter, cursor, limit + 1).map_err(db_error)
    })
    .await?;
    Ok(paged(rows, limit, |c| time_cursor(c.last_event_at, &c.key)))
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(&req, &LIST_PARAMS)?;
    let (rows, next) = load_page(&state, &query).await?;
    super::json_page(rows, next, views::conversation).await
}

/// Parameters of `GET /conversations/{key}`: its events come a page at a
/// time (a conversation can hold 100,000 events; reading them whole took
/// hundreds of MB for one request).
pub const DETAIL_PARAMS: [Param; 2] = [
    param(
        "limit",
        Kind::Limit,
        "Events per page, 1 to 500 (default 500).",
    ),
    param(
        "cursor",
        Kind::Cursor(CursorKind::TimeAndId),
        "The next_cursor of the previous page: the events after it.",
    ),
];

/// The most notifications a conversation's detail lists (its first page).
pub const DETAIL_NOTIFICATIONS: i64 = MAX_LIMIT;

/// One conversation with one page of its events.
pub struct Detail {
    pub conversation: conversations::Conversation,
    /// Oldest first, at most the page's limit.
    pub events: Vec<events::StoredEvent>,
    /// The first [`DETAIL_NOTIFICATIONS`]; only on the first page.
    pub notifications: Vec<notifications::Notification>,
    /// Where the next page of events starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The conversation `key` with the events after `cursor` (text of a
/// `next_cursor`), at most `limit`.
pub async fn load(
    state: &web::Data<AppState>,
    key: String,
    cursor: Option<String>,
    limit: i64,
) -> Result<Detail, ApiError> {
    let shown = key.clone();
    // No stored key holds a NUL (PostgreSQL could not even compare one).
    if key.contains('\0') {
        return Err(ApiError::not_found(format!("no conversation {shown:?}")));
    }
    let key = hookline_storage::bounded(key);
    let after = match cursor {
        Some(text) => Some(
            split_time_cursor(&text)
                .and_then(|(at, id)| Some((at, id.parse::<i64>().ok()?)))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        "parameter \"cursor\": not a cursor of this conversation's events",
                    )
                })?,
        ),
        None => None,
    };
    let found = with_db(state, move |conn| {
        let Some(conversation) = conversations::get(conn, &key).map_err(db_error)? else {
            return Ok(None);
        };
        let rows = events::for_conversation(conn, &key, after, limit + 1).map_err(db_error)?;
        let notifications = if after.is_none() {
            notifications::for_conversation(conn, &key, DETAIL_NOTIFICATIONS).map_err(db_error)?
        } else {
            Vec::new()
        };
        Ok(Some((conversation, rows, notifications)))
    })
    .await?;
    let (conversation, rows, notifications) =
        found.ok_or_else(|| ApiError::not_found(format!("no conversation {shown:?}")))?;
    let (events, next_cursor) = paged(rows, limit, |e| {
        time_cursor(e.occurred_at, &e.id.to_string())
    });
    Ok(Detail {
        conversation,
        events,
        notifications,
        next_cursor,
    })
}

async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(&req, &DETAIL_PARAMS)?;
    let limit = query.integer("limit")?.unwrap_or(MAX_LIMIT);
    let detail = load(&state, path.into_inner(), query.cursor()?, limit).await?;
    Ok(HttpResponse::Ok().json(json!({
        "conversation": views::conversation(&detail.conversation),
        "events": detail.events.iter().map(views::event).collect::<Vec<_>>(),
        "notifications": detail.notifications.iter().map(views::notification).collect::<Vec<_>>(),
        "next_cursor": detail.next_cursor,
    })))
}
