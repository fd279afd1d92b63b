//! `POST /rules/preview`: what a draft rule would have done over stored
//! history: which events it fires on, to whom, with which subject; and for
//! the events of its types it does not fire on, the condition that failed.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use chrono::NaiveDateTime;
use hookline_notifier::context::{evaluation_context, EventFacts};
use hookline_notifier::dry_run::Limits;
use hookline_notifier::render::template_context;
use hookline_notifier::{CompiledRule, RuleDef};
use hookline_storage::conversations::{self, Conversation};
use hookline_storage::events::{self, EventFilter, StoredEvent};
use hookline_storage::notifications::Notification;
use serde::Deserialize;
use serde_json::{json, Value};

use super::db_error;
use super::rules::with_conn;
use crate::error::ApiError;
use crate::views;
use crate::AppState;

/// Events scanned by default, and at most.
pub const DEFAULT_SCAN: i64 = 1_000;
pub const MAX_SCAN: i64 = 10_000;
/// Items listed per outcome.
const LISTED: usize = 100;

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

/// Runs a preview (the API and the rules page).
pub async fn preview(
    state: &web::Data<AppState>,
    request: PreviewRequest,
) -> Result<Value, ApiError> {
    let since = time("since", request.since.as_deref())?;
    let until = time("until", request.until.as_deref())?;
    let limit = request.limit.unwrap_or(DEFAULT_SCAN);
    if !(1..=MAX_SCAN).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("\"limit\": {limit} is not from 1 to {MAX_SCAN}"),
        ));
    }
    let public_url = state.public_url.clone();
    let policy = state.policy.clone();
    let rule = request.rule;
    with_conn(state, move |conn, rules| {
        let rule = rules
            .compile(rule, None)
            .map_err(|e| ApiError::from(hookline_notifier::RulesError::Invalid(e)))?;
        let scanned = scan(conn, &rule, since, until, limit)?;
        let templates = rules.templates();
        let mut conversations: HashMap<String, Option<Conversation>> = HashMap::new();
        // Evaluated in the order the events arrived, so that the throttle
        // and the hourly cap decide as they would have live.
        let mut order: Vec<usize> = (0..scanned.len()).collect();
        order.sort_by_key(|&i| (scanned[i].received_at, scanned[i].id));
        let mut limits = Limits::default();
        let mut outcomes: Vec<Option<Outcome>> = (0..scanned.len()).map(|_| None).collect();
        for i in order {
            let event = &scanned[i];
            let conversation = match &event.conversation_key {
                Some(key) => {
                    if !conversations.contains_key(key) {
                        let loaded = conversations::get(conn, key).map_err(db_error)?;
                        conversations.insert(key.clone(), loaded);
                    }
                    conversations.get(key).and_then(Option::as_ref)
                }
                None => None,
            };
            let context = evaluation_context(&EventFacts::stored(event), conversation);
            outcomes[i] = Some(match rule.check(&context) {
                Ok(()) => {
                    let mut emails = Vec::new();
                    for recipient in rule.recipients(&context) {
                        emails.push(match recipient {
                            Ok(address) => {
                                let (decision, reason) = limits.decide(
                                    &rule,
                                    &policy,
                                    event.conversation_key.as_deref(),
                                    &address,
                                    event.received_at,
                                );
                                (address, decision, reason)
                            }
                            Err((written, reason)) => (written, "skipped", Some(reason)),
                        });
                    }
                    Ok(emails)
                }
                Err(failed) => Err(failed),
            });
        }
        let (mut fired, mut not_fired) = (Vec::new(), Vec::new());
        let (mut fired_count, mut not_fired_count) = (0usize, 0usize);
        let (mut send_count, mut suppressed_count, mut skipped_count) = (0usize, 0usize, 0usize);
        for (event, outcome) in scanned.iter().zip(outcomes) {
            match outcome {
                Some(Ok(emails)) => {
                    fired_count += 1;
                    for (_, decision, _) in &emails {
                        match *decision {
                            "send" => send_count += 1,
                            "suppressed" => suppressed_count += 1,
                            _ => skipped_count += 1,
                        }
                    }
                    if fired.len() < LISTED {
                        fired.push(fired_item(
                            conn,
                            &rule,
                            event,
                            &emails,
                            templates,
                            Some(public_url.as_str()),
                        )?);
                    }
                }
                Some(Err(failed)) => {
                    not_fired_count += 1;
                    if not_fired.len() < LISTED {
                        not_fired.push(json!({"event": views::event(event), "failed": failed}));
                    }
                }
                None => {}
            }
        }
        Ok(json!({
            "rule": rule.name(),
            "scanned": scanned.len(),
            "scan_limit": limit,
            "fired_count": fired_count,
            "emails": {"send": send_count, "suppressed": suppressed_count, "skipped": skipped_count},
            "not_fired_count": not_fired_count,
            "fired": fired,
            "not_fired": not_fired,
        }))
    })
    .await
}

