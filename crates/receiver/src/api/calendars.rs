//! `/api/v1/calendars` and `/api/v1/recipients`: named business calendars
//! that timer rules share, and recipients with quiet hours of their own.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use hookline_notifier::calendar::CalendarDef;
use hookline_notifier::directory::RecipientDef;
use serde::Deserialize;
use serde_json::json;

use super::object_body;
use super::rules::with_conn;
use crate::error::ApiError;
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/calendars").route(web::get().to(list)))
        .service(
            web::resource("/calendars/{name}")
                .route(web::put().to(put))
                .route(web::delete().to(delete)),
        )
        .service(web::resource("/recipients").route(web::get().to(recipients)))
        .service(
            web::resource("/recipients/{email}")
                .route(web::put().to(put_recipient))
                .route(web::delete().to(delete_recipient)),
        );
}

/// A calendar's body: the calendar, and optionally its name (which must
/// be the path's), so that what GET lists can be sent back as it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarBody {
    #[serde(default)]
    name: Option<String>,
    time_zone: String,
    hours: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    holidays: Vec<String>,
    /// Shown by GET (what uses it); ignored.
    #[serde(default, rename = "rules")]
    _rules: Option<serde_json::Value>,
    #[serde(default, rename = "recipients")]
    _recipients: Option<serde_json::Value>,
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let calendars = with_conn(&state, |conn, rules| Ok(rules.calendars(conn)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": calendars })))
}

async fn put(
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let body: CalendarBody = object_body(
        &body,
        "invalid_calendar",
        "a calendar {\"time_zone\", \"hours\", \"holidays\"}",
        true,
    )?;
    if let Some(other) = body.name.as_deref().filter(|n| *n != name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_calendar",
            format!("\"name\" is {other:?} but the path names {name:?}: leave \"name\" out or give the same"),
        ));
    }
    let calendar = CalendarDef {
        time_zone: body.time_zone,
        hours: body.hours,
        holidays: body.holidays,
    };
    let view = with_conn(&state, move |conn, rules| {
        rules.put_calendar(conn, &name, calendar)?;
        Ok(rules
            .calendars(conn)?
            .into_iter()
            .find(|c| c.calendar.name == name))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn delete(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    // A name no calendar can have (a NUL, say, which PostgreSQL cannot
    // even compare) names none.
    if hookline_notifier::directory::check_name(&name).is_err() {
        return Err(ApiError::not_found(format!("no calendar {name:?}")));
    }
    let shown = name.clone();
    let deleted = with_conn(&state, move |conn, rules| {
        Ok(rules.delete_calendar(conn, &name)?)
    })
    .await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found(format!("no calendar {shown:?}")))
    }
}

async fn recipients(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = with_conn(&state, |conn, rules| Ok(rules.recipients(conn)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// A recipient's body: its quiet hours (a calendar's name, or null for
/// none), and optionally its address (which must be the path's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    quiet_hours: Option<String>,
}

async fn put_recipient(
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let email = path.into_inner();
    let body: RecipientBody = object_body(
        &body,
        "invalid_recipient",
        "a recipient {\"quiet_hours\": CALENDAR}",
        true,
    )?;
    if let Some(other) = body
        .email
        .as_deref()
        .filter(|e| !e.trim().eq_ignore_ascii_case(email.trim()))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_recipient",
            format!("\"email\" is {other:?} but the path names {email:?}: leave \"email\" out or give the same"),
        ));
    }
    let recipient = RecipientDef {
        email,
        quiet_hours: body.quiet_hours,
    };
    let (_, saved) = with_conn(&state, move |conn, rules| {
        Ok(rules.put_recipient(conn, recipient)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(saved))
}

async fn delete_recipient(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let email = path.into_inner();
    if hookline_notifier::directory::normalize_email(&email).is_err() {
        return Err(ApiError::not_found(format!("no recipient {email:?}")));
    }
    let shown = email.clone();
    let deleted = with_conn(&state, move |conn, rules| {
        Ok(rules.delete_recipient(conn, &email)?)
    })
    .await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found(format!("no recipient {shown:?}")))
    }
}
