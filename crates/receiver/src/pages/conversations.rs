//! `/ui/conversations` and `/ui/conversations/{key}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use hookline_storage::{conversations, events, notifications};
use serde_json::Value;

use super::{listing, render, session, transcript, with};
use crate::api::conversations::{load_page, DETAIL_NOTIFICATIONS, LIST_PARAMS};
use crate::api::{db_error, with_db};
use crate::error::ApiError;
use crate::params::{param, split_time_cursor, time_cursor, CursorKind, Kind, Param, Query};
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
    .await
}

/// Events a conversation page shows: the newest, then older ones behind a
/// link. A 34,000-event conversation's page stays small and fast.
pub const PAGE_EVENTS: i64 = 100;

/// Raw JSON up to this size is inline in the page; a larger item's is one
/// click away, on its event page.
const INLINE_RAW_BYTES: usize = 4_096;

/// `?before=CURSOR`: the events before it.
const PAGE_PARAMS: [Param; 1] = [param(
    "before",
    Kind::Cursor(CursorKind::TimeAndId),
    "The older_cursor of the page after: the events before it.",
)];

async fn detail(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let before = match Query::parse(&req, &PAGE_PARAMS).and_then(|q| before_cursor(&q)) {
        Ok(before) => before,
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let key = path.into_inner();
    let shown = key.clone();
    let bounded = hookline_storage::bounded(key.clone());
    let found = with_db(&state, move |conn| {
        if bounded.contains('\0') {
            return Ok(None);
        }
        let Some(conversation) = conversations::get(conn, &bounded).map_err(db_error)? else {
            return Ok(None);
        };
        let rows = events::for_conversation_before(conn, &bounded, before, PAGE_EVENTS + 1)
            .map_err(db_error)?;
        let emails = if before.is_none() {
            notifications::for_conversation(conn, &bounded, DETAIL_NOTIFICATIONS)
                .map_err(db_error)?
        } else {
            Vec::new()
        };
        Ok(Some((conversation, rows, emails)))
    })
    .await;
    let (conversation, mut rows, emails) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return actix_web::ResponseError::error_response(&ApiError::not_found(format!(
                "no conversation {shown:?}"
            )))
        }
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let timers = match conversation_timers(&state, &conversation.key).await {
        Ok(timers) => timers,
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let older = rows.len() as i64 > PAGE_EVENTS;
    rows.truncate(PAGE_EVENTS as usize);
    let older_cursor = older
        .then(|| {
            rows.last()
                .map(|e| time_cursor(e.occurred_at, &e.id.to_string()))
        })
        .flatten();
    // Oldest first on the page, as a transcript reads.
    rows.reverse();
    let items: Vec<_> = rows
        .iter()
        .map(|event| {
            let mut entry = transcript::entry(event);
            if event.raw.len() > INLINE_RAW_BYTES {
                entry["raw_json"] = Value::Null;
                entry["raw_bytes"] = json!(event.raw.len());
            }
            entry
        })
        .collect();
    // Name and email come from the conversation row (which has them
    // whatever page of events is shown); the rest of what the visitor told
    // is listed once, without repeating them.
    let known = [&conversation.visitor_name, &conversation.visitor_email];
    let details: Vec<Value> = hookline_notifier::render::visitor_details(rows.iter())
        .into_iter()
        .filter(|d| {
            !known
                .iter()
                .any(|k| k.is_some() && k.as_deref() == d["value"].as_str())
        })
        .collect();
    let title = conversation
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
            "c": views::conversation(&conversation),
            "items": items,
            "details": details,
            "notifications": emails.iter().map(views::notification).collect::<Vec<_>>(),
            "older_cursor": older_cursor,
            "paged_back": before.is_some(),
            "shown": rows.len(),
            "timers": timers,
        }),
    )
    .await
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
            let when = super::when::local_naive(t.due_at, state.time_zone);
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

fn before_cursor(query: &Query) -> Result<Option<(chrono::NaiveDateTime, i64)>, ApiError> {
    let Some(text) = query.text("before") else {
        return Ok(None);
    };
    let decoded = Query::parse_str(
        &format!("cursor={text}"),
        &[crate::params::cursor(CursorKind::TimeAndId)],
    )?
    .cursor()?
    .unwrap_or_default();
    split_time_cursor(&decoded)
        .and_then(|(at, id)| Some((at, id.parse::<i64>().ok()?)))
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                "parameter \"before\": not a cursor of this conversation's events",
            )
        })
}
