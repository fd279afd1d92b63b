//! `/ui/conversations` and `/ui/conversations/{key}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{echo, message, next_link, nonempty_query, render, session, transcript};
use crate::api::conversations::{load, load_page, LIST_PARAMS};
use crate::params::Query;
use crate::{views, AppState};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/conversations", web::get().to(list))
        .route("/ui/conversations/{key}", web::get().to(detail));
}

const FILTERS: [&str; 4] = ["q", "status", "assignee", "bot"];

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
        Ok((rows, next)) => (rows.iter().map(views::conversation).collect(), next, None),
        Err(error) => (Vec::new(), None, Some(message(&error))),
    };
    let next = next_link("/ui/conversations", &filters, next);
    render(
        &state,
        "conversations",
        "conversations",
        &session,
        json!({
            "title": "Conversations", "items": items, "next": next, "filters": filters, "filtered": filtered, "error": error,
        }),
    )
}

async fn detail(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(session) = session(&state, &req) else {
        return super::to_login();
    };
    let detail = match load(&state, path.into_inner()).await {
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
        }),
    )
}
