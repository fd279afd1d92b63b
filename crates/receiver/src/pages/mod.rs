//! The admin web pages under `/ui/`: server-rendered HTML from handlebars
//! templates (every value HTML-escaped), usable without JavaScript.

mod charts;
mod conversations;
mod email;
mod events;
mod login;
mod notifications;
mod overview;
mod rules;
mod transcript;
mod when;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use handlebars::{handlebars_helper, Handlebars};
use serde_json::{json, Value};

use crate::auth::Session;
use crate::error::ApiError;
use crate::AppState;

const PAGES: [(&str, &str); 11] = [
    (
        "header",
        include_str!("../../../../templates/pages/header.hbs"),
    ),
    (
        "footer",
        include_str!("../../../../templates/pages/footer.hbs"),
    ),
    (
        "login",
        include_str!("../../../../templates/pages/login.hbs"),
    ),
    (
        "conversations",
        include_str!("../../../../templates/pages/conversations.hbs"),
    ),
    (
        "conversation",
        include_str!("../../../../templates/pages/conversation.hbs"),
    ),
    (
        "events",
        include_str!("../../../../templates/pages/events.hbs"),
    ),
    (
        "event",
        include_str!("../../../../templates/pages/event.hbs"),
    ),
    (
        "rules",
        include_str!("../../../../templates/pages/rules.hbs"),
    ),
    (
        "notifications",
        include_str!("../../../../templates/pages/notifications.hbs"),
    ),
    (
        "overview",
        include_str!("../../../../templates/pages/overview.hbs"),
    ),
    (
        "email",
        include_str!("../../../../templates/pages/email.hbs"),
    ),
];
const STYLE: &str = include_str!("../../../../templates/pages/style.css");

handlebars_helper!(join: |items: Value| match items {
    Value::Array(items) => items.iter().map(hookline_model::value_text).collect::<Vec<_>>().join(", "),
    other => hookline_model::value_text(&other),
});
handlebars_helper!(short: |text: str| text.chars().take(12).collect::<String>());
handlebars_helper!(segment: |text: str| hookline_notifier::links::encode_component(text));

/// The page templates: built in, each overridable by a `pages/NAME.hbs` in
/// the templates folder.
/// Times are shown in `zone` (see `when`).
pub fn registry(
    dir: Option<&std::path::Path>,
    zone: chrono_tz::Tz,
) -> Result<Handlebars<'static>, String> {
    let mut registry = Handlebars::new();
    registry.register_helper("join", Box::new(join));
    registry.register_helper("short", Box::new(short));
    registry.register_helper("segment", Box::new(segment));
    registry.register_helper("when", Box::new(when::When(zone)));
    for (name, source) in PAGES {
        let override_path = dir.map(|d| d.join("pages").join(format!("{name}.hbs")));
        let source = match override_path.filter(|p| p.exists()) {
            Some(path) => std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => source.to_owned(),
        };
        if name == "header" || name == "footer" {
            registry
                .register_partial(name, source.clone())
                .map_err(|e| format!("page partial {name}: {e}"))?;
        }
        registry
            .register_template_string(name, source)
            .map_err(|e| format!("page template {name}: {e}"))?;
    }
    Ok(registry)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(to_ui))
        .route("/ui", web::get().to(to_ui))
        .route("/ui/", web::get().to(overview::page))
        .route("/ui/static/style.css", web::get().to(style))
        .configure(login::routes)
        .configure(conversations::routes)
        .configure(events::routes)
        .configure(rules::routes)
        .configure(notifications::routes);
}

