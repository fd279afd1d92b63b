//! `POST /webhooks/swiftsell`: the token check, the verification handshake,
//! and durable ingest of event batches.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use chrono::Utc;
use futures_util::StreamExt;
use hookline_model::record::read_item;
use hookline_model::Body;
use hookline_storage::StoreOutcome;

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

/// Deliveries larger than this are committed in chunks of this many
/// items, one after the other, so that other deliveries are stored in
/// between (a 20,000-item delivery does not hold up a 1-item one). The
/// delivery is answered once every chunk is committed; if one fails, the
/// platform's retry stores the rest (the chunks already stored count as
/// duplicates).
pub const CHUNK_ITEMS: usize = 200;

/// Bodies larger than this are parsed off the HTTP worker thread, so that
/// other requests on the same thread are not held up meanwhile.
const PARSE_ELSEWHERE_BYTES: usize = 64 * 1024;

/// The top-level `"token"` of a body, read without building the body's
/// JSON (only for requests that carry no token in a header or the query).
fn body_token(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        token: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Probe<'_>>(body)
        .ok()
        .and_then(|probe| probe.token)
        .map(std::borrow::Cow::into_owned)
}

/// What a body holds.
enum Delivery {
    /// A handshake: no `events`.
    Handshake,
    /// The prepared items.
    Items(Vec<hookline_storage::PreparedItem>),
}

/// Reads a body: the envelope in one pass, then each item from its JSON as
/// received, typed once (an item that does not read, a number out of range
/// say, is kept as received rather than the delivery refused). Only a body
/// that is not JSON, or not an envelope, is refused.
fn read_delivery(
    body: &[u8],
    received_at: chrono::DateTime<Utc>,
) -> Result<Delivery, (Cause, ApiError)> {
    match hookline_model::read_body(body) {
        // A handshake is answered only when its whole body reads as JSON
        // values (a number out of range refuses it, as before items were
        // read one by one); handshake bodies are small.
        Ok(Body::Handshake) => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(_) => Ok(Delivery::Handshake),
            Err(error) => Err((
                Cause::InvalidJson,
                ApiError::bad_request(
                    "invalid_json",
                    hookline_model::EnvelopeError::from_json_error(&error).to_string(),
                ),
            )),
        },
        Ok(Body::Items(items)) => Ok(Delivery::Items(
            items
                .into_iter()
                .map(|raw| read_item(raw, received_at).into())
                .collect(),
        )),
        Err(error) if error.is_syntax() => Err((
            Cause::InvalidJson,
            ApiError::bad_request("invalid_json", error.to_string()),
        )),
        Err(error) => Err((
            Cause::InvalidEnvelope,
            ApiError::bad_request("invalid_envelope", error.to_string()),
        )),
    }
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
    // A token in a header or the query is checked before the body is read:
    // a caller without the right one costs no more than a handshake.
    let outside = header_tokens(&req);
    let mut token = None;
    if !outside.is_empty() {
        match outside.iter().find_map(|c| state.tokens.matching(c)) {
            Some(matched) => token = Some(matched.to_owned()),
            None => {
                return Err(reject(
                    &state,
                    &req,
                    Cause::InvalidToken,
                    ApiError::unauthorized("the webhook token is not valid"),
                ))
            }
        }
    }
    let body = match tokio::time::timeout(state.body_timeout, read_body(payload, limit)).await {
        Ok(body) => body?,
        Err(_) => {
            let error = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {} s (HOOKLINE_BODY_TIMEOUT_SECONDS)",
                    state.body_timeout.as_secs()
                ),
            );
            return Err(reject(&state, &req, Cause::BodyTimeout, error));
        }
    };
    let Some(body) = body else {
        return Err(reject(&state, &req, Cause::TooLarge, too_large(limit)));
    };
    let is_blank = body.iter().all(u8::is_ascii_whitespace);
    let token = match token {
        Some(token) => token,
        None => {
            let candidate = (!is_blank).then(|| body_token(&body)).flatten();
            match candidate.as_deref().and_then(|c| state.tokens.matching(c)) {
                Some(matched) => matched.to_owned(),
                None if candidate.is_none() => return Err(reject(&state, &req, Cause::MissingToken, ApiError::unauthorized(
                    "no webhook token: send it as Authorization: Bearer, X-Swiftsell-Token, Token, ?token= or a \"token\" field",
                ))),
                None => {
                    return Err(reject(
                        &state,
                        &req,
                        Cause::InvalidToken,
                        ApiError::unauthorized("the webhook token is not valid"),
                    ))
                }
            }
        }
    };
    if is_blank {
        return Ok(token_reply().body(token));
    }
    let received_at = Utc::now();
    let delivery = if body.len() > PARSE_ELSEWHERE_BYTES {
        web::block(move || read_delivery(&body, received_at))
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?
    } else {
        read_delivery(&body, received_at)
    };
    let mut items = match delivery {
        Ok(Delivery::Handshake) => return Ok(token_reply().body(token)),
        Ok(Delivery::Items(items)) => items,
        Err((cause, error)) => return Err(reject(&state, &req, cause, error)),
    };

    let count = items.len();
    let started = std::time::Instant::now();
    let mut outcome = StoreOutcome::default();
    while !items.is_empty() {
        let rest = items.split_off(items.len().min(CHUNK_ITEMS));
        let chunk = std::mem::replace(&mut items, rest);
        let stored = state.ingestor.store(chunk).await.map_err(|error| {
            tracing::error!(%error, items = count, "could not store a delivery");
            reject(
                &state,
                &req,
                Cause::StorageUnavailable,
                ApiError::unavailable("the events could not be stored; retry later"),
            )
        })?;
        outcome.add(stored);
    }
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
