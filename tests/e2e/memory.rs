//! Memory: one request reads a bounded number of rows however long a
//! conversation is, a listing does not load the JSON it does not show, and
//! memory goes back to the system after bursts of large deliveries.
//!
//! A request's growth is measured as anonymous memory (RssAnon), sampled
//! every millisecond while it runs: the peak of all resident memory
//! (VmHWM) also counts the database file's pages SQLite reads through its
//! memory map (45 MB of RssFile in the listing test), which are the
//! operating system's cache, not the process's.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::load::{note, SUSTAINED_LOAD};
use crate::on_both_backends;
use hookline_storage::events;
use hookline_testdb::TestDatabase;

/// The server's anonymous resident memory (RssAnon), in bytes.
fn anonymous_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("RssAnon")
        * 1024
}

/// What `request` answered, and how far the server's anonymous memory rose
/// above its size before, sampled every millisecond meanwhile.
async fn anonymous_growth_during<T>(pid: u32, request: impl Future<Output = T>) -> (T, u64) {
    let before = anonymous_memory(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(anonymous_memory(pid));
                std::thread::sleep(Duration::from_millis(1));
            }
            peak.max(anonymous_memory(pid))
        })
    };
    let answer = request.await;
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    (answer, peak.saturating_sub(before))
}

/// `count` notes of `raw_bytes` of raw JSON each in conversation `key`,
/// written straight to the database (seconds instead of minutes of posts).
async fn bulk_notes(app: &TestApp, count: i64, key: &str, raw_bytes: usize, summary: &str) {
    let (key, summary) = (key.to_owned(), summary.to_owned());
    app.with_db(move |c| {
        use hookline_storage::diesel::connection::SimpleConnection;
        let at = match c {
            hookline_storage::DbConnection::Pg(_) => "TIMESTAMP '2026-01-01 00:00:00'",
            hookline_storage::DbConnection::Sqlite(_) => "'2026-01-01 00:00:00'",
        };
        let raw = format!("{{\"note\": \"{}\"}}", "x".repeat(raw_bytes));
        c.batch_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
             INSERT INTO events (dedupe_key, event_type, conversation_key, visitor_key, \
                 occurred_at, received_at, summary, raw) \
             SELECT '{key}-' || i, 'note', '{key}', 'v-{key}', {at}, {at}, '{summary}', '{raw}' FROM n"
        ))
        .expect("bulk insert");
    })
    .await;
}

const LONG_EVENTS: i64 = 100_000;

