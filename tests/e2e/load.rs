//! Storage under sustained load: the SQLite write-ahead log stays bounded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;
use hookline_storage::testing::TestDatabase;

/// A note in `conversation` by `visitor` at `at`; `text` makes it unique.
fn note(conversation: &str, visitor: &str, at: chrono::DateTime<chrono::Utc>, text: &str) -> Value {
    let mut item = fixture_item("28-note.json");
    item["conversation"]["key"] = json!(conversation);
    item["visitor"]["key"] = json!(visitor);
    item["timestamp"] = json!(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
    item["event"]["payload"]["note"] = json!(text);
    item
}

/// What the background load did.
#[derive(Default)]
struct LoadCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    events: AtomicU64,
}

/// Posts envelopes of `items` new notes from `clients` concurrent clients
/// until `stop` is set; every event is current and unique.
fn start_load(
    app: &TestApp,
    clients: usize,
    items: usize,
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
                                &format!("load {client} {n} {i}"),
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

const WAL_LIMIT_MB: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_wal_stays_under_its_bound_during_sustained_ingest() {
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
    let (counts, tasks) = start_load(&app, 4, 20, Arc::clone(&stop));
    // Load until the database has grown by three times the bound: each
    // event writes several pages to the log, so without checkpoints that
    // reset it the log alone would pass the bound many times over.
    let started = Instant::now();
    let mut largest = 0;
    while db_bytes() < 3 * limit {
        assert!(
            started.elapsed() < Duration::from_secs(40),
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