async fn to_ui() -> HttpResponse {
    redirect("/ui/")
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .body(STYLE)
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

/// Renders page `name` with `data` plus the navigation and CSRF token, on
/// an admin thread: a list page of 500 rows takes milliseconds to render,
/// and on an HTTP worker that time would hold up the webhooks the same
/// worker serves.
pub async fn render(
    state: &web::Data<AppState>,
    name: &str,
    nav: &str,
    session: &Session,
    mut data: Value,
) -> HttpResponse {
    if let Value::Object(map) = &mut data {
        map.insert("nav".into(), json!(nav));
        map.insert("csrf".into(), json!(session.csrf));
    }
    let (rendering, template) = (state.clone(), name.to_owned());
    let rendered = crate::admin_work::run(move || {
        rendering
            .pages
            .render(&template, &data)
            .map_err(|e| e.to_string())
    })
    .await;
    match rendered {
        Ok(rendered) => respond(name, rendered, actix_web::http::StatusCode::OK),
        // Not the template's fault: the admin threads are gone.
        Err(crate::admin_work::Stopped) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("the server is shutting down; retry later"),
    }
}

/// Renders page `name` here (small pages: the login form).
pub fn html(
    state: &AppState,
    name: &str,
    data: &Value,
    status: actix_web::http::StatusCode,
) -> HttpResponse {
    let rendered = state.pages.render(name, data).map_err(|e| e.to_string());
    respond(name, rendered, status)
}

/// A rendered page with its security headers, or the template's error.
fn respond(
    name: &str,
    rendered: Result<String, String>,
    status: actix_web::http::StatusCode,
) -> HttpResponse {
    match rendered {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src * data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'"))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .body(body),
        Err(error) => {
            tracing::error!(%error, page = name, "page template failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body(format!("the page template {name} failed: {error}"))
        }
    }
}

/// The session of a logged-in admin (without one, pages redirect to the
/// login page): a well-formed cookie whose session the database still
/// holds (logout and token rotation delete it).
pub async fn session(state: &web::Data<AppState>, req: &HttpRequest) -> Option<Session> {
    let session = crate::auth::AdminAuth::presented_session(req)?;
    let hash = session.id_hash.clone();
    let active = crate::api::with_db(state, move |conn| {
        hookline_storage::sessions::is_active(conn, &hash, hookline_storage::now())
            .map_err(crate::api::db_error)
    })
    .await;
    match active {
        Ok(true) => Some(session),
        Ok(false) => None,
        Err(error) => {
            tracing::warn!(%error, "cannot check the session");
            None
        }
    }
}

/// Where a request without a session goes.
pub fn to_login() -> HttpResponse {
    redirect("/ui/login")
}

/// An error message for a page, from an API error.
pub fn message(error: &ApiError) -> String {
    error.message.clone()
}

/// The query string for the next page: the current filters plus `cursor`.
pub fn next_link(path: &str, filters: &Value, cursor: Option<String>) -> Option<String> {
    let cursor = cursor?;
    let mut pairs: Vec<(String, String)> = filters
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .filter(|s| !s.is_empty())
                        .map(|s| (k.clone(), s.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    pairs.push(("cursor".into(), cursor));
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    Some(format!("{path}?{}", query.join("&")))
}

pub fn urlencode(text: &str) -> String {
    hookline_notifier::links::encode_component(text)
}

/// The filters as the form shows them back.
pub fn echo(req: &HttpRequest, names: &[&str]) -> Value {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let mut map = serde_json::Map::new();
    for name in names {
        let value = pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        map.insert((*name).to_owned(), json!(value));
    }
    Value::Object(map)
}

/// A list page's content: the filters echoed back, one page of items, the
/// link to the next page, or the error the filters caused.
pub async fn listing<T, Fut>(
    req: &HttpRequest,
    path: &str,
    filters: &[&str],
    params: &[crate::params::Param],
    load: impl FnOnce(crate::params::Query) -> Fut,
    view: fn(&T) -> Value,
) -> Value
where
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), ApiError>>,
{
    let echoed = echo(req, filters);
    let filtered = filters
        .iter()
        .any(|f| echoed[*f].as_str().is_some_and(|v| !v.is_empty()));
    let result = match crate::params::Query::parse_str(&nonempty_query(req), params) {
        Ok(query) => load(query).await,
        Err(error) => Err(error),
    };
    let (items, next, error) = match result {
        Ok((rows, next)) => (rows.iter().map(view).collect::<Vec<_>>(), next, None),
        Err(error) => (Vec::new(), None, Some(message(&error))),
    };
    json!({
        "items": items,
        "next": next_link(path, &echoed, next),
        "filters": echoed,
        "filtered": filtered,
        "error": error,
    })
}

/// Adds `extra`'s keys to `page`.
pub fn with(mut page: Value, extra: Value) -> Value {
    if let (Value::Object(page), Value::Object(extra)) = (&mut page, extra) {
        page.extend(extra);
    }
    page
}

/// The query string without empty values (a GET form sends every field).
pub fn nonempty_query(req: &HttpRequest) -> String {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    pairs
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{}={}", urlencode(&k), urlencode(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A form body's fields.
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(&String::from_utf8_lossy(body))
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