async fn a_long_conversation_is_read_a_page_at_a_time(db: TestDatabase) {
    let app = spawn_app(db);
    let now = chrono::Utc::now();
    let items: Vec<Value> = (0..3)
        .map(|i| note("long", "v-long", now, &format!("live {i}")))
        .collect();
    assert_eq!(app.post(envelope(&items)).await.status(), 200);
    // 100,000 more events in it, about 400 bytes of raw JSON each, written
    // straight to the database (a few seconds instead of minutes of posts).
    bulk_notes(&app, LONG_EVENTS, "long", 400, "a note").await;
    let ((status, first), grown) = anonymous_growth_during(
        app.pid(),
        app.api(Method::GET, "/api/v1/conversations/long", None),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["events"].as_array().map(Vec::len), Some(500));
    assert!(first["notifications"].is_array());
    assert!(
        grown < 20 * 1024 * 1024,
        "one request for a {LONG_EVENTS}-event conversation grew anonymous memory by {grown} bytes"
    );
    // The pages follow each other, oldest first, without gaps or repeats.
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (status, second) = app
        .api(
            Method::GET,
            &format!("/api/v1/conversations/long?limit=100&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{second}");
    let ids = |page: &Value| -> Vec<i64> {
        page["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect()
    };
    let expected: Vec<i64> = app
        .with_db(|c| {
            events::for_conversation(c, "long", None, 600)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect()
        })
        .await;
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    assert_eq!(seen, expected);
    assert_eq!(second["notifications"], json!([]));
    eprintln!(
        "conversation of {LONG_EVENTS} events: anonymous memory grew {grown} bytes for the first page"
    );
    // A page that is not the last says so.
    let (_, tail) = app
        .api(Method::GET, "/api/v1/conversations/long?limit=500", None)
        .await;
    assert!(tail["next_cursor"].is_string());
    let (status, bad) = app
        .api(Method::GET, "/api/v1/conversations/long?cursor=zz", None)
        .await;
    assert_eq!(status, 400, "{bad}");
}

async fn a_short_conversation_is_one_page_as_before(db: TestDatabase) {
    let app = spawn_app(db);
    for (_, body) in fixtures() {
        assert_eq!(app.post(body).await.status(), 200);
    }
    let (status, detail) = app
        .api(
            Method::GET,
            &format!("/api/v1/conversations/{CONVERSATION}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["events"].as_array().map(Vec::len), Some(27));
    assert_eq!(detail["next_cursor"], Value::Null);
    // Small pages walk the same events.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/conversations/{CONVERSATION}?limit=10&cursor={c}"),
            None => format!("/api/v1/conversations/{CONVERSATION}?limit=10"),
        };
        let (status, page) = app.api(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        walked.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(Some(&walked), detail["events"].as_array());
}

/// A listing does not show raw JSON, so it does not read it: 400 events of
/// 100 KB each (40 MB) are listed in one page, and the server's
/// anonymous memory grows by less than 20 MB. (It loaded every item's JSON
/// once.)
async fn an_events_listing_of_large_items_does_not_load_their_json(db: TestDatabase) {
    const EVENTS: usize = 400;
    let app = spawn_app(db);
    bulk_notes(&app, EVENTS as i64, "big", 100_000, "a big note").await;
    // Measured: 82.7 MB when listings read each event whole.
    let ((status, page), grown) = anonymous_growth_during(
        app.pid(),
        app.api(Method::GET, "/api/v1/events?limit=500", None),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(EVENTS));
    assert_eq!(page["items"][0]["summary"], "a big note");
    assert!(
        grown < 20 * 1024 * 1024,
        "listing {EVENTS} events of 100 KB grew anonymous memory by {grown} bytes"
    );
    // One event's own page still has its JSON.
    let id = page["items"][0]["id"].as_i64().expect("id");
    let (status, one) = app
        .api(Method::GET, &format!("/api/v1/events/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["raw"]["note"].as_str().map(str::len), Some(100_000));
    eprintln!("listing {EVENTS} events of 100 KB: anonymous memory grew {grown} bytes");
}

on_both_backends!(
    a_long_conversation_is_read_a_page_at_a_time,
    a_short_conversation_is_one_page_as_before,
    an_events_listing_of_large_items_does_not_load_their_json,
);

/// After bursts of ~900 KB deliveries, 16 at a time, the memory they took
/// goes back to the system (it stayed with the process, 150-250 MB, before
/// the allocator was asked to trim).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_goes_back_after_bursts_of_large_deliveries() {
    let _turn = SUSTAINED_LOAD.lock().await;
    let app = spawn_app_with(
        Some(TestDatabase::sqlite()),
        Options {
            max_body_bytes: Some(4 * 1024 * 1024),
            ..Options::default()
        },
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = anonymous_memory(app.pid());
    let now = chrono::Utc::now();
    let mut peak = idle;
    for round in 0..3 {
        let posts: Vec<_> = (0..16)
            .map(|n| {
                let items: Vec<Value> = (0..1_300)
                    .map(|i| {
                        let text = format!("burst {round} {n} {i} {}", "x".repeat(300));
                        note(&format!("burst-{n}"), "v-burst", now, &text)
                    })
                    .collect();
                let body = envelope(&items);
                let (client, url, token) =
                    (app.client.clone(), app.webhook_url(), app.token.clone());
                tokio::spawn(async move {
                    client
                        .post(url)
                        .bearer_auth(token)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                })
            })
            .collect();
        for post in posts {
            assert_eq!(post.await.unwrap().unwrap(), 200);
        }
        peak = peak.max(anonymous_memory(app.pid()));
    }
    assert_eq!(app.event_count().await, 3 * 16 * 1_300);
    let ended = Instant::now();
    let deadline = ended + Duration::from_secs(15);
    let mut now_taken = anonymous_memory(app.pid());
    while now_taken > idle + 50 * 1024 * 1024 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        now_taken = anonymous_memory(app.pid());
    }
    eprintln!(
        "memory: idle {} MB, peak {} MB, {} MB {:.1} s after the bursts",
        idle >> 20,
        peak >> 20,
        now_taken >> 20,
        ended.elapsed().as_secs_f64()
    );
    assert!(
        now_taken <= idle + 50 * 1024 * 1024,
        "idle {} MB, peak {} MB, still {} MB 15 s after the bursts",
        idle >> 20,
        peak >> 20,
        now_taken >> 20
    );
}
