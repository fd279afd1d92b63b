//! `GET /timers`: time-based alerts, armed, fired, cancelled, missed.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_storage::timers::{self, TimerFilter, STATUSES};
use serde_json::json;

use super::events::paged;
use super::{db_error, with_db};
use crate::error::ApiError;
use crate::params::{cursor, encode_cursor, param, rfc3339, CursorKind, Kind, Param, Query, LIMIT};
use crate::AppState;

pub const LIST_PARAMS: [Param; 5] = [
    param(
        "status",
        Kind::OneOf(&STATUSES),
        "armed, held, firing, fired, cancelled or missed.",
    ),
    param("rule", Kind::Text, "Rule name."),
    param("conversation", Kind::Text, "Conversation key."),
    LIMIT,
    cursor(CursorKind::Id),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/timers").get(list));
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(&req, &LIST_PARAMS)?;
    let filter = TimerFilter {
        status: query.text("status"),
        rule: query.text("rule"),
        conversation: query.text("conversation"),
    };
    let limit = query.limit()?;
    let cursor = match query.cursor()? {
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_parameter",
                "parameter \"cursor\": not a timers cursor",
            )
        })?),
        None => None,
    };
    let rows = with_db(&state, move |conn| {
        timers::page(conn, &filter, cursor, limit + 1).map_err(db_error)
    })
    .await?;
    let (rows, next) = paged(rows, limit, |t| encode_cursor(&t.id.to_string()));
    let items: Vec<_> = rows.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({"items": items, "next_cursor": next})))
}

/// A timer as the API shows it.
pub fn view(t: &timers::Timer) -> serde_json::Value {
    json!({
        "id": t.id,
        "rule_id": t.rule_id,
        "rule": t.rule_name,
        "conversation_key": t.conversation_key,
        "episode": t.episode,
        "step": t.step + 1,
        "status": t.status,
        "started_at": rfc3339(t.started_at),
        "due_at": rfc3339(t.due_at),
        "event_id": t.event_id,
        "recipients": t.recipients,
        "template": t.template,
        "fired_at": t.fired_at.map(rfc3339),
        "reason": t.reason,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
    })
}
