//! `GET /overview`: the overview page's figures as JSON.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::overview::{load, Window};
use crate::params::{param, Kind, Param, Query};
use crate::AppState;

pub const PARAMS: [Param; 1] = [param(
    "window",
    Kind::OneOf(&["24h", "7d"]),
    "The span of the event and email figures: 24h (default) or 7d. Reply times always cover the last 7 days.",
)];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/overview").get(overview));
}

async fn overview(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(&req, &PARAMS)?;
    let window = Window::parse(query.text("window").as_deref())?;
    Ok(HttpResponse::Ok().json(load(&state, window).await?))
}
