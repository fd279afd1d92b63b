//! `POST /webhooks/swiftsell`: the token check, the verification handshake,
//! and durable ingest of event batches.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use chrono::Utc;
use futures_util::StreamExt;
use hookline_model::{Envelope, EnvelopeError};
use hookline_storage::prepare_value;
use serde_json::Value;

use crate::error::ApiError;
use crate::rejections::Cause;
use crate::AppState;

/// The headers that may carry the token, besides `Authorization: Bearer`.
const TOKEN_HEADERS: [&str; 2] = ["x-swiftsell-token", "token"];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/swiftsell")
            .route(web::post().to(receive))
            .default_service(web::to(method_not_allowed)),
    );
}

/// Counts and logs a rejected request (never its body or token).
fn reject(state: &AppState, req: &HttpRequest, cause: Cause, error: ApiError) -> ApiError {
    state.rejections.count(cause);
    tracing::warn!(
        cause = cause.name(),
        status = error.status.as_u16(),
        peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
        message = %error.message,
        "webhook request rejected"
    );
    error
}

async fn method_not_allowed(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed here; Swiftsell delivers with POST",
            req.method()
        ),
    );
    let error = reject(&state, &req, Cause::MethodNotAllowed, error);
    let mut response = actix_web::ResponseError::error_response(&error);
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}

/// The token candidates a request carries outside its body.
fn header_tokens(req: &HttpRequest) -> Vec<String> {
    let mut found = Vec::new();
    let headers = req.headers();
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        if value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") {
            found.push(value[7..].to_owned());
        }
    }
    for name in TOKEN_HEADERS {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            found.push(value.to_owned());
        }
    }
    if let Ok(query) = web::Query::<Vec<(String, String)>>::from_query(req.query_string()) {
        found.extend(
            query
                .into_inner()
                .into_iter()
                .filter(|(key, _)| key == "token")
                .map(|(_, value)| value),
        );
    }
    found
}

/// Reads the body up to `limit` bytes; `None` when it is larger.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Option<BytesMut>, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("could not read the request body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than the limit of {limit} bytes (HOOKLINE_MAX_BODY_BYTES)"),
    )
}

/// `200 text/plain`: the body will be the token, which is what the
/// platform checks on the handshake (and may check on every delivery).
fn token_reply() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.content_type(ContentType::plaintext());
    response
}

#[tracing::instrument(name = "webhook", skip_all)]
async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(reject(&state, &req, Cause::TooLarge, too_large(limit)));
    }
    let Some(body) = read_body(payload, limit).await? else {
        return Err(reject(&state, &req, Cause::TooLarge, too_large(limit)));
    };

    let is_blank = body.iter().all(u8::is_ascii_whitespace);
    let parsed: Option<Result<Value, serde_json::Error>> =
        (!is_blank).then(|| serde_json::from_slice(&body));

    let mut candidates = header_tokens(&req);
    if let Some(Ok(Value::Object(object))) = &parsed {
        if let Some(Value::String(token)) = object.get("token") {
            candidates.push(token.clone());
        }
    }
    let token = candidates
        .iter()
        .find_map(|candidate| state.tokens.matching(candidate))
        .map(str::to_owned);
    let Some(token) = token else {
        return Err(if candidates.is_empty() {
            reject(&state, &req, Cause::MissingToken, ApiError::unauthorized(
                "no webhook token: send it as Authorization: Bearer, X-Swiftsell-Token, Token, ?token= or a \"token\" field",
            ))
        } else {
            reject(
                &state,
                &req,
                Cause::InvalidToken,
                ApiError::unauthorized("the webhook token is not valid"),
            )
        });
    };

    let value = match parsed {
        None => return Ok(token_reply().body(token)),
        Some(Err(error)) => {
            let error = EnvelopeError::from_json_error(&error);
            return Err(reject(
                &state,
                &req,
                Cause::InvalidJson,
                ApiError::bad_request("invalid_json", error.to_string()),
            ));
        }
        Some(Ok(value)) => value,
    };
    // The handshake: a valid token and no events.
    if matches!(&value, Value::Object(object) if !object.contains_key("events")) {
        return Ok(token_reply().body(token));
    }
    let (raw_items, _) = Envelope::split(value).map_err(|error| {
        let error = ApiError::bad_request("invalid_envelope", error.to_string());
        reject(&state, &req, Cause::InvalidEnvelope, error)
    })?;

    let received_at = Utc::now();
    let items: Vec<_> = raw_items
        .iter()
        .map(|item| prepare_value(item, received_at))
        .collect();
    let count = items.len();
    let started = std::time::Instant::now();
    let outcome = state.ingestor.store(items).await.map_err(|error| {
        tracing::error!(%error, items = count, "could not store a delivery");
        reject(
            &state,
            &req,
            Cause::StorageUnavailable,
            ApiError::unavailable("the events could not be stored; retry later"),
        )
    })?;
    state
        .metrics
        .ingest_latency
        .observe(started.elapsed().as_secs_f64());
    state.metrics.count_stored(&outcome);
    tracing::debug!(
        stored = outcome.stored,
        duplicates = outcome.duplicates,
        "delivery stored"
    );
    Ok(token_reply()
        .insert_header(("Hookline-Stored", outcome.stored.to_string()))
        .insert_header(("Hookline-Duplicates", outcome.duplicates.to_string()))
        .body(token))
}
