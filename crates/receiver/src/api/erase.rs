//! `POST /erase`: forget a visitor (events, conversations, emails).

use actix_web::{web, HttpResponse};
use hookline_notifier::erase::erase_visitor;
use serde::Deserialize;
use serde_json::json;

use super::{db_error, with_db};
use crate::error::ApiError;
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/erase").post(erase));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseRequest {
    visitor: String,
}

async fn erase(body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let request: EraseRequest =
        super::object_body(&body, "invalid_erase", "{\"visitor\": \"KEY\"}", true)?;
    let visitor = crate::params::trim_ascii(&request.visitor).to_owned();
    if visitor.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_erase",
            "\"visitor\" is empty",
        ));
    }
    let shown = visitor.clone();
    let deleted = with_db(&state, move |conn| {
        erase_visitor(conn, &visitor).map_err(db_error)
    })
    .await?;
    tracing::info!(
        events = deleted.rows.events,
        conversations = deleted.rows.conversations,
        notifications = deleted.rows.notifications,
        email_files = deleted.email_files,
        "visitor erased"
    );
    Ok(HttpResponse::Ok().json(json!({"visitor": shown, "deleted": deleted})))
}
