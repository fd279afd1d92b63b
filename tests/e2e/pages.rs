//! What the admin pages show, read from their HTML.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

on_both_backends!(a_long_conversation_page_shows_the_newest_events_and_pages_back);

/// The page holds the newest 100 events, oldest first, with a link to the
/// ones before; following the links reaches the first event, each event
/// once. A large item's raw JSON is a link to its event page.
async fn a_long_conversation_page_shows_the_newest_events_and_pages_back(db: TestDatabase) {
    let app = spawn_app(db);
    let item = |n: usize| {
        let mut item = fixture_item("02-message-text.json");
        item["conversation"]["key"] = json!("long-page");
        let text = if n == 249 {
            format!("line {n} {}", "x".repeat(5_000))
        } else {
            format!("line {n}")
        };
        item["event"]["payload"]["message"]["text"] = json!(text);
        item["timestamp"] = json!(format!("2023-09-02 10:{:02}:{:02}.000000", n / 60, n % 60));
        item
    };
    let items: Vec<Value> = (0..250).map(item).collect();
    assert_eq!(
        header_number(&app.post(envelope(&items)).await, "Hookline-Stored"),
        250
    );
    let cookie = login(&app, ADMIN_TOKEN).await.unwrap();
    let lines = |html: &str| -> Vec<usize> {
        html.split("<div class=\"text\">line ")
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    let newest = page(&app, "/ui/conversations/long-page", &cookie).await;
    assert_eq!(lines(&newest), (150..250).collect::<Vec<_>>());
    assert!(newest.contains("The newest 100 of 250 events"), "{newest}");
    // Times in one form: to the minute, how long ago, the exact time in a
    // tooltip; never the stored RFC 3339 text.
    assert!(newest.contains(
        "<time datetime=\"2023-09-02T10:04:09.000000Z\" title=\"2023-09-02 10:04:09.000000 UTC\">2023-09-02 10:04 UTC <span class=\"ago\">· "
    ), "{newest}");
    assert!(newest.contains("years ago</span></time>"));
    // The big item's raw JSON is one click away; the others are inline.
    assert!(newest.contains("raw JSON (") && newest.contains("bytes) →"));
    assert_eq!(newest.matches("<summary>raw JSON</summary>").count(), 99);
    let mut seen = lines(&newest);
    let mut html = newest;
    while let Some(link) = older_link(&html) {
        html = page(&app, &link, &cookie).await;
        assert!(html.contains("Newest events →"));
        let mut earlier = lines(&html);
        earlier.append(&mut seen);
        seen = earlier;
    }
    assert_eq!(seen, (0..250).collect::<Vec<_>>());
    // A cursor that is not one is a 400 naming the parameter.
    let response = no_redirects()
        .get(format!("{}/ui/conversations/long-page?before=zz", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(error_body(response).await["message"]
        .as_str()
        .unwrap()
        .contains("\"cursor\""));
}

/// The "Older events" link of a conversation page.
fn older_link(html: &str) -> Option<String> {
    let end = html.find("\" id=\"older\"")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end].replace("&amp;", "&"))
}
