//! `/ui/login` and `/ui/logout`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{field, form, html, redirect, session};
use crate::api::{db_error, with_db};
use crate::auth::{AdminAuth, SESSION_SECONDS};
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/login", web::get().to(page))
        .route("/ui/login", web::post().to(login))
        .route("/ui/logout", web::post().to(logout));
}

async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if session(&state, &req).await.is_some() {
        return redirect("/ui/");
    }
    html(&state, "login", &json!({}), StatusCode::OK)
}

async fn login(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let fields = form(&body);
    let token = field(&fields, "token").unwrap_or_default();
    if let Err(error) = state.admin.check(&req, token, "admin login") {
        let message = match error.status {
            StatusCode::UNAUTHORIZED => "That is not the admin token.".to_owned(),
            _ => error.message.clone(),
        };
        let mut response = html(&state, "login", &json!({"error": message}), error.status);
        if let Some(seconds) = error.retry_after {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(seconds),
            );
        }
        return response;
    }
    let (id, hash) = AdminAuth::new_session();
    let stored = with_db(&state, move |conn| {
        let now = hookline_storage::now();
        let expires = now + chrono::Duration::seconds(SESSION_SECONDS);
        hookline_storage::sessions::insert(conn, &hash, now, expires).map_err(db_error)
    })
    .await;
    if let Err(error) = stored {
        return html(
            &state,
            "login",
            &json!({"error": error.message}),
            error.status,
        );
    }
    let secure = state.public_url.starts_with("https://");
    let mut response = redirect("/ui/");
    if let Err(error) = response.add_cookie(&AdminAuth::login_cookie(&id, secure)) {
        tracing::error!(%error, "cannot set the session cookie");
    }
    response
}

/// Ends the session server-side (the cookie stops working everywhere, even
/// if a copy of it was kept) and clears the cookie.
async fn logout(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(session) = session(&state, &req).await {
        let fields = form(&body);
        if let Err(error) = session.check_csrf(field(&fields, "csrf")) {
            return actix_web::ResponseError::error_response(&error);
        }
        let hash = session.id_hash.clone();
        let ended = with_db(&state, move |conn| {
            hookline_storage::sessions::delete(conn, &hash).map_err(db_error)
        })
        .await;
        if let Err(error) = ended {
            return actix_web::ResponseError::error_response(&error);
        }
    }
    let mut response = redirect("/ui/login");
    let _ = response.add_cookie(&AdminAuth::logout_cookie());
    response
}
