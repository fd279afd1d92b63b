//! `/api/v1/rules`: list, create, read, replace, delete alert rules, with
//! the same validation as `hookline rules check`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use hookline_notifier::{RuleDef, RulesError};

use crate::error::ApiError;
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/rules")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/api/v1/rules/{id}")
            .route(web::get().to(get))
            .route(web::put().to(replace))
            .route(web::delete().to(delete)),
    );
}

/// Until the admin API has its own authentication, it answers only
/// requests from this machine.
fn local_only(req: &HttpRequest) -> Result<(), ApiError> {
    match req.peer_addr() {
        Some(peer) if peer.ip().is_loopback() => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the rules API answers only requests from this machine until admin authentication is configured",
        )),
    }
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
            RulesError::Database(e) => {
                tracing::error!(error = %e, "rules: database error");
                ApiError::unavailable("the database is unavailable; retry later")
            }
        }
    }
}

/// Runs blocking database work for a handler.
async fn with_conn<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(
            &mut hookline_storage::DbConnection,
            &hookline_notifier::Rules,
        ) -> Result<T, ApiError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    web::block(move || {
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
fn rule_from(body: &[u8]) -> Result<RuleDef, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_rule",
            format!("the rule is not valid JSON for a rule: {e}"),
        )
    })
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    local_only(&req)?;
    let rules = with_conn(&state, |conn, rules| Ok(rules.list(conn)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": rules })))
}

async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    local_only(&req)?;
    let def = rule_from(&body)?;
    let rule = with_conn(&state, move |conn, rules| Ok(rules.create(conn, def)?)).await?;
    Ok(HttpResponse::Created().json(rule))
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("rule id {raw:?} is not a number"),
        )
    })
}

async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    local_only(&req)?;
    let id = parse_id(&path)?;
    let rule = with_conn(&state, move |conn, rules| Ok(rules.get(conn, id)?)).await?;
    rule.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::not_found(format!("no rule {id}")))
}

async fn replace(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    local_only(&req)?;
    let id = parse_id(&path)?;
    let def = rule_from(&body)?;
    let rule = with_conn(&state, move |conn, rules| Ok(rules.update(conn, id, def)?)).await?;
    rule.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::not_found(format!("no rule {id}")))
}

async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    local_only(&req)?;
    let id = parse_id(&path)?;
    let deleted = with_conn(&state, move |conn, rules| Ok(rules.delete(conn, id)?)).await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found(format!("no rule {id}")))
    }
}
