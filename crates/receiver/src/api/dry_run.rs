//! `POST /rules/test`: a dry run of rules (given, or the saved ones) over
//! events given in the body; nothing is stored or sent.

use actix_web::{web, HttpResponse};
use hookline_notifier::dry_run::{items_of, DryRun};
use hookline_notifier::rules_store::check_all;
use hookline_notifier::RuleDef;
use serde::Deserialize;
use serde_json::{json, Value};

use super::rules::with_conn;
use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    /// Rules to test; without `rule` or `rules`, the saved rules.
    #[serde(default)]
    rules: Option<Vec<RuleDef>>,
    #[serde(default)]
    rule: Option<RuleDef>,
    /// A delivery (`{"events": [...]}`), a list of items, or one item.
    event: Value,
    /// `conversation.*` fields that override the state the events give.
    #[serde(default)]
    conversation: Option<Value>,
}

pub async fn handler(
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: TestRequest = super::object_body(
        &body,
        "invalid_test",
        "{\"event\": ..., \"rules\": [...] or \"rule\": {...}, \"conversation\": {...}}",
        false,
    )?;
    if request
        .conversation
        .as_ref()
        .is_some_and(|c| !c.is_object() && !c.is_null())
    {
        return Err(ApiError::bad_request(
            "invalid_test",
            "\"conversation\" is not a JSON object of conversation.* fields",
        ));
    }
    let given: Option<Vec<RuleDef>> = match (request.rules, request.rule) {
        (Some(mut rules), Some(rule)) => {
            rules.push(rule);
            Some(rules)
        }
        (rules, rule) => rules.or(rule.map(|r| vec![r])),
    };
    let public_url = state.public_url.clone();
    let policy = state.policy.clone();
    let outcomes = with_conn(&state, move |conn, rules| {
        let defs = match given {
            Some(defs) => defs,
            None => rules.list(conn)?.into_iter().map(|v| v.rule).collect(),
        };
        let compiled = check_all(rules.templates(), &rules.directory(), defs)?;
        let run = DryRun {
            rules: &compiled,
            policy: &policy,
            templates: rules.templates(),
            public_url: Some(&public_url),
            conversation_state: request.conversation.as_ref(),
        };
        Ok(run.report(&items_of(request.event)))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "events": outcomes.events, "timers": outcomes.timers })))
}
