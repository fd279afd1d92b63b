//! `/ui/events` and `/ui/events/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_storage::events;
use serde_json::json;

use super::{listing, render, session, with};
use crate::api::events::{load_page, LIST_PARAMS};
use crate::api::{db_error, with_db};
use crate::{views, AppState};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/events", web::get().to(list))
        .route("/ui/events/{id}", web::get().to(detail));
}

const FILTERS: [&str; 8] = [
    "q",
    "type",
    "message_type",
    "conversation",
    "bot",
    "actor",
    "since",
    "until",
];

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let loader = state.clone();
    let page = listing(
        &req,
        "/ui/events",
        &FILTERS,
        &LIST_PARAMS,
        |query| async move { load_page(&loader, &query).await },
        views::event,
    )
    .await;
    let page = named(&state, page).await;
    let mut types: Vec<&str> = hookline_model::EVENT_TYPES.to_vec();
    types.push(hookline_model::UNRECOGNIZED);
    render(
        &state,
        "events",
        "events",
        &session,
        with(page, json!({"title": "Events", "types": types})),
    )
    .await
}

/// Each event of the page with its conversation's visitor and title (a
/// list of hex keys says nothing to a reader). If the lookup fails the keys
/// stay: the list is still right, only less readable.
async fn named(state: &web::Data<AppState>, mut page: serde_json::Value) -> serde_json::Value {
    let Some(items) = page["items"].as_array_mut() else {
        return page;
    };
    let mut keys: Vec<String> = items
        .iter()
        .filter_map(|i| i["conversation_key"].as_str().map(str::to_owned))
        .collect();
    keys.sort();
    keys.dedup();
    let names = with_db(state, move |conn| {
        hookline_storage::overview::conversation_names(conn, &keys).map_err(db_error)
    })
    .await
    .unwrap_or_default();
    for item in items.iter_mut() {
        let Some(name) = names
            .iter()
            .find(|n| item["conversation_key"].as_str() == Some(n.key.as_str()))
        else {
            continue;
        };
        item["conversation"] = json!({
            "visitor": name.visitor_name.as_ref().or(name.visitor_email.as_ref()),
            "title": name.title,
        });
    }
    page
}

async fn detail(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let Ok(id) = path.parse::<i64>() else {
        return actix_web::ResponseError::error_response(&crate::ApiError::not_found(
            "no such event",
        ));
    };
    let event = match with_db(&state, move |conn| events::get(conn, id).map_err(db_error)).await {
        Ok(Some(event)) => event,
        Ok(None) => {
            return actix_web::ResponseError::error_response(&crate::ApiError::not_found(format!(
                "no event {id}"
            )))
        }
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let raw = super::transcript::pretty(&event.raw);
    let fields = with_db(&state, move |conn| {
        crate::api::events::event_fields(conn, id)
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_default();
    let fields: Vec<serde_json::Value> = fields
        .iter()
        .map(|f| json!({"path": f.path, "any_item": f.any_item, "value": hookline_model::value_text(&f.value), "null": f.value.is_null()}))
        .collect();
    render(
        &state,
        "event",
        "events",
        &session,
        json!({
            "title": format!("Event {id}"), "e": views::event_detail(&event), "raw_json": raw,
            "time_note": time_note(&event), "fields": fields,
        }),
    )
    .await
}

/// When the payload's own time was not used (missing, unreadable, before
/// 2000 or more than a day after receipt), what it said.
fn time_note(event: &events::StoredEvent) -> Option<String> {
    let said = serde_json::from_str::<serde_json::Value>(&event.raw)
        .ok()?
        .get("timestamp")?
        .as_str()?
        .to_owned();
    let used = hookline_model::parse_timestamp(&said)
        .map(|t| hookline_storage::filed_time(Some(t.naive_utc()), event.received_at))
        .is_some_and(|filed| (filed - event.occurred_at).num_milliseconds().abs() < 1);
    (!used).then(|| {
        format!(
            "The payload says {said:?}, which is outside the accepted range (2000 to a day after receipt): the receipt time is used."
        )
    })
}
