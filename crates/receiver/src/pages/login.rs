//! `/ui/login` and `/ui/logout`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{field, form, html, redirect};
use crate::auth::AdminAuth;
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/login", web::get().to(page))
        .route("/ui/login", web::post().to(login))
        .route("/ui/logout", web::post().to(logout));
}

async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if state
        .admin
        .session(&req, chrono::Utc::now().timestamp())
        .is_some()
    {
        return redirect("/ui/conversations");
    }
    html(&state, "login", &json!({}), StatusCode::OK)
}

async fn login(body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let fields = form(&body);
    let token = field(&fields, "token").unwrap_or_default();
    if state.admin.tokens.matching(token).is_none() {
        tracing::warn!("admin login refused: wrong token");
        return html(
            &state,
            "login",
            &json!({"error": "That is not the admin token."}),
            StatusCode::UNAUTHORIZED,
        );
    }
    let secure = state.public_url.starts_with("https://");
    let cookie = state
        .admin
        .login_cookie(chrono::Utc::now().timestamp(), secure);
    let mut response = redirect("/ui/conversations");
    if let Err(error) = response.add_cookie(&cookie) {
        tracing::error!(%error, "cannot set the session cookie");
    }
    response
}

async fn logout(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(session) = state.admin.session(&req, chrono::Utc::now().timestamp()) {
        let fields = form(&body);
        if let Err(error) = session.check_csrf(field(&fields, "csrf")) {
            return actix_web::ResponseError::error_response(&error);
        }
    }
    let mut response = redirect("/ui/login");
    let _ = response.add_cookie(&AdminAuth::logout_cookie());
    response
}
