//! Storage under sustained load: the SQLite write-ahead log stays bounded,
//! retention, purge and erase succeed while webhooks keep arriving
//! (without deleting a conversation that is still active). Memory per
//! request and after bursts: `memory.rs`.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;
use hookline_storage::{conversations, events};
use hookline_testdb::TestDatabase;

/// A note in `conversation` by `visitor` at `at`; `text` makes it unique.
pub(crate) fn note(
    conversation: &str,
    visitor: &str,
    at: chrono::DateTime<chrono::Utc>,
    text: &str,
) -> Value {
    let mut item = fixture_item("28-note.json");
    item["conversation"]["key"] = json!(conversation);
    item["visitor"]["key"] = json!(visitor);
    item["timestamp"] = json!(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
    item["event"]["payload"]["note"] = json!(text);
    item
}

/// `hookline ARGS` as a one-shot command, blocking.
fn run_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(args)
        .env("HOOKLINE_LOG", "error")
        .output()
        .expect("run hookline")
}

/// The sustained-load tests take turns: each measures hookline under a load
/// it makes itself (bursts, a stream of deliveries, maintenance beside
/// them), and two at once on 2 cores made each other fail ("database is
/// locked" after 10 s, memory not yet back 15 s after the bursts).
pub(crate) static SUSTAINED_LOAD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the background load did.
#[derive(Default)]
struct LoadCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    events: AtomicU64,
}

/// Posts envelopes of `items` new notes from `clients` concurrent clients
/// until `stop` is set; every event is current and unique.
/// `clients` posting batches of `items` notes each, back to back, until
/// `stop`; each note's text padded to at least `text_bytes`.
fn start_load(
    app: &TestApp,
    clients: usize,
    items: usize,
    text_bytes: usize,
    stop: Arc<AtomicBool>,
) -> (Arc<LoadCounts>, Vec<tokio::task::JoinHandle<()>>) {
    let counts = Arc::new(LoadCounts::default());
    let tasks = (0..clients)
        .map(|client| {
            let (url, token, http) = (app.webhook_url(), app.token.clone(), app.client.clone());
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<Value> = (0..items)
                        .map(|i| {
                            n += 1;
                            note(
                                &format!("load-{client}-{}", n % 50),
                                &format!("load-visitor-{client}"),
                                chrono::Utc::now(),
                                &format!("load {client} {n} {i} {:x<text_bytes$}", ""),
                            )
                        })
                        .collect();
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .body(envelope(&batch))
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == 200 => {
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                            counts.events.fetch_add(items as u64, Ordering::Relaxed);
                        }
                        _ => {
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    (counts, tasks)
}

async fn stop_load(stop: &AtomicBool, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }
}

fn wal_bytes(app: &TestApp) -> u64 {
    let path = app.db_url.trim_start_matches("sqlite://");
    std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len())
}

async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Not smaller: a reset that a reader holds up for about a second lets the
/// log grow by 20 MB or so at this load before it catches up (seen once in
/// a run of 5 with a 4 MB bound); 16 MB, reset at a third, leaves room for
/// that. The README's default is 64.
const WAL_LIMIT_MB: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_wal_stays_under_its_bound_during_sustained_ingest() {
    let _turn = SUSTAINED_LOAD.lock().await;
    let app = spawn_app_with(
        Some(TestDatabase::sqlite()),
        Options {
            extra_args: vec!["--sqlite-wal-limit-mb".into(), WAL_LIMIT_MB.to_string()],
            ..Options::default()
        },
    );
    let limit = WAL_LIMIT_MB * 1024 * 1024;
    let db_path = app.db_url.trim_start_matches("sqlite://").to_owned();
    let db_bytes = || std::fs::metadata(&db_path).map_or(0, |m| m.len());
    let stop = Arc::new(AtomicBool::new(false));
    // Notes of a kilobyte, so that the database grows fast enough on a busy
    // machine too (with short ones, 21,600 events in 40 s were not enough).
    let (counts, tasks) = start_load(&app, 4, 20, 1_000, Arc::clone(&stop));
    // Load until the database has grown by one and a half times the bound:
    // each event writes several times its share of the database file to
    // the log, so without checkpoints that reset it the log alone would
    // pass the bound many times over.
    let started = Instant::now();
    let mut largest = 0;
    while db_bytes() < 3 * limit / 2 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "too slow a load to test the bound: {} events",
            counts.events.load(Ordering::Relaxed)
        );
        largest = largest.max(wal_bytes(&app));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_load(&stop, tasks).await;
    let events = counts.events.load(Ordering::Relaxed);
    let db_file = db_bytes();
    assert_eq!(counts.failed.load(Ordering::Relaxed), 0);
    assert!(
        largest <= limit,
        "the WAL reached {largest} bytes under load, over its bound of {limit}"
    );
    assert_eq!(
        metric(&app, "hookline_sqlite_wal_limit_bytes").await,
        Some(limit as f64)
    );
    let shown = metric(&app, "hookline_sqlite_wal_bytes")
        .await
        .expect("the WAL size on /metrics");
    assert!(shown <= limit as f64, "{shown}");
    eprintln!(
        "WAL bound {limit}: largest {largest} bytes over {events} events; database {db_file} bytes"
    );
}

