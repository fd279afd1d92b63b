//! `/ui/rules`: list, create, edit (TOML, the keys of `rules export`),
//! enable/disable, delete, and preview against history; the same
//! validation messages as the API.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_notifier::{RuleDef, RuleView};
use serde_json::{json, Value};

use super::{field, form, redirect, render, session};
use crate::api::preview::{preview, PreviewRequest};
use crate::api::rules::with_conn;
use crate::auth::Session;
use crate::error::ApiError;
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/rules", web::get().to(list))
        .route("/ui/rules", web::post().to(create))
        .route("/ui/rules/{id}", web::get().to(edit))
        .route("/ui/rules/{id}", web::post().to(update))
        .route("/ui/rules/{id}/toggle", web::post().to(toggle))
        .route("/ui/rules/{id}/delete", web::post().to(delete));
}

const EXAMPLE: &str = r#"name = "closed-on-bot-8861"
on = ["status"]
all = [
  { field = "bot.id", op = "eq", value = 8861 },
  { field = "payload.status", op = "starts_with", value = "close" },
]
to = ["team@example.com"]
template = "status_change"
throttle = "10m"
"#;

fn to_toml(rule: &RuleDef) -> String {
    toml::to_string_pretty(rule).unwrap_or_default()
}

fn parse(text: &str) -> Result<RuleDef, String> {
    RuleDef::from_toml(text).map_err(|e| format!("the rule is not valid TOML for a rule: {e}"))
}

/// The page: the rules, the editor, and any error or preview.
async fn page(state: &web::Data<AppState>, session: &Session, mut extra: Value) -> HttpResponse {
    let rules: Vec<RuleView> = with_conn(state, |conn, rules| Ok(rules.list(conn)?))
        .await
        .unwrap_or_default();
    let (calendars, recipients) = with_conn(state, |conn, rules| {
        Ok((rules.calendars(conn)?, rules.recipients(conn)?))
    })
    .await
    .unwrap_or_default();
    let fired = crate::api::with_db(state, |conn| {
        hookline_storage::overview::last_fired(conn).map_err(crate::api::db_error)
    })
    .await
    .unwrap_or_default();
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r.rule).unwrap_or_default();
            v["id"] = json!(r.id);
            v["enabled"] = json!(r.rule.enabled);
            v["last_fired"] = json!(fired
                .iter()
                .find(|(id, _)| *id == r.id)
                .map(|(_, at)| crate::params::rfc3339(*at)));
            v
        })
        .collect();
    if let Value::Object(map) = &mut extra {
        map.insert("title".into(), json!("Rules"));
        map.insert("rules".into(), json!(rules));
        map.insert("calendars".into(), json!(calendars));
        map.insert("recipients".into(), json!(recipients));
        map.entry("action").or_insert(json!("/ui/rules"));
        // The new-rule form starts empty (Save must not submit a rule the
        // admin did not write); the example sits beside it.
        map.entry("text").or_insert(json!(""));
        map.insert("example".into(), json!(EXAMPLE));
    }
    render(state, "rules", "rules", session, extra).await
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let notice = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()
        .and_then(|q| {
            q.into_inner()
                .into_iter()
                .find(|(k, _)| k == "saved")
                .map(|(_, v)| format!("Rule {v} saved."))
        });
    page(&state, &session, json!({"notice": notice})).await
}

async fn edit(req: HttpRequest, path: web::Path<i64>, state: web::Data<AppState>) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let id = path.into_inner();
    match with_conn(&state, move |conn, rules| Ok(rules.get(conn, id)?)).await {
        Ok(Some(rule)) => {
            page(&state, &session, json!({"editing": true, "action": format!("/ui/rules/{id}"), "text": to_toml(&rule.rule)})).await
        }
        Ok(None) => actix_web::ResponseError::error_response(&ApiError::not_found(format!("no rule {id}"))),
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}

async fn create(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    save(req, None, body, state).await
}

async fn update(
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    save(req, Some(path.into_inner()), body, state).await
}

/// Save or preview the rule in the form; errors come back on the page.
async fn save(
    req: HttpRequest,
    id: Option<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let fields = form(&body);
    if let Err(error) = session.check_csrf(field(&fields, "csrf")) {
        return actix_web::ResponseError::error_response(&error);
    }
    let text = field(&fields, "rule").unwrap_or_default().to_owned();
    let action = id.map_or("/ui/rules".to_owned(), |id| format!("/ui/rules/{id}"));
    let back = |error: Option<String>, preview: Option<Value>| json!({"editing": id.is_some(), "action": action, "text": text, "error": error, "preview": preview});
    let def = match parse(&text) {
        Ok(def) => def,
        Err(error) => return page(&state, &session, back(Some(error), None)).await,
    };
    if field(&fields, "action") == Some("preview") {
        let request = PreviewRequest {
            rule: def,
            since: None,
            until: None,
            limit: None,
        };
        return match preview(&state, request).await {
            Ok(result) => page(&state, &session, back(None, Some(result))).await,
            Err(error) => page(&state, &session, back(Some(error.message), None)).await,
        };
    }
    let name = def.name.clone();
    let saved = match id {
        Some(id) => {
            with_conn(&state, move |conn, rules| {
                rules
                    .update(conn, id, def)?
                    .ok_or_else(|| ApiError::not_found(format!("no rule {id}")))
            })
            .await
        }
        None => with_conn(&state, move |conn, rules| Ok(rules.create(conn, def)?)).await,
    };
    match saved {
        Ok(_) => redirect(&format!("/ui/rules?saved={}", super::urlencode(&name))),
        Err(error) => page(&state, &session, back(Some(error.message), None)).await,
    }
}

async fn toggle(
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    change(req, path.into_inner(), body, state, true).await
}

async fn delete(
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    change(req, path.into_inner(), body, state, false).await
}

async fn change(
    req: HttpRequest,
    id: i64,
    body: web::Bytes,
    state: web::Data<AppState>,
    toggle: bool,
) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    if let Err(error) = session.check_csrf(field(&form(&body), "csrf")) {
        return actix_web::ResponseError::error_response(&error);
    }
    let result = with_conn(&state, move |conn, rules| {
        if toggle {
            let Some(mut rule) = rules.get(conn, id)? else {
                return Err(ApiError::not_found(format!("no rule {id}")));
            };
            rule.rule.enabled = !rule.rule.enabled;
            rules.update(conn, id, rule.rule)?;
        } else {
            rules.delete(conn, id)?;
        }
        Ok(())
    })
    .await;
    match result {
        Ok(()) => redirect("/ui/rules"),
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}
