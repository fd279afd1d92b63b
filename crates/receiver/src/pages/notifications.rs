//! `/ui/notifications`: the email log, with resend.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_storage::notifications::STATUSES;
use serde_json::json;

use super::{echo, field, form, message, next_link, nonempty_query, redirect, render, session};
use crate::api::notifications::{load_page, requeue, LIST_PARAMS};
use crate::params::Query;
use crate::{views, AppState};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/notifications", web::get().to(list))
        .route("/ui/notifications/{id}/resend", web::post().to(resend));
}

const FILTERS: [&str; 4] = ["status", "rule", "recipient", "conversation"];

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(session) = session(&state, &req) else {
        return super::to_login();
    };
    let filters = echo(&req, &FILTERS);
    let filtered = FILTERS
        .iter()
        .any(|f| filters[*f].as_str().is_some_and(|v| !v.is_empty()));
    let result = match Query::parse_str(&nonempty_query(&req), &LIST_PARAMS) {
        Ok(query) => load_page(&state, &query).await,
        Err(error) => Err(error),
    };
    let (items, next, error) = match result {
        Ok((rows, next)) => (rows.iter().map(views::notification).collect(), next, None),
        Err(error) => (Vec::new(), None, Some(message(&error))),
    };
    let notice = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()
        .and_then(|q| {
            q.into_inner()
                .into_iter()
                .find(|(k, _)| k == "resent")
                .map(|(_, v)| format!("Email {v} queued again."))
        });
    render(
        &state,
        "notifications",
        "notifications",
        &session,
        json!({
            "title": "Emails", "items": items, "next": next_link("/ui/notifications", &filters, next),
            "filters": filters, "filtered": filtered, "error": error, "statuses": STATUSES, "notice": notice,
        }),
    )
}

async fn resend(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(session) = session(&state, &req) else {
        return super::to_login();
    };
    if let Err(error) = session.check_csrf(field(&form(&body), "csrf")) {
        return actix_web::ResponseError::error_response(&error);
    }
    let Ok(id) = path.parse::<i64>() else {
        return actix_web::ResponseError::error_response(&crate::ApiError::not_found(
            "no such notification",
        ));
    };
    match requeue(&state, id).await {
        Ok(_) => redirect(&format!("/ui/notifications?resent={id}")),
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}
