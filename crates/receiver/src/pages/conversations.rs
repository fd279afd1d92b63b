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
    let timers = match conversation_timers(&state, &detail.conversation.key).await {
        Ok(timers) => timers,
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
            "timers": timers,
        }),
    )
}

/// The timers of a conversation (time-based alerts), newest first, as the
/// page shows them: armed ones say when they fire and to whom.
async fn conversation_timers(
    state: &web::Data<AppState>,
    key: &str,
) -> Result<Vec<serde_json::Value>, crate::error::ApiError> {
    use hookline_storage::timers;
    let key = key.to_owned();
    let rows = crate::api::with_db(state, move |conn| {
        timers::for_conversation(conn, &key, 50).map_err(crate::api::db_error)
    })
    .await?;
    Ok(rows
        .iter()
        .map(|t| {
            let when = t.due_at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
            let what = if t.step == 0 {
                "alerts"
            } else {
                "escalates to"
            };
            let line = match t.status.as_str() {
                timers::ARMED => format!(
                    "{what} {} at {when} unless a stop event arrives",
                    t.recipients
                ),
                timers::HELD => format!("{what} {} when quiet hours end, at {when}", t.recipients),
                timers::FIRING => format!("firing now: {what} {}", t.recipients),
                timers::FIRED => format!("{what} {}: fired (due {when})", t.recipients),
                _ => format!("{what} {} at {when}: {}", t.recipients, t.status),
            };
            json!({
                "id": t.id,
                "rule": t.rule_name,
                "status": t.status,
                "step": t.step + 1,
                "episode": t.episode,
                "line": line,
                "reason": t.reason,
            })
        })
        .collect())
}
