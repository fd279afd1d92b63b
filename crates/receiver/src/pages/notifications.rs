//! `/ui/notifications`: the email log, with resend.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_storage::notifications::STATUSES;
use serde_json::json;

use super::{field, form, listing, redirect, render, session, with};
use crate::api::notifications::{load_page, requeue, LIST_PARAMS};
use crate::{views, AppState};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/notifications", web::get().to(list))
        .route("/ui/notifications/{id}", web::get().to(super::email::show))
        .route("/ui/notifications/{id}/resend", web::post().to(resend));
}

const FILTERS: [&str; 4] = ["status", "rule", "recipient", "conversation"];

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let loader = state.clone();
    let page = listing(
        &req,
        "/ui/notifications",
        &FILTERS,
        &LIST_PARAMS,
        |query| async move { load_page(&loader, &query).await },
        views::notification,
    )
    .await;
    let notice = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()
        .and_then(|q| {
            q.into_inner()
                .into_iter()
                .find(|(k, _)| k == "resent")
                .map(|(_, v)| format!("Email {v} queued again."))
        });
    let extra = json!({"title": "Emails", "statuses": STATUSES, "notice": notice});
    render(
        &state,
        "notifications",
        "notifications",
        &session,
        with(page, extra),
    )
    .await
}

async fn resend(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
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
