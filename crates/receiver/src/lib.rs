//! hookline's HTTP side (actix-web): the Swiftsell webhook endpoint and the
//! rules API; the rest of the admin API and the pages come next.

mod admin_work;
pub mod api;
pub mod auth;
mod error;
pub mod metrics;
pub mod overview;
mod pages;
pub mod params;
pub mod rejections;
mod timer_metrics;
pub mod tokens;
mod views;
mod webhook;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use hookline_storage::{Database, Ingestor};

pub use error::ApiError;
pub use rejections::Rejections;
pub use tokens::Tokens;

/// What every handler shares.
pub struct AppState {
    pub db: Database,
    pub ingestor: Ingestor,
    pub tokens: Tokens,
    pub max_body_bytes: usize,
    /// How long a webhook body may take to arrive.
    pub body_timeout: std::time::Duration,
    pub rejections: Arc<Rejections>,
    pub rules: Arc<hookline_notifier::Rules>,
    /// Where mail may go (for dry runs; the hook has its own copy).
    pub policy: hookline_notifier::RecipientPolicy,
    pub admin: Arc<auth::AdminAuth>,
    /// Wakes the outbox worker (resend).
    pub wake: Arc<tokio::sync::Notify>,
    /// hookline's address as users reach it.
    pub public_url: String,
    /// The page templates.
    pub pages: handlebars::Handlebars<'static>,
    /// The zone the pages show times in (the `time_zone` setting).
    pub time_zone: chrono_tz::Tz,
    pub metrics: Arc<metrics::Metrics>,
    pub stats: metrics::OutsideStats,
    /// When set, `/metrics` requires it as a bearer token.
    pub metrics_token: Option<String>,
}

/// Every route, for `App::configure`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    webhook::routes(cfg);
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(metrics::readyz))
        .route("/metrics", web::get().to(metrics::render));
    api::routes(cfg);
    pages::routes(cfg);
}

/// `GET /healthz`: the process is up.
async fn healthz() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub use pages::registry as page_templates;

/// Starts serving on `listener`. The server stops gracefully on SIGTERM and
/// SIGINT: it stops accepting, finishes the requests in flight (each one's
/// events committed before its answer), then resolves.
pub fn serve(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(metrics::observe))
            .app_data(state.clone())
            .configure(routes)
            .default_service(web::to(error::not_found))
    })
    .listen(listener)?
    .run();
    Ok(server)
}
