//! hookline's HTTP side (actix-web): the Swiftsell webhook endpoint and the
//! rules API; the rest of the admin API and the pages come next.

mod error;
pub mod rejections;
mod rules_api;
pub mod tokens;
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
    pub rejections: Arc<Rejections>,
    pub rules: Arc<hookline_notifier::Rules>,
}

/// Every route, for `App::configure`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    webhook::routes(cfg);
    rules_api::routes(cfg);
}

/// Starts serving on `listener`. The server stops gracefully on SIGTERM and
/// SIGINT: it stops accepting, finishes the requests in flight (each one's
/// events committed before its answer), then resolves.
pub fn serve(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes)
            .default_service(web::to(error::not_found))
    })
    .listen(listener)?
    .run();
    Ok(server)
}
