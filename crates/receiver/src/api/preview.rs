//! `POST /rules/preview`: what a draft rule would have done over stored
//! history: which events it fires on, to whom, with which subject; and for
//! the events of its types it does not fire on, the condition that failed.
//! A timer rule's waits are replayed: when it would have emailed. The
//! evaluation is the notifier's ([`hookline_notifier::preview`]); this
//! module parses the request and renders the answer.

use actix_web::{web, HttpResponse};
use chrono::NaiveDateTime;
use hookline_notifier::preview::{Fired, Preview, PreviewError, Previewer, Range, TIME_BUDGET};
use hookline_notifier::RuleDef;
use serde::Deserialize;
use serde_json::{json, Value};

use super::db_error;
use super::rules::with_conn;
use crate::error::ApiError;
use crate::views;
use crate::AppState;

pub use hookline_notifier::preview::{DEFAULT_SCAN, MAX_SCAN};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub rule: RuleDef,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    /// Events to scan, newest first (default 1,000, at most 10,000).
    #[serde(default)]
    pub limit: Option<i64>,
}

fn time(name: &str, value: Option<&str>) -> Result<Option<NaiveDateTime>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.naive_utc())
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        format!("{name:?}: {v:?} is not an RFC 3339 time"),
                    )
                })
        })
        .transpose()
}

pub async fn handler(
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: PreviewRequest = super::object_body(
        &body,
        "invalid_preview",
        "{\"rule\": {...}, \"since\", \"until\", \"limit\"}",
        false,
    )?;
    super::rules::refuse_nul(&request.rule)?;
    Ok(HttpResponse::Ok().json(preview(&state, request).await?))
}

/// The range of a saved rule's preview: the keys of a preview but `rule`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedPreviewRequest {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `POST /rules/{id}/preview`: the preview of a saved rule (body optional:
/// `since`, `until`, `limit`).
pub async fn saved_handler(
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = super::rules::parse_id(&path)?;
    let range: SavedPreviewRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SavedPreviewRequest::default()
    } else {
        super::object_body(
            &body,
            "invalid_preview",
            "{\"since\", \"until\", \"limit\"} or no body",
            false,
        )?
    };
    let saved = with_conn(&state, move |conn, rules| Ok(rules.get(conn, id)?)).await?;
    let Some(saved) = saved else {
        return Err(ApiError::not_found(format!("no rule {id}")));
    };
    let request = PreviewRequest {
        rule: saved.rule,
        since: range.since,
        until: range.until,
        limit: range.limit,
    };
    Ok(HttpResponse::Ok().json(preview(&state, request).await?))
}

/// Runs a preview (the API and the rules page): the notifier evaluates,
/// this renders.
pub async fn preview(
    state: &web::Data<AppState>,
    request: PreviewRequest,
) -> Result<Value, ApiError> {
    let range = Range {
        since: time("since", request.since.as_deref())?,
        until: time("until", request.until.as_deref())?,
        limit: request.limit.unwrap_or(DEFAULT_SCAN),
    };
    let public_url = state.public_url.clone();
    let policy = state.policy.clone();
    let rule = request.rule;
    let preview = with_conn(state, move |conn, rules| {
        let previewer = Previewer {
            rules,
            policy: &policy,
            public_url: Some(public_url.as_str()),
            time_budget: TIME_BUDGET,
        };
        // Rendered here too, on the admin thread, not on the HTTP worker
        // that also serves webhooks.
        previewer
            .preview(conn, rule, &range)
            .map(|preview| render(&preview))
            .map_err(preview_error)
    })
    .await?;
    Ok(preview)
}

/// The API's answer for a preview error.
fn preview_error(error: PreviewError) -> ApiError {
    match error {
        PreviewError::Limit(_) => ApiError::bad_request("invalid_parameter", error.to_string()),
        PreviewError::Invalid(e) => ApiError::from(hookline_notifier::RulesError::Invalid(e)),
        PreviewError::Database(e) => db_error(e),
    }
}

/// The JSON of a preview.
fn render(preview: &Preview) -> Value {
    let fired: Vec<Value> = preview.fired.iter().map(fired_item).collect();
    let not_fired: Vec<Value> = preview
        .not_fired
        .iter()
        .map(|n| json!({"event": views::event(&n.event), "failed": n.failed}))
        .collect();
    let mut answer = json!({
        "rule": preview.rule,
        "scanned": preview.scanned,
        "scan_limit": preview.scan_limit,
        "fired_count": preview.fired_count,
        "emails": {"send": preview.send, "suppressed": preview.suppressed, "skipped": preview.skipped},
        "not_fired_count": preview.not_fired_count,
        "fired": fired,
        "not_fired": not_fired,
        "complete": preview.stopped_early.is_none(),
        "stopped_early": preview.stopped_early,
    });
    if let Some(timer) = &preview.timer {
        answer["timer"] = json!({
            "summary": timer.sentence,
            "answered": timer.answered,
            "waiting": timer.waiting,
        });
    }
    answer
}

fn fired_item(fired: &Fired) -> Value {
    let recipients: Vec<&str> = fired
        .emails
        .iter()
        .filter(|e| e.decision != "skipped")
        .map(|e| e.recipient.as_str())
        .collect();
    let skipped: Vec<&str> = fired
        .emails
        .iter()
        .filter(|e| e.decision == "skipped")
        .filter_map(|e| e.reason.as_deref())
        .collect();
    let listed: Vec<Value> = fired
        .emails
        .iter()
        .map(|e| json!({"recipient": e.recipient, "decision": e.decision, "reason": e.reason}))
        .collect();
    let mut item = json!({
        "event": views::event(&fired.event),
        "recipients": recipients,
        "skipped_recipients": skipped,
        "emails": listed,
        "subject": fired.subject.as_ref().ok(),
        "subject_error": fired.subject.as_ref().err(),
    });
    if let Some(step) = &fired.timer {
        item["timer"] = json!({
            "conversation": step.conversation,
            "step": step.step,
            "steps": step.steps,
            "started_at": crate::params::rfc3339(step.started_at),
            "due_at": crate::params::rfc3339(step.due_at),
            "at": crate::params::rfc3339(step.at),
        });
    }
    item
}
