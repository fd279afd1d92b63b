//! The admin JSON API under `/api/v1`: every route needs
//! `Authorization: Bearer <admin token>`.

pub mod calendars;
pub mod conversations;
mod dry_run;
mod erase;
pub mod events;
pub mod export;
pub mod notifications;
pub mod openapi;
pub mod overview;
pub mod preview;
pub mod rules;
pub mod timers;

use actix_web::body::EitherBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{web, Error, ResponseError};

use crate::error::ApiError;
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(require_bearer))
            .wrap(actix_web::middleware::from_fn(json_method_not_allowed))
            .configure(events::routes)
            .configure(conversations::routes)
            .configure(notifications::routes)
            .configure(rules::routes)
            .configure(calendars::routes)
            .configure(timers::routes)
            .configure(overview::routes)
            .configure(export::routes)
            .configure(erase::routes)
            .configure(openapi::routes)
            .default_service(web::to(crate::error::not_found)),
    );
}

async fn require_bearer(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl actix_web::body::MessageBody>>, Error> {
    let verdict = match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.admin.require_bearer(req.request()),
        None => Err(ApiError::unavailable("not ready")),
    };
    match verdict {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(error) => {
            let (request, _) = req.into_parts();
            let response = error.error_response().map_into_right_body();
            Ok(ServiceResponse::new(request, response))
        }
    }
}

/// A `405` from the router (a known path, another method) has an empty
/// body; the API's errors are JSON, so it gets one too.
async fn json_method_not_allowed(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl actix_web::body::MessageBody>>, Error> {
    let method = req.method().clone();
    let response = next.call(req).await?;
    if response.status() != actix_web::http::StatusCode::METHOD_NOT_ALLOWED {
        return Ok(response.map_into_left_body());
    }
    let error = ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on this route; see /api/v1/openapi.json"),
    );
    let (request, old) = response.into_parts();
    let mut fresh = error.error_response();
    if let Some(allow) = old.headers().get(actix_web::http::header::ALLOW) {
        fresh
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, allow.clone());
    }
    Ok(ServiceResponse::new(request, fresh).map_into_right_body())
}

/// A JSON body that must be an object, read as `T`. serde reads a struct
/// from an array too (its fields in order), so `[null, null]` would pass
/// as a body of optional keys: anything but an object is `400` with
/// `code`, the message saying what was `expected`. With `nul_free`, a NUL
/// character in any string is `400` too ([`refuse_nul`]): for bodies whose
/// text is stored or queried.
pub fn object_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    code: &'static str,
    expected: &str,
    nul_free: bool,
) -> Result<T, ApiError> {
    let bad =
        |problem: String| ApiError::bad_request(code, format!("expected {expected}: {problem}"));
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("the body is not a JSON object".to_owned()));
    }
    if nul_free {
        refuse_nul(&value, code)?;
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// `400` with `code` when a string in `value` holds a NUL character:
/// PostgreSQL cannot store or compare one, and no stored text has it.
pub fn refuse_nul(value: &serde_json::Value, code: &'static str) -> Result<(), ApiError> {
    use serde_json::Value;
    let clean = match value {
        Value::String(text) => !text.contains('\0'),
        Value::Array(items) => return items.iter().try_for_each(|v| refuse_nul(v, code)),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                false
            } else {
                return map.values().try_for_each(|v| refuse_nul(v, code));
            }
        }
        _ => true,
    };
    if clean {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            code,
            "the body has a NUL character (\\u0000), which hookline cannot store",
        ))
    }
}

/// Runs blocking database work for a handler; a database failure is `503`.
pub async fn with_db<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&mut hookline_storage::DbConnection) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    crate::admin_work::run(move || {
        let mut conn = state.db.conn().map_err(|e| {
            tracing::error!(error = %e, "no database connection");
            ApiError::unavailable("the database is unavailable; retry later")
        })?;
        f(&mut conn)
    })
    .await
    .map_err(|_| ApiError::unavailable("the server is shutting down"))?
}

/// A list's JSON answer (`items` and `next_cursor`), built and written as
/// text on an admin thread. A page of 500 items takes milliseconds to turn
/// into JSON; on an HTTP worker, that time held up the webhooks the same
/// worker serves (ingest p99 beside listings was 3.8 times its p99 alone).
pub async fn json_page<T: Send + 'static>(
    rows: Vec<T>,
    next: Option<String>,
    view: fn(&T) -> serde_json::Value,
) -> Result<actix_web::HttpResponse, ApiError> {
    let body = crate::admin_work::run(move || {
        let items: Vec<serde_json::Value> = rows.iter().map(view).collect();
        serde_json::to_vec(&serde_json::json!({"items": items, "next_cursor": next}))
    })
    .await
    .map_err(|_| ApiError::unavailable("the server is shutting down"))?
    .map_err(|error| {
        tracing::error!(%error, "a list could not be written as JSON");
        ApiError::unavailable("the answer could not be written; retry later")
    })?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// A database error inside a handler: logged, `503` to the caller.
pub fn db_error(error: hookline_storage::diesel::result::Error) -> ApiError {
    tracing::error!(%error, "database query failed");
    ApiError::unavailable("the database query failed; retry later")
}
