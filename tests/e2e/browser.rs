//! The admin pages in a real headless Chromium.

use serde_json::json;

use crate::helpers::*;
use crate::webdriver::Browser;
use hookline_storage::testing::TestDatabase;

const XSS: &str = "<img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_logs_in_reads_the_conversation_filters_and_edits_rules() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app(TestDatabase::sqlite());
    for (name, body) in fixtures() {
        assert_eq!(app.post(body).await.status(), 200, "{name}");
    }
    let mut evil = fixture_item("02-message-text.json");
    evil["conversation"]["key"] = json!("xss-conversation");
    evil["event"]["payload"]["message"]["text"] = json!(XSS);
    assert_eq!(app.post(envelope(&[evil])).await.status(), 200);
    app.wait_for_notifications(10, "the handover email", |rows| {
        rows.iter().any(|n| n.status == "sent")
    })
    .await;

    // Pages need a login; a wrong token is refused.
    browser
        .goto(&format!("{}/ui/conversations", app.base))
        .await;
    browser.wait_for_url("/ui/login").await;
    browser.type_into("#token", "wrong").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/ui/login").await;
    assert!(browser
        .text("#login-error")
        .await
        .contains("not the admin token"));
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/ui/conversations").await;
    let list = browser.text("#conversations").await;
    assert!(list.contains("Visitor - A27187"), "{list}");
    browser.screenshot("conversations").await;

    // The conversation built from the fixtures shows every event's summary.
    browser
        .goto(&format!("{}/ui/conversations/{CONVERSATION}", app.base))
        .await;
    let transcript = browser.text("#transcript").await;
    let (_, detail) = app
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/conversations/{CONVERSATION}"),
            None,
        )
        .await;
    let events = detail["events"].as_array().unwrap();
    assert_eq!(events.len(), 27);
    for event in events {
        let summary = event["summary"].as_str().unwrap();
        assert!(
            transcript.contains(summary),
            "the transcript lacks {summary:?}:\n{transcript}"
        );
    }
    assert!(!browser.find_all(".bubble.visitor").await.is_empty());
    assert!(!browser.find_all(".bubble.agent").await.is_empty());
    assert!(browser.text("#emails").await.contains("handover-to-agent"));
    browser.screenshot("conversation").await;

    // The events page filters by type.
    browser.goto(&format!("{}/ui/events", app.base)).await;
    browser.click("#filter-type option[value=status]").await;
    browser.click("#event-filters button[type=submit]").await;
    browser.wait_for_url("type=status").await;
    let rows = browser.find_all("#events tbody tr").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(browser.attribute(&rows[0], "data-type").await, "status");
    browser.screenshot("events").await;

    // A bad rule gets the API's message; a good one is saved.
    browser.goto(&format!("{}/ui/rules", app.base)).await;
    browser
        .type_into("#rule-text", "name = \"bad\"\non = [\"status\"]\nall = [{ field = \"payload.status\", op = \"equals\", value = \"Close\" }]\nto = [\"lead@example.com\"]\ntemplate = \"generic\"\n")
        .await;
    browser.click("#save-rule").await;
    browser.wait_for("#rule-error").await;
    let error = browser.text("#rule-error").await;
    assert!(
        error.contains("rule \"bad\": all[0]: unknown operator \"equals\""),
        "{error}"
    );
    browser
        .type_into("#rule-text", "name = \"closed-on-8861\"\non = [\"status\"]\nall = [{ field = \"bot.id\", op = \"eq\", value = 8861 }]\nto = [\"lead@example.com\"]\ntemplate = \"status_change\"\n")
        .await;
    browser.click("#preview-rule").await;
    browser.wait_for("#preview").await;
    assert!(browser
        .text("#preview")
        .await
        .contains("1 of 1 events would fire"));
    browser.click("#save-rule").await;
    browser.wait_for_url("saved=").await;
    assert!(browser.text("#rules").await.contains("closed-on-8861"));
    browser.screenshot("rules").await;

    browser
        .goto(&format!("{}/ui/notifications", app.base))
        .await;
    assert!(browser
        .text("#notifications")
        .await
        .contains("himanshu@swiftsell.biz"));
    browser.screenshot("notifications").await;

    // Visitor text is shown as text, never run.
    browser
        .goto(&format!("{}/ui/conversations/xss-conversation", app.base))
        .await;
    assert!(browser.text("#transcript").await.contains(XSS));
    assert!(browser.find_all("img[src=x]").await.is_empty());
    let source = browser.source().await;
    assert!(source.contains("&lt;img src=x onerror=alert(1)&gt;"));
    browser.screenshot("xss").await;

    // An event's page shows its raw JSON (it was blank once: the field was
    // shadowed by handlebars' built-in `raw` helper).
    browser.goto(&format!("{}/ui/events/1", app.base)).await;
    let raw = browser.text("#raw").await;
    assert!(
        raw.contains("\"event\"") && raw.contains("\"type\""),
        "{raw}"
    );
    browser.quit().await;
}