/// Old data to delete: `n` conversations, each with one event two days old,
/// visitor `old-visitor-{i % 10}`.
async fn seed_old(app: &TestApp, n: usize) {
    let two_days_ago = chrono::Utc::now() - chrono::Duration::days(2);
    let items: Vec<Value> = (0..n)
        .map(|i| {
            note(
                &format!("old-{i}"),
                &format!("old-visitor-{}", i % 10),
                two_days_ago,
                &format!("old {i}"),
            )
        })
        .collect();
    for chunk in items.chunks(200) {
        assert_eq!(app.post(envelope(chunk)).await.status(), 200);
    }
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn maintenance_succeeds_while_webhooks_arrive(db: TestDatabase) {
    let _turn = SUSTAINED_LOAD.lock().await;
    let app = spawn_app_with(
        Some(db),
        Options {
            extra_args: ["--retention-days", "1", "--retention-interval-seconds", "1"]
                .map(String::from)
                .to_vec(),
            ..Options::default()
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    // Eight clients of twenty items: with four of five, maintenance still
    // found gaps between the writer's groups often enough to pass, and failed
    // ("database is locked", 503 from erase) on a busy machine.
    let (counts, tasks) = start_load(&app, 8, 20, 0, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Old data arrives during the load too; the retention task (every
    // second), `purge` and `erase` all run while it goes on.
    seed_old(&app, 1_000).await;
    let before = rfc3339(chrono::Utc::now() - chrono::Duration::hours(1));
    let url = app.db_url.clone();
    let cli = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        for i in 0..3 {
            let visitor = format!("old-visitor-{i}");
            for args in [
                vec!["purge", "--before", &before, "--database-url", &url],
                vec!["erase", "--visitor", &visitor, "--database-url", &url],
            ] {
                let output = run_cli(&args);
                if !output.status.success() {
                    failures.push(format!(
                        "{} ({}): {}{}",
                        args[0],
                        output.status,
                        String::from_utf8_lossy(&output.stderr),
                        String::from_utf8_lossy(&output.stdout)
                    ));
                }
            }
        }
        failures
    });
    let mut api_statuses = Vec::new();
    for i in 3..6 {
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/erase",
                Some(json!({"visitor": format!("old-visitor-{i}")})),
            )
            .await;
        api_statuses.push((status, body));
    }
    let cli_failures = cli.await.expect("cli task");
    // The retention task has had its turns during the load too.
    seed_old(&app, 200).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let cutoff = hookline_storage::now() - chrono::Duration::hours(1);
    loop {
        let old = app
            .with_db(move |c| {
                events::all(c)
                    .unwrap()
                    .iter()
                    .filter(|e| e.occurred_at < cutoff)
                    .count()
            })
            .await;
        if old == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retention task left {old} old events while ingest went on"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_load(&stop, tasks).await;
    assert!(cli_failures.is_empty(), "{cli_failures:#?}");
    for (status, body) in &api_statuses {
        assert_eq!(*status, 200, "POST /api/v1/erase under load: {body}");
    }
    let ok = counts.ok.load(Ordering::Relaxed);
    assert_eq!(
        counts.failed.load(Ordering::Relaxed),
        0,
        "ingest failed under maintenance ({ok} answered 200)"
    );
    assert!(ok > 20, "too light a load: {ok} requests");
    eprintln!("maintenance under load: {ok} webhook requests, all 200");
}

async fn purge_under_ingest_deletes_no_live_conversation(db: TestDatabase) {
    let _turn = SUSTAINED_LOAD.lock().await;
    const CONVERSATIONS: usize = 2_000;
    let app = spawn_app(db);
    seed_old(&app, CONVERSATIONS).await;
    // Every conversation gets a current event while a purge of everything
    // older than an hour runs: none of them may go.
    let before = rfc3339(chrono::Utc::now() - chrono::Duration::hours(1));
    let url = app.db_url.clone();
    let purge = tokio::task::spawn_blocking(move || {
        let mut outputs = Vec::new();
        for _ in 0..3 {
            outputs.push(run_cli(&[
                "purge",
                "--before",
                &before,
                "--database-url",
                &url,
            ]));
        }
        outputs
    });
    let mut posts = Vec::new();
    for client in 0..4 {
        let (url, token, http) = (app.webhook_url(), app.token.clone(), app.client.clone());
        posts.push(tokio::spawn(async move {
            for i in (client..CONVERSATIONS).step_by(4 * 5) {
                let batch: Vec<Value> = (i..(i + 5 * 4).min(CONVERSATIONS))
                    .step_by(4)
                    .map(|k| note(&format!("old-{k}"), "now", chrono::Utc::now(), "new"))
                    .collect();
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .body(envelope(&batch))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for post in posts {
        post.await.expect("posting client");
    }
    for output in purge.await.expect("purge task") {
        assert!(
            output.status.success(),
            "purge under ingest failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // One more purge after the last event: nothing live goes either.
    let output = run_cli(&[
        "purge",
        "--before",
        &rfc3339(chrono::Utc::now() - chrono::Duration::hours(1)),
        "--database-url",
        &app.db_url,
    ]);
    assert!(output.status.success());
    let missing = app
        .with_db(|c| {
            (0..CONVERSATIONS)
                .filter(|k| {
                    conversations::get(c, &format!("old-{k}"))
                        .unwrap()
                        .is_none()
                })
                .count()
        })
        .await;
    assert_eq!(missing, 0, "the purge deleted {missing} live conversations");
    assert_eq!(app.event_count().await, CONVERSATIONS as i64);
}

on_both_backends!(
    maintenance_succeeds_while_webhooks_arrive,
    purge_under_ingest_deletes_no_live_conversation,
);
