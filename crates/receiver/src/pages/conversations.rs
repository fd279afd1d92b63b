//! `/ui/conversations` and `/ui/conversations/{key}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{listing, render, session, transcript, with};
use crate::api::conversations::{load, load_page, DETAIL_PARAMS, LIST_PARAMS};
use crate::params::{Query, MAX_LIMIT};
use crate::{views, AppState};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/conversations", web::get().to(list))
        .route("/ui/conversations/{key}", web::get().to(detail));
}

const FILTERS: [&str; 4] = ["q", "status", "assignee", "bot"];

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let loader = state.clone();
    let page = listing(
        &req,
        "/ui/conversations",
        &FILTERS,
        &LIST_PARAMS,
        |query| async move { load_page(&loader, &query).await },
        views::conversation,
    )
    .await;
    render(
        &state,
        "conversations",
        "conversations",
        &session,
        with(page, json!({"title": "Conversations"})),
    )
}

async fn detail(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    // A page of events at a time: the transcript of a long conversation
    // continues behind a link instead of loading whole.
    let detail = match Query::parse(&req, &DETAIL_PARAMS) {
        Ok(query) => match query.cursor() {
            Ok(cursor) => load(&state, path.into_inner(), cursor, MAX_LIMIT).await,
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    let detail = match detail {
        Ok(detail) => detail,
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let items: Vec<_> = detail.events.iter().map(transcript::entry).collect();
    let details = hookline_notifier::render::visitor_details(detail.events.iter());
    let title = detail
        .conversation
        .visitor_name
        .clone()
        .unwrap_or_else(|| "Conversation".to_owned());
    render(
        &state,
        "conversation",
        "conversations",
        &session,
        json!({
            "title": title,
            "c": views::conversation(&detail.conversation),
            "items": items,
            "details": details,
            "notifications": detail.notifications.iter().map(views::notification).collect::<Vec<_>>(),
            "next_cursor": detail.next_cursor,
        }),
    )
}
