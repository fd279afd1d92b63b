//! `/api/v1/rules`: list, create, read, replace, delete alert rules, with
//! the same validation as `hookline rules check`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use hookline_notifier::{RuleDef, RulesError};

use crate::error::ApiError;
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/rules")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/rules/preview").route(web::post().to(super::preview::handler)))
    .service(web::resource("/rules/test").route(web::post().to(super::dry_run::handler)))
    .service(
        web::resource("/rules/{id}/preview").route(web::post().to(super::preview::saved_handler)),
    )
    .service(
        web::resource("/rules/{id}")
            .route(web::get().to(get))
            .route(web::put().to(replace))
            .route(web::delete().to(delete)),
    );
}

impl From<RulesError> for ApiError {
    fn from(error: RulesError) -> ApiError {
        match error {
            RulesError::Invalid(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_rule",
                e.to_string(),
            ),
            RulesError::Duplicate(_) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_rule", error.to_string())
            }
            RulesError::File(message) => ApiError::bad_request("invalid_rule", message),
            RulesError::InvalidCalendar(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_calendar",
                message,
            ),
            RulesError::InUse(message) => {
                ApiError::new(StatusCode::CONFLICT, "calendar_in_use", message)
            }
            RulesError::Database(e) => {
                tracing::error!(error = %e, "rules: database error");
                ApiError::unavailable("the database is unavailable; retry later")
            }
        }
    }
}

/// Runs blocking database work with the rules.
pub async fn with_conn<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(
            &mut hookline_storage::DbConnection,
            &hookline_notifier::Rules,
        ) -> Result<T, ApiError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    crate::admin_work::run(move || {
        let mut conn = state.db.conn().map_err(|e| {
            tracing::error!(error = %e, "no database connection");
            ApiError::unavailable("the database is unavailable; retry later")
        })?;
        f(&mut conn, &state.rules)
    })
    .await
    .map_err(|_| ApiError::unavailable("the server is shutting down"))?
}

/// Reads a rule from a JSON body, naming what is wrong with it.
pub fn rule_from(body: &[u8]) -> Result<RuleDef, ApiError> {
    // serde would read a rule from an array of its fields in order.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_rule", format!("the rule is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "invalid_rule",
            "the rule is not a JSON object",
        ));
    }
    let rule = RuleDef::from_json(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_rule",
            format!("the rule is not valid JSON for a rule: {e}"),
        )
    })?;
    refuse_nul(&rule)?;
    Ok(rule)
}

/// A rule's name is stored and its event types are queried (preview) as
/// text, which cannot hold a NUL character on PostgreSQL; the rest is kept
/// as JSON, where a NUL is escaped.
pub fn refuse_nul(rule: &RuleDef) -> Result<(), ApiError> {
    if rule.name.contains('\0') || rule.on.iter().any(|t| t.contains('\0')) {
        return Err(ApiError::bad_request(
            "invalid_rule",
            "the rule's name or an event type in \"on\" has a NUL character (\\u0000)",
        ));
    }
    Ok(())
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rules = with_conn(&state, |conn, rules| Ok(rules.list(conn)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": rules })))
}

async fn create(body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let def = rule_from(&body)?;
    let rule = with_conn(&state, move |conn, rules| Ok(rules.create(conn, def)?)).await?;
    Ok(HttpResponse::Created().json(rule))
}

pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("rule id {raw:?} is not a number"),
        )
    })
}

async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let rule = with_conn(&state, move |conn, rules| Ok(rules.get(conn, id)?)).await?;
    rule.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::not_found(format!("no rule {id}")))
}

async fn replace(
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let def = rule_from(&body)?;
    let rule = with_conn(&state, move |conn, rules| Ok(rules.update(conn, id, def)?)).await?;
    rule.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::not_found(format!("no rule {id}")))
}

async fn delete(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let deleted = with_conn(&state, move |conn, rules| Ok(rules.delete(conn, id)?)).await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found(format!("no rule {id}")))
    }
}