/// The newest `limit` events of the rule's types in the range.
fn scan(
    conn: &mut hookline_storage::DbConnection,
    rule: &CompiledRule,
    since: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<StoredEvent>, ApiError> {
    if rule.timer.is_some() {
        // 422: a well-formed request this server cannot carry out.
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "timer_rule",
            "previewing a timer rule over stored history is not available yet: it emails when no stop event follows its start event in time, which a scan of single events cannot tell",
        ));
    }
    let types: Vec<Option<String>> = if rule.def.on.iter().any(|t| t == "*") {
        vec![None]
    } else {
        rule.def.on.iter().cloned().map(Some).collect()
    };
    let mut all = Vec::new();
    for event_type in types {
        let filter = EventFilter {
            event_type,
            since,
            until,
            ..EventFilter::default()
        };
        all.extend(events::page(conn, &filter, None, limit).map_err(db_error)?);
    }
    all.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
    all.truncate(limit as usize);
    Ok(all)
}

/// One recipient's fate: (address or recipient as written, decision, why).
type Email = (String, &'static str, Option<String>);

/// A rule's result on one event: fires (its emails) or the failed
/// condition.
type Outcome = Result<Vec<Email>, String>;

fn fired_item(
    conn: &mut hookline_storage::DbConnection,
    rule: &CompiledRule,
    event: &StoredEvent,
    emails: &[Email],
    templates: &hookline_notifier::Templates,
    public_url: Option<&str>,
) -> Result<Value, ApiError> {
    let recipients: Vec<&str> = emails
        .iter()
        .filter(|(_, decision, _)| *decision != "skipped")
        .map(|(address, _, _)| address.as_str())
        .collect();
    let skipped: Vec<&str> = emails
        .iter()
        .filter(|(_, decision, _)| *decision == "skipped")
        .filter_map(|(_, _, reason)| reason.as_deref())
        .collect();
    let listed: Vec<Value> = emails
        .iter()
        .map(|(recipient, decision, reason)| json!({"recipient": recipient, "decision": decision, "reason": reason}))
        .collect();
    let draft = Notification {
        id: 0,
        rule_id: None,
        rule_name: rule.name().to_owned(),
        event_id: Some(event.id),
        conversation_key: event.conversation_key.clone(),
        recipient: recipients
            .first()
            .map(|r| r.to_string())
            .unwrap_or_default(),
        template: rule.def.template.clone(),
        status: "preview".to_owned(),
        reason: None,
        attempts: 0,
        next_attempt_at: None,
        claimed_by: None,
        claimed_until: None,
        last_error: None,
        smtp_response: None,
        subject: None,
        created_at: event.received_at,
        updated_at: event.received_at,
        sent_at: None,
    };
    let template_context = template_context(conn, &draft, public_url).map_err(db_error)?;
    let subject = templates.render_subject(&rule.def.template, &template_context);
    Ok(json!({
        "event": views::event(event),
        "recipients": recipients,
        "skipped_recipients": skipped,
        "emails": listed,
        "subject": subject.as_ref().ok(),
        "subject_error": subject.err(),
    }))
}
