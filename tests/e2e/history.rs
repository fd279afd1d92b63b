//! The admin API: authentication, filters, paging, preview, export.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

const ADMIN_ROUTES: [(&str, &str); 14] = [
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/1"),
    ("GET", "/api/v1/conversations"),
    ("GET", "/api/v1/conversations/x"),
    ("GET", "/api/v1/notifications"),
    ("POST", "/api/v1/notifications/1/resend"),
    ("GET", "/api/v1/rules"),
    ("POST", "/api/v1/rules"),
    ("GET", "/api/v1/rules/1"),
    ("PUT", "/api/v1/rules/1"),
    ("DELETE", "/api/v1/rules/1"),
    ("POST", "/api/v1/rules/preview"),
    ("GET", "/api/v1/export"),
    ("GET", "/api/v1/openapi.json"),
];

const PAGES: [&str; 8] = [
    "/ui/",
    "/ui/conversations",
    "/ui/conversations/x",
    "/ui/events",
    "/ui/events/1",
    "/ui/rules",
    "/ui/rules/1",
    "/ui/notifications",
];

async fn post_all_fixtures(app: &TestApp) {
    for (name, body) in fixtures() {
        assert_eq!(app.post(body).await.status(), 200, "{name}");
    }
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    app.api(Method::GET, path, None).await
}

