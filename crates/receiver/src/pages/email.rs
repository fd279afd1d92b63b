//! `/ui/notifications/{id}`: one email as it was sent. The message kept at
//! send time (the exact bytes given to the SMTP server or written to the
//! `.eml` file) is shown as a mail client would: subject, headers, the
//! text part, the HTML part in a sandboxed frame (no script, no forms, no
//! navigation, its own opaque origin), and the source.

use actix_web::{web, HttpRequest, HttpResponse};
use hookline_storage::notifications;
use mailparse::{MailHeaderMap, ParsedMail};
use serde::Serialize;
use serde_json::json;

use super::{render, session};
use crate::api::{db_error, with_db};
use crate::{views, AppState};

/// An email's parts, decoded.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Shown {
    pub subject: String,
    /// Every header in order, values decoded (RFC 2047).
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub source: String,
}

fn walk(part: &ParsedMail<'_>, shown: &mut Shown) {
    if !part.subparts.is_empty() {
        for sub in &part.subparts {
            walk(sub, shown);
        }
        return;
    }
    let slot = match part.ctype.mimetype.as_str() {
        "text/plain" => &mut shown.text,
        "text/html" => &mut shown.html,
        _ => return,
    };
    if slot.is_none() {
        *slot = part.get_body().ok();
    }
}

/// Reads a kept message; an unreadable one is shown as its source only.
pub fn parts(message: &str) -> Shown {
    let mut shown = Shown {
        source: message.to_owned(),
        ..Shown::default()
    };
    if let Ok(parsed) = mailparse::parse_mail(message.as_bytes()) {
        shown.subject = parsed
            .headers
            .get_first_value("Subject")
            .unwrap_or_default();
        shown.headers = parsed
            .headers
            .iter()
            .map(|h| (h.get_key(), h.get_value()))
            .collect();
        walk(&parsed, &mut shown);
    }
    shown
}

pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let Ok(id) = path.parse::<i64>() else {
        return actix_web::ResponseError::error_response(&crate::ApiError::not_found(
            "no such email",
        ));
    };
    let loaded = with_db(&state, move |conn| {
        let row = notifications::get(conn, id).map_err(db_error)?;
        let message = notifications::message(conn, id).map_err(db_error)?;
        Ok(row.map(|row| (row, message)))
    })
    .await;
    let (row, message) = match loaded {
        Ok(Some(found)) => found,
        Ok(None) => {
            return actix_web::ResponseError::error_response(&crate::ApiError::not_found(format!(
                "no email {id}"
            )))
        }
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let missing = match (row.status.as_str(), &message) {
        (_, Some(_)) => None,
        (notifications::SENT, None) => Some(
            "This email was sent before hookline kept what it sends, or was larger than 1 MiB: \
             only its record is shown.",
        ),
        _ => Some("Not sent (yet): there is no message to show, only its record."),
    };
    render(
        &state,
        "email",
        "notifications",
        &session,
        json!({
            "title": format!("Email {id}"),
            "n": views::notification(&row),
            "message": message.as_deref().map(parts),
            "missing": missing,
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_read_into_its_parts() {
        let message =
            "Subject: =?utf-8?q?Caf=C3=A9?=\r\nFrom: a@example.com\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--b\r\n\
            Content-Type: text/html; charset=utf-8\r\n\r\n<p>hello</p>\r\n--b--\r\n";
        let shown = parts(message);
        assert_eq!(shown.subject, "Café");
        assert_eq!(shown.headers[0], ("Subject".to_owned(), "Café".to_owned()));
        assert_eq!(shown.text.as_deref(), Some("hello"));
        assert_eq!(shown.html.as_deref(), Some("<p>hello</p>"));
        assert_eq!(shown.source, message);
    }
}
