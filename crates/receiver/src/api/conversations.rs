//! `GET /conversations`, `GET /conversations/{key}`.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_storage::conversations::{self, ConversationFilter};
use hookline_storage::{events, notifications};
use serde_json::json;

use super::events::paged;
use super::{db_error, with_db};
use crate::error::ApiError;
use crate::params::{param, split_time_cursor, time_cursor, Kind, Param, Query, CURSOR, LIMIT};
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
    CURSOR,
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/conversations", web::get().to(list))
        .route("/conversations/{key}", web::get().to(get));
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
    let items: Vec<_> = rows.iter().map(views::conversation).collect();
    Ok(HttpResponse::Ok().json(json!({"items": items, "next_cursor": next})))
}

/// Everything about one conversation.
pub struct Detail {
    pub conversation: conversations::Conversation,
    pub events: Vec<events::StoredEvent>,
    pub notifications: Vec<notifications::Notification>,
}

pub async fn load(state: &web::Data<AppState>, key: String) -> Result<Detail, ApiError> {
    let shown = key.clone();
    let key = hookline_storage::bounded(key);
    let found = with_db(state, move |conn| {
        let Some(conversation) = conversations::get(conn, &key).map_err(db_error)? else {
            return Ok(None);
        };
        let events = events::for_conversation(conn, &key).map_err(db_error)?;
        let notifications = notifications::for_conversation(conn, &key).map_err(db_error)?;
        Ok(Some(Detail {
            conversation,
            events,
            notifications,
        }))
    })
    .await?;
    found.ok_or_else(|| ApiError::not_found(format!("no conversation {shown:?}")))
}

async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let detail = load(&state, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({
        "conversation": views::conversation(&detail.conversation),
        "events": detail.events.iter().map(views::event).collect::<Vec<_>>(),
        "notifications": detail.notifications.iter().map(views::notification).collect::<Vec<_>>(),
    })))
}