async fn every_admin_route_needs_the_admin_token(db: TestDatabase) {
    let app = spawn_app(db);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (index, (method, path)) in ADMIN_ROUTES.iter().enumerate() {
        let url = format!("{}{path}", app.base);
        let method: Method = method.parse().unwrap();
        // Each route from its own client address: an address that sends
        // several wrong tokens is slowed down (429), tested in security.rs.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from([127, 0, 2, index as u8 + 1]))
            .build()
            .unwrap();
        for token in [None, Some("wrong"), Some(app.token.as_str())] {
            let mut request = client.request(method.clone(), &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
            assert_eq!(error_body(response).await["error"], "unauthorized");
        }
    }
    for path in PAGES {
        let response = no_redirects
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/ui/login");
    }
    // Open: the webhook, the health route, the login page.
    let health = no_redirects
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let login = no_redirects
        .get(format!("{}/ui/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // The webhook token is not an admin token, and the reverse.
    let response = no_redirects
        .post(app.webhook_url())
        .bearer_auth(ADMIN_TOKEN)
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
}

async fn event_filters_select_what_they_name(db: TestDatabase) {
    let app = spawn_app(db);
    post_all_fixtures(&app).await;
    type Holds = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(&str, Holds)> = vec![
        ("type=status", Box::new(|e| e["type"] == "status")),
        (
            "message_type=image",
            Box::new(|e| e["message_type"] == "image"),
        ),
        (
            "conversation=8e6884db0c7a480e90b2118f6daae12c1693797745",
            Box::new(|e| e["conversation_key"] == "8e6884db0c7a480e90b2118f6daae12c1693797745"),
        ),
        ("account=476", Box::new(|_| true)),
        (
            "bot=4395",
            Box::new(|e| e["conversation_key"] == "8e6884db0c7a480e90b2118f6daae12c1693797745"),
        ),
        (
            "visitor=8eef41bf4d4248dd82d6a57c5b42fca9",
            Box::new(|e| e["conversation_key"] == "8e6884db0c7a480e90b2118f6daae12c1693797745"),
        ),
        (
            "actor=HIMANSHU@swiftsell.biz",
            Box::new(|e| e["actor"]["email"] == "himanshu@swiftsell.biz"),
        ),
        (
            "since=2023-09-01T14:13:40Z",
            Box::new(|e| e["occurred_at"].as_str().unwrap() >= "2023-09-01T14:13:40"),
        ),
        (
            "until=2023-09-01T14:13:40Z",
            Box::new(|e| e["occurred_at"].as_str().unwrap() < "2023-09-01T14:13:40"),
        ),
        ("q=hiiiii", Box::new(|e| e["summary"] == "visitor: Hiiiii")),
        (
            "q=Mtech",
            Box::new(|e| {
                e["message_type"] == "javascript.response" || e["message_type"] == "javascript"
            }),
        ),
        (
            "type=message&message_type=text&actor=nobody@x.io",
            Box::new(|_| false),
        ),
    ];
    let (_, everything) = get(&app, "/api/v1/events?limit=500").await;
    let all = everything["items"].as_array().unwrap().clone();
    assert_eq!(all.len(), 28);
    for (filter, holds) in cases {
        let (status, body) = get(&app, &format!("/api/v1/events?{filter}&limit=500")).await;
        assert_eq!(status, 200, "{filter}: {body}");
        let items = body["items"].as_array().unwrap();
        let expected = all.iter().filter(|e| holds(e)).count();
        assert!(items.iter().all(&holds), "{filter}: {items:#?}");
        if filter != "account=476" {
            assert_eq!(items.len(), expected, "{filter}");
        } else {
            assert_eq!(items.len(), 28);
        }
        if !filter.ends_with("nobody@x.io") {
            assert!(!items.is_empty(), "{filter} selected nothing");
        }
    }
    // Newest first.
    let times: Vec<&str> = all
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    // One event, with its raw JSON as received.
    let id = all.iter().find(|e| e["type"] == "note").unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, event) = get(&app, &format!("/api/v1/events/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(event["raw"], fixture_item("28-note.json"));
    assert_eq!(get(&app, "/api/v1/events/999999").await.0, 404);
}

async fn paging_misses_and_repeats_nothing_while_events_arrive(db: TestDatabase) {
    let app = spawn_app(db);
    let item = |n: usize| {
        let mut item = fixture_item("02-message-text.json");
        item["event"]["payload"]["message"]["text"] = json!(format!("paging {n}"));
        item["timestamp"] = json!(format!("2023-09-02 10:{:02}:{:02}.000000", n / 60, n % 60));
        item
    };
    let first: Vec<Value> = (0..120).map(item).collect();
    assert_eq!(
        header_number(&app.post(envelope(&first)).await, "Hookline-Stored"),
        120
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut arriving = 1000;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/events?limit=25&cursor={c}"),
            None => "/api/v1/events?limit=25".to_owned(),
        };
        let (status, page) = get(&app, &path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        // Ten new events arrive between pages, some newer, some older.
        let burst: Vec<Value> = (arriving..arriving + 10).map(item).collect();
        arriving += 10;
        assert_eq!(app.post(envelope(&burst)).await.status(), 200);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an event was repeated");
    let (_, all) = get(&app, "/api/v1/events?limit=500").await;
    let originals: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let n: usize = e["summary"]
                .as_str()
                .unwrap()
                .trim_start_matches("visitor: paging ")
                .parse()
                .unwrap();
            n < 120
        })
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(originals.len(), 120);
    for id in originals {
        assert!(unique.contains(&id), "event {id} was missed");
    }
}

async fn bad_parameters_are_400_naming_the_parameter(db: TestDatabase) {
    let app = spawn_app(db);
    for (path, name) in [
        ("/api/v1/events?limit=0", "limit"),
        ("/api/v1/events?limit=501", "limit"),
        ("/api/v1/events?since=yesterday", "since"),
        ("/api/v1/events?bot=abc", "bot"),
        ("/api/v1/events?cursor=zz", "cursor"),
        ("/api/v1/events?colour=red", "colour"),
        ("/api/v1/conversations?status=maybe", "status"),
        ("/api/v1/conversations?until=2023-13-01", "until"),
        ("/api/v1/notifications?status=lost", "status"),
        ("/api/v1/export?format=xml", "format"),
    ] {
        let (status, error) = get(&app, path).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert_eq!(error["error"], "invalid_parameter", "{path}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains(&format!("\"{name}\"")),
            "{path}: {error}"
        );
    }
}

async fn conversations_are_listed_filtered_and_shown_whole(db: TestDatabase) {
    let app = spawn_app(db);
    post_all_fixtures(&app).await;
    let (_, all) = get(&app, "/api/v1/conversations").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    for (filter, count) in [
        ("status=closed", 1),
        ("status=open", 1),
        ("assignee=himanshu@swiftsell.biz", 1),
        ("bot=8861", 1),
        ("bot=4395", 1),
        ("q=a27187", 1),
        ("q=nobody", 0),
        ("since=2023-09-04T00:00:00Z", 1),
    ] {
        let (status, body) = get(&app, &format!("/api/v1/conversations?{filter}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["items"].as_array().unwrap().len(), count, "{filter}");
    }
    // Paging: one per page, newest activity first, each once.
    let (_, first) = get(&app, "/api/v1/conversations?limit=1").await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, second) = get(
        &app,
        &format!("/api/v1/conversations?limit=1&cursor={cursor}"),
    )
    .await;
    assert!(second["next_cursor"].is_null());
    let (a, b) = (&first["items"][0], &second["items"][0]);
    assert_ne!(a["key"], b["key"]);
    assert!(a["last_event_at"].as_str().unwrap() >= b["last_event_at"].as_str().unwrap());
    let (status, whole) = get(&app, &format!("/api/v1/conversations/{CONVERSATION}")).await;
    assert_eq!(status, 200);
    assert_eq!(whole["conversation"]["title"], "Visitor - A27187");
    assert_eq!(whole["conversation"]["status"], "closed");
    let events = whole["events"].as_array().unwrap();
    assert_eq!(events.len(), 27);
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "oldest first");
    assert_eq!(
        whole["notifications"].as_array().unwrap().len(),
        1,
        "the handover email"
    );
    assert_eq!(get(&app, "/api/v1/conversations/nope").await.0, 404);
}

async fn notifications_are_filtered_and_resent(db: TestDatabase) {
    let app = spawn_app(db);
    assert_eq!(
        app.post(fixture("24-assignee_change.json")).await.status(),
        200
    );
    let rows = app
        .wait_for_notifications(10, "the handover email", |rows| {
            rows.iter().any(|n| n.status == "sent")
        })
        .await;
    let id = rows[0].id;
    for (filter, count) in [
        ("status=sent", 1),
        ("status=queued", 0),
        ("rule=handover-to-agent", 1),
        ("recipient=HIMANSHU@swiftsell.biz", 1),
        (&format!("conversation={CONVERSATION}") as &str, 1),
    ] {
        let (status, body) = get(&app, &format!("/api/v1/notifications?{filter}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["items"].as_array().unwrap().len(), count, "{filter}");
    }
    let (status, body) = app
        .api(
            Method::POST,
            &format!("/api/v1/notifications/{id}/resend"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    app.wait_for_notifications(10, "the resent email", |rows| {
        rows[0].status == "sent" && rows[0].attempts == 1
    })
    .await;
    let files = std::fs::read_dir(app.data_dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(files, 2, "sent twice: once, then once more on resend");
    assert_eq!(
        app.api(Method::POST, "/api/v1/notifications/999/resend", None)
            .await
            .0,
        404
    );
}

async fn preview_says_what_a_draft_rule_would_do(db: TestDatabase) {
    let app = spawn_app(db);
    post_all_fixtures(&app).await;
    let draft = json!({"rule": {
        "name": "draft", "on": ["assignee_change", "status"],
        "all": [{"field": "payload.to.type", "op": "eq", "value": "user"}],
        "to": ["{{payload.to.email}}", "lead@example.com"], "template": "handover"
    }});
    let (status, preview) = app
        .api(Method::POST, "/api/v1/rules/preview", Some(draft))
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["scanned"], 2);
    assert_eq!(preview["fired_count"], 1);
    let fired = &preview["fired"][0];
    assert_eq!(fired["event"]["type"], "assignee_change");
    assert_eq!(
        fired["recipients"],
        json!(["himanshu@swiftsell.biz", "lead@example.com"])
    );
    assert!(
        fired["subject"].as_str().unwrap().starts_with("Handover: "),
        "{fired}"
    );
    let not_fired = &preview["not_fired"][0];
    assert_eq!(not_fired["event"]["type"], "status");
    assert!(
        not_fired["failed"]
            .as_str()
            .unwrap()
            .contains("payload.to.type eq \"user\" did not hold"),
        "{not_fired}"
    );
    // A range with nothing in it.
    let ranged = json!({"rule": {"name": "d", "on": ["status"], "to": ["a@b.io"], "template": "generic"},
                         "since": "2030-01-01T00:00:00Z"});
    let (_, preview) = app
        .api(Method::POST, "/api/v1/rules/preview", Some(ranged))
        .await;
    assert_eq!(preview["scanned"], 0);
    // A bad draft is refused like any rule.
    let bad =
        json!({"rule": {"name": "d", "on": ["status"], "to": ["a@b.io"], "template": "nope"}});
    let (status, error) = app
        .api(Method::POST, "/api/v1/rules/preview", Some(bad))
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        app.notifications().await.len() == 1,
        "a preview sends nothing"
    );
}

/// The process's anonymous resident memory (heap, stacks; not the
/// database file SQLite maps), in kB.
fn anon_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn export_streams_100000_events_in_constant_memory(db: TestDatabase) {
    let app = spawn_app(db);
    let total = 100_000;
    let batch = 1_000;
    let template = fixture_item("02-message-text.json");
    for start in (0..total).step_by(batch) {
        let items: Vec<Value> = (start..start + batch)
            .map(|n| {
                let mut item = template.clone();
                item["event"]["payload"]["message"]["text"] = json!(format!("export {n}"));
                item
            })
            .collect();
        let response = app.post(envelope(&items)).await;
        assert_eq!(header_number(&response, "Hookline-Stored"), batch);
    }
    let before = anon_rss_kb(app.pid());
    let mut peak = before;
    // This test is about memory, not speed: a loaded machine (the suite's
    // own parallel tests) took the export past the client's usual 30 s.
    let mut response = app
        .client
        .get(format!("{}/api/v1/export", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .timeout(std::time::Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let (mut lines, mut bytes) = (0usize, 0usize);
    let mut last_line = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        peak = peak.max(anon_rss_kb(app.pid()));
        for byte in chunk.iter() {
            if *byte == b'\n' {
                if lines == 0 {
                    let first: Value = serde_json::from_slice(&last_line).unwrap();
                    assert!(first["raw"]["event"]["payload"]["message"]["text"]
                        .as_str()
                        .unwrap()
                        .starts_with("export "));
                }
                lines += 1;
                last_line.clear();
            } else {
                last_line.push(*byte);
            }
        }
    }
    assert_eq!(lines, total);
    let growth_mb = peak.saturating_sub(before) / 1024;
    let body_mb = bytes / (1024 * 1024);
    println!("export: {lines} events, {body_mb} MiB, server peak memory grew {growth_mb} MiB");
    assert!(body_mb > 40, "the export should be large: {body_mb} MiB");
    assert!(
        growth_mb < 32,
        "the server's memory grew {growth_mb} MiB for a {body_mb} MiB export"
    );
    // CSV, filtered.
    let csv = app
        .client
        .get(format!(
            "{}/api/v1/export?format=csv&q=export%2099999",
            app.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .timeout(std::time::Duration::from_secs(300))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("id,type,message_type,conversation_key"));
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[1].contains("visitor: export 99999"));
}

/// Words, through the search index the server fills while idle (SQLite) or
/// on insert (PostgreSQL).
async fn search_finds_words_through_the_index(db: TestDatabase) {
    let app = spawn_app(db);
    post_all_fixtures(&app).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let metrics = app.metrics().await;
        let waiting = metrics
            .lines()
            .find_map(|l| l.strip_prefix("hookline_search_unindexed_events "))
            .map(str::to_owned);
        if waiting.as_deref() == Some("0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index did not catch up: {waiting:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let texts = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["summary"].as_str().unwrap().to_owned())
            .collect()
    };
    // A whole word, or with `*` the start of one, in any case; an email
    // address as its words.
    let (status, body) = get(&app, "/api/v1/events?q=HIII*").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(texts(&body), ["visitor: Hiiiii"]);
    let (_, body) = get(&app, "/api/v1/events?q=HIII").await;
    assert!(texts(&body).is_empty(), "no `*`, whole words only: {body}");
    let (_, body) = get(&app, "/api/v1/events?q=HIIIII").await;
    assert_eq!(texts(&body), ["visitor: Hiiiii"]);
    let (_, body) = get(
        &app,
        "/api/v1/events?q=himanshu%40swiftsell.biz&type=assignee_change",
    )
    .await;
    assert_eq!(texts(&body).len(), 1, "{body}");
    // Inside a word is not a word: found by a scan it would be, so this
    // also shows the answer came from the index.
    let (_, body) = get(&app, "/api/v1/events?q=iiiii*").await;
    assert!(texts(&body).is_empty(), "{body}");
    // Search syntax is read as words, never as operators or an error.
    for q in [
        "%22a",
        "NEAR(a",
        "hiiiii%20OR",
        "*x",
        "%25a",
        "NOT%20hiiiii",
        "a%22b%5E",
    ] {
        let (status, body) = get(&app, &format!("/api/v1/events?q={q}")).await;
        assert_eq!(status, 200, "q={q}: {body}");
    }
    // No word at all: refused by name, not a scan of every event.
    for q in ["%40%40", "%25", "*", "%20%20"] {
        let (status, body) = get(&app, &format!("/api/v1/events?q={q}")).await;
        assert_eq!(status, 400, "q={q}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("\"q\""),
            "{body}"
        );
    }
    let (_, body) = get(&app, "/api/v1/events?q=hiiiii%20OR%20nothingatall").await;
    assert!(texts(&body).is_empty(), "every word must be there: {body}");
}

on_both_backends!(
    every_admin_route_needs_the_admin_token,
    search_finds_words_through_the_index,
    event_filters_select_what_they_name,
    paging_misses_and_repeats_nothing_while_events_arrive,
    bad_parameters_are_400_naming_the_parameter,
    conversations_are_listed_filtered_and_shown_whole,
    notifications_are_filtered_and_resent,
    preview_says_what_a_draft_rule_would_do,
    export_streams_100000_events_in_constant_memory,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_mistakes_are_json_errors_naming_the_problem() {
    let app = spawn_app(TestDatabase::sqlite());
    // Another method on a known route: 405, as JSON, with Allow.
    let response = app
        .client
        .post(format!("{}/api/v1/rules/1", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("allow"));
    let body = error_body(response).await;
    assert_eq!(body["error"], "method_not_allowed", "{body}");
    // An empty parameter is a mistake, not "no filter".
    let (status, body) = app.api(Method::GET, "/api/v1/events?until=", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"until\": is empty"),
        "{body}"
    );
    // The pages still accept a GET form's empty fields.
    let (status, _) = app
        .api(
            Method::GET,
            "/api/v1/events?until=2030-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(status, 200);
}
