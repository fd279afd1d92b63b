//! `GET /notifications`, `POST /notifications/{id}/resend`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use hookline_storage::notifications::{self, NotificationFilter, STATUSES};

use super::events::paged;
use super::{db_error, with_db};
use crate::error::ApiError;
use crate::params::{cursor, encode_cursor, param, CursorKind, Kind, Param, Query, LIMIT};
use crate::{views, AppState};

pub const LIST_PARAMS: [Param; 6] = [
    param(
        "status",
        Kind::OneOf(&STATUSES),
        "queued, sending, sent, failed, dead, suppressed or skipped.",
    ),
    param("rule", Kind::Text, "Rule name."),
    param("conversation", Kind::Text, "Conversation key."),
    param("recipient", Kind::Text, "Recipient email."),
    LIMIT,
    cursor(CursorKind::Id),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/notifications").get(list))
        .service(web::resource("/notifications/{id}/resend").post(resend));
}

pub async fn load_page(
    state: &web::Data<AppState>,
    query: &Query,
) -> Result<(Vec<notifications::Notification>, Option<String>), ApiError> {
    let filter = NotificationFilter {
        status: query.text("status"),
        rule: query.text("rule"),
        conversation: query.text("conversation"),
        recipient: query.text("recipient"),
    };
    let limit = query.limit()?;
    let cursor = match query.cursor()? {
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_parameter",
                "parameter \"cursor\": not a notifications cursor",
            )
        })?),
        None => None,
    };
    let rows = with_db(state, move |conn| {
        notifications::page(conn, &filter, cursor, limit + 1).map_err(db_error)
    })
    .await?;
    Ok(paged(rows, limit, |n| encode_cursor(&n.id.to_string())))
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(&req, &LIST_PARAMS)?;
    let (rows, next) = load_page(&state, &query).await?;
    super::json_page(rows, next, views::notification).await
}

/// Queues a notification again, due now; the worker is woken.
pub async fn requeue(
    state: &web::Data<AppState>,
    id: i64,
) -> Result<notifications::Notification, ApiError> {
    let row = with_db(state, move |conn| {
        let Some(n) = notifications::get(conn, id).map_err(db_error)? else {
            return Err(ApiError::not_found(format!("no notification {id}")));
        };
        if matches!(
            n.status.as_str(),
            notifications::QUEUED | notifications::SENDING
        ) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_queued",
                format!("notification {id} is already {}", n.status),
            ));
        }
        if n.status == notifications::SKIPPED {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_recipient",
                format!(
                    "notification {id} has no valid recipient: {}",
                    n.reason.clone().unwrap_or_default()
                ),
            ));
        }
        if !notifications::requeue(conn, id, hookline_storage::now()).map_err(db_error)? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_queued",
                format!("notification {id} was queued or claimed meanwhile"),
            ));
        }
        notifications::get(conn, id)
            .map_err(db_error)?
            .ok_or_else(|| ApiError::not_found(format!("no notification {id}")))
    })
    .await?;
    state.wake.notify_one();
    Ok(row)
}

async fn resend(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("notification id {:?} is not a number", path.as_str()),
        )
    })?;
    let row = requeue(&state, id).await?;
    Ok(HttpResponse::Accepted().json(views::notification(&row)))
}
