//! The overview page (`/ui/`), read from its HTML, on both backends.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;
use hookline_storage::notifications::{self, NewNotification};
use hookline_testdb::TestDatabase;

on_both_backends!(the_overview_shows_events_emails_waiting_conversations_and_reply_times);

/// A fixture's item in conversation `key`, `ago` seconds before now.
fn recent(file: &str, key: &str, ago: i64) -> Value {
    let mut item = fixture_item(file);
    item["conversation"]["key"] = json!(key);
    let at = Utc::now() - Duration::seconds(ago);
    item["timestamp"] = json!(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
    item
}

/// The text of the element with `id` up to its first `<`.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id} in {html}"))
        + id.len()
        + 6;
    &html[start..start + html[start..].find('<').unwrap()]
}

async fn the_overview_shows_events_emails_waiting_conversations_and_reply_times(db: TestDatabase) {
    let app = spawn_app(db);
    app.clear_rules().await;
    const CREATE: &str = "01-conversation_create.json";
    const HANDOVER: &str = "24-assignee_change.json";
    const AGENT: &str = "03-message-image.json";
    let mut by_another = recent(AGENT, "other", 3_950);
    by_another["event"]["payload"]["message_by"]["email"] = json!("other@swiftsell.biz");
    let items = vec![
        // Held by the bot (conversation_create assigns it), or by nobody.
        recent("02-message-text.json", "week-old", 3 * 86_400),
        recent(CREATE, "waiting-old", 7_200),
        recent(CREATE, "waiting-new", 600),
        // Handed to himanshu@: answered after 90 s and after 10 min; one
        // answered first by another agent; one not yet.
        recent(HANDOVER, "fast", 4_000),
        recent(AGENT, "fast", 3_910),
        recent(HANDOVER, "slow", 4_000),
        recent(AGENT, "slow", 3_400),
        recent(HANDOVER, "other", 4_000),
        by_another,
        recent(HANDOVER, "silent", 100),
        // A type hookline does not know: counted, not drawn.
        {
            let mut item = recent("28-note.json", "waiting-new", 50);
            item["event"]["type"] = json!("mystery");
            item
        },
    ];
    assert_eq!(
        header_number(&app.post(envelope(&items)).await, "Hookline-Stored"),
        11
    );
    app.with_db(|conn| {
        let now = hookline_storage::now();
        for (status, n) in [("sent", 3), ("failed", 1), ("dead", 2)] {
            for _ in 0..n {
                notifications::insert(
                    conn,
                    &NewNotification {
                        rule_id: None,
                        rule_name: "test".into(),
                        event_id: None,
                        conversation_key: None,
                        recipient: "ops@example.com".into(),
                        template: "generic".into(),
                        status: status.into(),
                        reason: None,
                        next_attempt_at: None,
                        created_at: now,
                        updated_at: now,
                    },
                )
                .unwrap();
            }
        }
    })
    .await;
    let cookie = login(&app, ADMIN_TOKEN).await.unwrap();

    // The landing page after login is the overview.
    let response = no_redirects()
        .post(format!("{}/ui/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/ui/");

    let html = page(&app, "/ui/", &cookie).await;
    assert!(!html.contains("<script"), "no JavaScript");
    assert_eq!(figure(&html, "events-total"), "10");
    assert!(html.contains("<p class=\"small muted\" id=\"not-drawn\">1 events of other types"));
    assert_eq!(figure(&html, "handovers"), "4");
    assert_eq!(figure(&html, "emails-sent"), "3");
    assert_eq!(figure(&html, "emails-failed"), "1");
    assert_eq!(figure(&html, "emails-dead"), "2");
    assert_eq!(figure(&html, "waiting-total"), "3");
    // The chart: an SVG image with a title, and its figures as a table.
    assert!(html.contains("<svg class=\"chart\""), "{html}");
    assert!(html.contains(
        "<title id=\"events-chart-title\">Events per hour by type, the last 24 hours (UTC): 10 events, 4 handovers</title>"
    ));
    assert!(html.contains("assignee_change (4)") && html.contains("message (3)"));
    assert!(html.contains("<th scope=\"col\">Hour</th>"));
    // Waiting for an agent: bot-held or unassigned, oldest first, linked;
    // the conversations handed to an agent are not there.
    let waiting = &html[html.find("id=\"waiting\"").unwrap()..html.find("id=\"replies\"").unwrap()];
    let at = |key: &str| {
        waiting
            .find(&format!("href=\"/ui/conversations/{key}\""))
            .unwrap_or_else(|| panic!("{key} not waiting: {waiting}"))
    };
    assert!(at("week-old") < at("waiting-old") && at("waiting-old") < at("waiting-new"));
    for key in ["fast", "slow", "other", "silent"] {
        assert!(
            !waiting.contains(&format!("/ui/conversations/{key}\"")),
            "{key}"
        );
    }
    assert!(waiting.contains("bot seq_user@swiftsell.biz") && waiting.contains("nobody"));
    // Time to the first reply, per agent handed the conversation.
    assert!(
        html.contains("<th scope=\"row\">himanshu@swiftsell.biz</th><td>4</td><td>2 <span class=\"muted\">(+1 by others)</span></td><td>1 min 30 s</td><td>10 min</td><td>1</td>"),
        "{html}"
    );
    assert!(html.contains("himanshu@swiftsell.biz: median 1 min 30 s, 90th percentile 10 min (2 of 4 handovers answered)"));

    // The week: the 3-day-old message too.
    let week = page(&app, "/ui/?window=7d", &cookie).await;
    assert_eq!(figure(&week, "events-total"), "11");
    assert!(week.contains("<strong aria-current=\"page\">last 7 days</strong>"));
    assert!(week.contains("message (4)"));

    // A window that is not one is refused by name.
    let response = no_redirects()
        .get(format!("{}/ui/?window=1y", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(error_body(response).await["message"]
        .as_str()
        .unwrap()
        .contains("\"window\""));
}

/// Pages show times in the `time_zone` setting, named, with the exact UTC
/// in the tooltip; a zone that is not one stops the start, by name.
#[tokio::test]
async fn pages_show_times_in_the_configured_time_zone() {
    let app = spawn_app_with(
        Some(TestDatabase::sqlite()),
        Options {
            extra_args: vec!["--time-zone".into(), "Asia/Kolkata".into()],
            ..Options::default()
        },
    );
    let mut item = fixture_item("28-note.json");
    item["conversation"]["key"] = json!("zoned");
    item["timestamp"] = json!("2026-07-01 10:00:00");
    assert_eq!(app.post(envelope(&[item])).await.status(), 200);
    let cookie = login(&app, ADMIN_TOKEN).await.unwrap();
    let html = page(&app, "/ui/conversations/zoned", &cookie).await;
    assert!(
        html.contains("title=\"2026-07-01 10:00:00.000000 UTC\">2026-07-01 15:30 IST"),
        "{html}"
    );
    // The overview's hours are Kolkata's: they start at :30.
    let overview = page(&app, "/ui/", &cookie).await;
    assert!(
        overview.contains("Events per hour by type, the last 24 hours (Asia/Kolkata)"),
        "{overview}"
    );
    assert!(overview.contains(":30 IST"), "{overview}");

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let url = format!("sqlite://{}", db.display());
    let output = hookline_cli(&[
        "serve",
        "--time-zone",
        "Mars/Olympus",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &url,
    ]);
    assert!(!output.status.success());
    assert!(
        !db.exists(),
        "nothing is created before the settings are checked"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"Mars/Olympus\" is not an IANA time zone"),
        "{stderr}"
    );
}
