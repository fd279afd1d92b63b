//! Named calendars and recipients' quiet hours through the real binary:
//! the JSON API, the outbox holding an email, real SMTP, both backends.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp::SmtpServer;
use hookline_testdb::TestDatabase;

/// Hours on today's weekday only (UTC): quiet all of today.
fn all_of_today() -> Value {
    let today = chrono::Utc::now().date_naive();
    json!({"time_zone": "UTC", "hours": {weekday(today): ["00:00-24:00"]}})
}

/// Hours three days from now only: not today.
fn not_today() -> Value {
    let later = chrono::Utc::now().date_naive() + chrono::Days::new(3);
    json!({"time_zone": "UTC", "hours": {weekday(later): ["00:00-24:00"]}})
}

fn weekday(date: chrono::NaiveDate) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [chrono::Datelike::weekday(&date).num_days_from_monday() as usize]
}

async fn an_email_to_a_recipient_in_quiet_hours_is_held_then_sent_when_they_end(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(
        Some(db),
        Options {
            smtp_port: Some(smtp.port),
            ..Options::default()
        },
    );
    app.clear_rules().await;
    let (status, body) = app
        .api(
            Method::PUT,
            "/api/v1/calendars/nights",
            Some(all_of_today()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .api(
            Method::PUT,
            "/api/v1/recipients/lead@example.com",
            Some(json!({"quiet_hours": "nights"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"email": "lead@example.com", "quiet_hours": "nights"})
    );
    let rule = json!({
        "name": "handover-to-leads", "on": ["assignee_change"],
        "to": ["lead@example.com", "team@example.com"], "template": "handover",
    });
    let (status, body) = app.api(Method::POST, "/api/v1/rules", Some(rule)).await;
    assert_eq!(status, 201, "{body}");
    let response = app
        .post(envelope(&[fixture_item("24-assignee_change.json")]))
        .await;
    assert_eq!(response.status(), 200);
    // The team's email goes at once; the lead's is held.
    let received = smtp.wait_for(1, 15).await;
    assert_eq!(received[0].to, ["team@example.com"]);
    let (status, listing) = app
        .api(Method::GET, "/api/v1/notifications?status=held", None)
        .await;
    assert_eq!(status, 200, "{listing}");
    let held = &listing["items"].as_array().expect("items")[..];
    assert_eq!(held.len(), 1, "{listing}");
    assert_eq!(held[0]["recipient"], "lead@example.com");
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Days::new(1);
    let goes = held[0]["next_attempt_at"].as_str().unwrap_or_default();
    assert!(
        goes.starts_with(&format!("{tomorrow}T00:00:00")),
        "held until the end of the quiet hours: {goes}"
    );
    assert!(
        held[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("quiet hours of lead@example.com"),
        "{listing}"
    );
    // The Emails page says when it will go.
    let cookie = login(&app, ADMIN_TOKEN).await.expect("login");
    let html = page(&app, "/ui/notifications?status=held", &cookie).await;
    assert!(html.contains("held-until"), "{html}");
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert_eq!(smtp.received().len(), 1, "held, not sent");
    // The quiet hours change so that now is outside them: it goes, once.
    let (status, body) = app
        .api(Method::PUT, "/api/v1/calendars/nights", Some(not_today()))
        .await;
    assert_eq!(status, 200, "{body}");
    let received = smtp.wait_for(2, 15).await;
    assert_eq!(received[1].to, ["lead@example.com"]);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(smtp.received().len(), 2);
    let rows = app.notifications().await;
    assert!(rows.iter().all(|n| n.status == "sent"), "{rows:#?}");
}

async fn calendars_are_shared_by_name_through_the_api(db: TestDatabase) {
    let app = spawn_app(db);
    app.clear_rules().await;
    let office = json!({"time_zone": "Europe/Berlin", "hours": {"mon": ["09:00-12:30", "13:30-17:00"]}, "holidays": ["2026-12-25"]});
    let (status, body) = app
        .api(Method::PUT, "/api/v1/calendars/office", Some(office))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "office");
    assert_eq!(body["rules"], json!([]));
    // A bad calendar: 422 naming the problem.
    let (status, body) = app
        .api(
            Method::PUT,
            "/api/v1/calendars/bad",
            Some(json!({"time_zone": "Mars/Olympus", "hours": {"mon": ["09:00-17:00"]}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "invalid_calendar");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("IANA"),
        "{body}"
    );
    // A body naming another calendar than the path: 422, both names given.
    let (status, body) = app
        .api(
            Method::PUT,
            "/api/v1/calendars/office",
            Some(json!({"name": "shop", "time_zone": "UTC", "hours": {}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"shop\"") && message.contains("\"office\""),
        "{body}"
    );
    let rule = |calendar: &str| {
        json!({
            "name": "waiting", "to": ["lead@example.com"], "template": "waiting",
            "timer": {"after": "10m", "clock": "business", "calendar": calendar, "start": {"on": ["message"]}},
        })
    };
    // A rule naming a calendar that does not exist: 422 naming it.
    let (status, body) = app
        .api(Method::POST, "/api/v1/rules", Some(rule("ofice")))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "invalid_rule");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("unknown calendar \"ofice\": did you mean `office`?"),
        "{message}"
    );
    let (status, body) = app
        .api(Method::POST, "/api/v1/rules", Some(rule("office")))
        .await;
    assert_eq!(status, 201, "{body}");
    // In use: 409 naming the rule; still listed.
    let (status, body) = app
        .api(Method::DELETE, "/api/v1/calendars/office", None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "calendar_in_use");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"waiting\""),
        "{body}"
    );
    let (status, body) = app.api(Method::GET, "/api/v1/calendars", None).await;
    assert_eq!(status, 200, "{body}");
    // Beside it, the calendar the shipped examples use.
    let items = body["items"].as_array().expect("items");
    let office = items
        .iter()
        .find(|c| c["name"] == "office")
        .expect("office is listed");
    assert_eq!(office["rules"], json!(["waiting"]), "{body}");
    assert!(items.iter().any(|c| c["name"] == "support-hours"), "{body}");
    // A recipient naming an unknown calendar: 422.
    let (status, body) = app
        .api(
            Method::PUT,
            "/api/v1/recipients/lead@example.com",
            Some(json!({"quiet_hours": "nights"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // The Rules page lists the calendar.
    let cookie = login(&app, ADMIN_TOKEN).await.expect("login");
    let html = page(&app, "/ui/rules", &cookie).await;
    assert!(
        html.contains("id=\"calendar-list\"") && html.contains(">office<"),
        "{html}"
    );
    // Once no rule uses it, it can go.
    let id = app.api(Method::GET, "/api/v1/rules", None).await.1["items"][0]["id"]
        .as_i64()
        .expect("id");
    let (status, _) = app
        .api(Method::DELETE, &format!("/api/v1/rules/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .api(Method::DELETE, "/api/v1/calendars/office", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .api(Method::DELETE, "/api/v1/calendars/office", None)
        .await;
    assert_eq!(status, 404);
}

on_both_backends!(
    an_email_to_a_recipient_in_quiet_hours_is_held_then_sent_when_they_end,
    calendars_are_shared_by_name_through_the_api,
);
