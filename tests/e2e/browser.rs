//! The admin pages in a real headless Chromium.

use serde_json::json;

use crate::helpers::*;
use crate::webdriver::Browser;
use hookline_testdb::TestDatabase;

const XSS: &str = "<img src=x onerror=alert(1)>";

/// axe-core's `axe.min.js` from `HOOKLINE_TEST_AXE` (`.ci/run` installs the
/// npm package, pinned); without it the pages are not checked, with a
/// notice.
fn axe_source() -> Option<String> {
    let Some(path) = std::env::var_os("HOOKLINE_TEST_AXE") else {
        eprintln!("accessibility not checked: HOOKLINE_TEST_AXE is unset (.ci/run installs axe-core and sets it)");
        return None;
    };
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
}

/// No critical or serious axe-core violation on the page shown.
async fn assert_accessible(browser: &Browser, axe: &Option<String>, page: &str) {
    if let Some(source) = axe {
        let violations = browser.serious_accessibility_violations(source).await;
        assert!(
            violations.is_empty(),
            "{page}: accessibility violations:\n{}",
            violations.join("\n")
        );
        eprintln!("axe-core: {page}: no critical or serious violation");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_logs_in_reads_the_conversation_filters_and_edits_rules() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let axe = axe_source();
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
    // Recent history for the overview: handovers answered after 2 and 9
    // minutes; and a long conversation.
    let recent = |file: &str, key: &str, ago: i64| {
        let mut item = fixture_item(file);
        item["conversation"]["key"] = json!(key);
        let at = chrono::Utc::now() - chrono::Duration::seconds(ago);
        item["timestamp"] = json!(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        item
    };
    let mut items = Vec::new();
    for (n, reply) in [(0, 120), (1, 540)] {
        let key = format!("recent-{n}");
        items.push(recent(
            "01-conversation_create.json",
            &key,
            9_000 + n * 3_600,
        ));
        items.push(recent("24-assignee_change.json", &key, 7_000 + n * 3_600));
        items.push(recent(
            "03-message-image.json",
            &key,
            7_000 + n * 3_600 - reply,
        ));
    }
    for n in 0..150 {
        let file = if n % 3 == 0 {
            "12-message-button.json"
        } else {
            "02-message-text.json"
        };
        let mut item = recent(file, "long-conversation", 6_000 - n * 20);
        if file == "02-message-text.json" {
            item["event"]["payload"]["message"]["text"] =
                json!(format!("message {n} of a long conversation"));
        }
        items.push(item);
    }
    assert_eq!(app.post(envelope(&items)).await.status(), 200);

    // Pages need a login; a wrong token is refused.
    browser
        .goto(&format!("{}/ui/conversations", app.base))
        .await;
    browser.wait_for_url("/ui/login").await;
    assert_accessible(&browser, &axe, "login").await;
    browser.type_into("#token", "wrong").await;
    browser.click("button[type=submit]").await;
    // The same URL answers the refusal: wait for its message.
    browser.wait_for("#login-error").await;
    assert!(browser
        .text("#login-error")
        .await
        .contains("not the admin token"));
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("button[type=submit]").await;
    // The landing page is the overview: figures, the charts (SVG images
    // with a title) and the tables that carry their figures.
    browser.wait_for("#tiles").await;
    let tiles = browser.text("#tiles").await;
    assert!(
        tiles.contains("handovers") && tiles.contains("emails sent"),
        "{tiles}"
    );
    let chart_title = browser
        .execute("return document.querySelector('#events-svg title').textContent")
        .await;
    assert!(
        chart_title
            .as_str()
            .unwrap()
            .contains("Events per hour by type, the last 24 hours (UTC): 156 events, 2 handovers"),
        "{chart_title}"
    );
    let replies = browser.text("#replies-table").await.replace('\t', " ");
    assert!(
        replies.contains("himanshu@swiftsell.biz 2 2 2 min 9 min 0"),
        "{replies}"
    );
    assert!(!browser
        .find_all("#waiting a[href='/ui/conversations/long-conversation']")
        .await
        .is_empty());
    browser.screenshot("overview").await;
    assert_accessible(&browser, &axe, "overview").await;
    browser.click("#window a").await;
    browser.wait_for_url("window=7d").await;
    assert!(browser.text("#window").await.contains("last 7 days"));
    assert_accessible(&browser, &axe, "overview (7 days)").await;

    browser
        .goto(&format!("{}/ui/conversations", app.base))
        .await;
    let list = browser.text("#conversations").await;
    assert!(list.contains("Visitor - A27187"), "{list}");
    browser.screenshot("conversations").await;
    assert_accessible(&browser, &axe, "conversations").await;

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
    for event in events
        .iter()
        .filter(|e| e["type"] != "message" && e["type"] != "assignee_change")
    {
        let summary = event["summary"].as_str().unwrap();
        assert!(
            transcript.contains(summary),
            "the transcript lacks {summary:?}:\n{transcript}"
        );
    }
    // Each message is a bubble that names its sender once.
    let bubbles = browser
        .execute("return Array.from(document.querySelectorAll('#transcript .bubble')).map(b => [b.querySelector('.who').textContent.split(' · ')[0], b.innerText])")
        .await;
    let bubbles = bubbles.as_array().unwrap();
    let messages = events.iter().filter(|e| e["type"] == "message").count();
    assert!(messages > 15);
    assert_eq!(bubbles.len(), messages);
    for bubble in bubbles {
        let (who, text) = (bubble[0].as_str().unwrap(), bubble[1].as_str().unwrap());
        assert_eq!(text.matches(who).count(), 1, "{who:?} in {text:?}");
    }
    assert!(transcript.contains("Hiiiii"));
    // The handover is a marker of its own: from, to, by whom.
    let handover = browser.text("#transcript .handover").await;
    assert!(
        handover.starts_with("Handover bot seq_user@swiftsell.biz → agent himanshu@swiftsell.biz by himanshu@swiftsell.biz"),
        "{handover}"
    );
    // The visitor's details, each once.
    let details = browser
        .execute("return Array.from(document.querySelectorAll('#visitor-details dd')).map(d => d.textContent)")
        .await;
    let details: Vec<&str> = details
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(details.contains(&"nik"), "{details:?}");
    let mut unique = details.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), details.len(), "{details:?}");
    // Each event's raw JSON disclosure holds the item as received (they
    // were all blank once).
    let raws = browser
        .execute("return Array.from(document.querySelectorAll('#transcript details.raw pre')).map(p => p.textContent)")
        .await;
    let raws = raws.as_array().unwrap();
    assert_eq!(raws.len(), 27);
    for raw in raws {
        let raw = raw.as_str().unwrap();
        assert!(
            raw.contains("\"event\"") && raw.contains("\"type\""),
            "{raw}"
        );
    }
    // Times read as date, time and age; the exact time is the tooltip.
    assert!(
        transcript.contains("2023-09-01 14:13 UTC · "),
        "{transcript}"
    );
    assert!(!transcript.contains("T14:13:32"), "{transcript}");
    let exact = browser
        .execute("return document.querySelector('#transcript time').title")
        .await;
    assert!(exact.as_str().unwrap().ends_with(" UTC"), "{exact}");
    assert!(!browser.find_all(".bubble.visitor").await.is_empty());
    assert!(!browser.find_all(".bubble.agent").await.is_empty());
    assert!(browser.text("#emails").await.contains("handover-to-agent"));
    browser.screenshot("conversation").await;
    assert_accessible(&browser, &axe, "conversation").await;

    // A long conversation: the newest 100 of its 150 events.
    browser
        .goto(&format!("{}/ui/conversations/long-conversation", app.base))
        .await;
    assert!(browser
        .text("#transcript-paging")
        .await
        .contains("The newest 100 of 150 events"));
    assert!(browser
        .text("#transcript")
        .await
        .contains("message 149 of a long conversation"));
    browser.screenshot("long-conversation").await;
    assert_accessible(&browser, &axe, "long conversation").await;

    // The events page filters by type.
    browser.goto(&format!("{}/ui/events", app.base)).await;
    browser.click("#filter-type option[value=status]").await;
    browser.click("#event-filters button[type=submit]").await;
    browser.wait_for_url("type=status").await;
    let rows = browser.find_all("#events tbody tr").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(browser.attribute(&rows[0], "data-type").await, "status");
    // The conversation is named by its visitor and title, not its key.
    let row = browser.text("#events tbody tr").await;
    let visitor = detail["conversation"]["visitor"]["name"].as_str().unwrap();
    assert!(
        row.contains(visitor) && row.contains("Visitor - A27187"),
        "{row}"
    );
    assert!(!row.contains("42bb83f00d82"), "{row}");
    browser.screenshot("events").await;
    assert_accessible(&browser, &axe, "events").await;

    // A bad rule gets the API's message; a good one is saved.
    browser.goto(&format!("{}/ui/rules", app.base)).await;
    // The new-rule form starts empty, the example beside it.
    let editor = browser
        .execute("return document.querySelector('#rule-text').value")
        .await;
    assert_eq!(editor, "");
    assert!(browser
        .text("#rule-example")
        .await
        .contains("name = \"closed-on-bot-8861\""));
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
    // The list shows each rule's conditions, and when it last fired.
    assert!(browser.text("#rules").await.contains("bot.id eq 8861"));
    let fired = browser
        .execute("return Array.from(document.querySelectorAll('#rules tbody tr')).map(r => [r.cells[0].innerText, r.querySelector('.last-fired').innerText])")
        .await;
    let fired = fired.as_array().unwrap();
    let last = |name: &str| {
        fired
            .iter()
            .find(|r| r[0].as_str().unwrap().starts_with(name))
            .map(|r| r[1].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no rule {name} in {fired:?}"))
    };
    assert!(last("handover-to-agent").contains(" UTC · "), "{fired:?}");
    assert_eq!(last("closed-on-8861"), "never");
    browser.screenshot("rules").await;
    assert_accessible(&browser, &axe, "rules").await;
    // Delete asks first: the button that deletes is behind "Delete…".
    let rows_before = browser.find_all("#rules tbody tr").await.len();
    browser
        .click("#rules tbody tr:last-child details.confirm summary")
        .await;
    browser
        .click("#rules tbody tr:last-child details.confirm button")
        .await;
    browser.wait_for_url("/ui/rules").await;
    for _ in 0..100 {
        if browser.find_all("#rules tbody tr").await.len() < rows_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        browser.find_all("#rules tbody tr").await.len(),
        rows_before - 1
    );

    browser
        .goto(&format!("{}/ui/notifications", app.base))
        .await;
    assert!(browser
        .text("#notifications")
        .await
        .contains("himanshu@swiftsell.biz"));
    browser.screenshot("notifications").await;
    assert_accessible(&browser, &axe, "notifications").await;

    // One email as it was sent: subject, text part, headers.
    let sent = app
        .with_db(|c| {
            hookline_storage::notifications::all(c)
                .unwrap()
                .into_iter()
                .find(|n| n.status == "sent")
                .expect("a sent email")
        })
        .await;
    browser
        .goto(&format!("{}/ui/notifications/{}", app.base, sent.id))
        .await;
    let subject = browser.text("#email-subject").await;
    assert_eq!(Some(subject.as_str()), sent.subject.as_deref());
    assert!(
        browser
            .text("#email-text")
            .await
            .contains("himanshu@swiftsell.biz"),
        "the text part is shown"
    );
    let headers = browser.text("#email-headers").await;
    assert!(
        headers.contains("Message-ID") && headers.contains("Auto-Submitted"),
        "{headers}"
    );
    browser.screenshot("email").await;
    assert_accessible(&browser, &axe, "email").await;

    // Visitor text is shown as text, never run.
    browser
        .goto(&format!("{}/ui/conversations/xss-conversation", app.base))
        .await;
    assert!(browser.text("#transcript").await.contains(XSS));
    assert!(browser.find_all("img[src=x]").await.is_empty());
    let source = browser.source().await;
    assert!(source.contains("&lt;img src=x onerror=alert(1)&gt;"));
    browser.screenshot("xss").await;
    assert_accessible(&browser, &axe, "xss").await;

    // An event's page shows its raw JSON (it was blank once: the field was
    // shadowed by handlebars' built-in `raw` helper).
    browser.goto(&format!("{}/ui/events/1", app.base)).await;
    let raw = browser.text("#raw").await;
    assert!(
        raw.contains("\"event\"") && raw.contains("\"type\""),
        "{raw}"
    );
    assert_accessible(&browser, &axe, "event").await;
    browser.quit().await;
}
