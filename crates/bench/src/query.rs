//! `query`: history queries over a million stored events: p50/p99 of the
//! first page and of a page 10,000 items deep, over all events, one
//! conversation and one event type, through the real server's API.

use std::time::Instant;

use anyhow::Context;
use hookline_model::Envelope;
use hookline_storage::testing::TestDatabase;
use hookline_storage::{ingest, prepare, Database};
use serde_json::Value;

use crate::server::{Server, ADMIN_TOKEN};

const CONVERSATIONS: usize = 50;
const BATCH: usize = 5_000;
const ROUNDS: usize = 200;
const DEPTH: usize = 10_000;

/// Fills the database with `total` events: the fixtures' items in turn,
/// spread over 50 conversations, one second apart.
fn fill(db: &Database, total: usize) -> anyhow::Result<()> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/swiftsell"
    );
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.retain(|p| p.extension().is_some_and(|e| e == "json"));
    names.sort();
    let mut items = Vec::new();
    for path in names {
        let value: Value = serde_json::from_slice(&std::fs::read(path)?)?;
        items.push(value["events"][0].clone());
    }
    let start = chrono::Utc::now().timestamp() - total as i64;
    let mut conn = db.dedicated_connection()?;
    let started = Instant::now();
    for batch_start in (0..total).step_by(BATCH) {
        let mut prepared = Vec::with_capacity(BATCH);
        for n in batch_start..(batch_start + BATCH).min(total) {
            let mut item = items[n % items.len()].clone();
            item["conversation"]["key"] =
                Value::from(format!("bench-conversation-{}", n % CONVERSATIONS));
            let at = chrono::DateTime::from_timestamp(start + n as i64, 0).unwrap_or_default();
            item["timestamp"] =
                Value::from(at.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string());
            let envelope = Envelope::from_value(serde_json::json!({"events": [item]}))
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            prepared.push(prepare(&envelope.events[0], chrono::Utc::now()));
        }
        ingest::store_group(&mut conn, &[&prepared])?;
        if batch_start % 100_000 == 0 && batch_start > 0 {
            eprintln!(
                "  {batch_start} events stored ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = client.get(url).bearer_auth(ADMIN_TOKEN).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "{url}: {status} {body}");
    Ok(body)
}

/// The cursor `depth` items into the listing.
async fn cursor_at(client: &reqwest::Client, base: &str, depth: usize) -> anyhow::Result<String> {
    let mut cursor: Option<String> = None;
    for _ in 0..depth / 500 {
        let url = match &cursor {
            Some(c) => format!("{base}&limit=500&cursor={c}"),
            None => format!("{base}&limit=500"),
        };
        let page = get(client, &url).await?;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    cursor.context("the listing is not 10,000 items deep")
}

async fn time(client: &reqwest::Client, url: &str) -> anyhow::Result<(f64, f64)> {
    let mut timings = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let page = get(client, url).await?;
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            page["items"].as_array().is_some_and(|i| i.len() == 50),
            "{url}: short page"
        );
    }
    timings.sort_by(f64::total_cmp);
    let at = |p: f64| timings[((timings.len() - 1) as f64 * p) as usize];
    Ok((at(0.5), at(0.99)))
}

pub async fn run(
    binary: &std::path::PathBuf,
    name: &str,
    test_db: &TestDatabase,
    total: usize,
) -> anyhow::Result<()> {
    let db = Database::open(&test_db.url)?;
    db.migrate()?;
    let started = Instant::now();
    let url = test_db.url.clone();
    let fill_db = db.clone();
    tokio::task::spawn_blocking(move || fill(&fill_db, total)).await??;
    println!(
        "\n{name}: {total} events stored in {:.0} s (directly, in batches of {BATCH})",
        started.elapsed().as_secs_f64()
    );
    let server = Server::start(binary, &url)?;
    let base = format!("http://{}/api/v1/events?", server.address);
    let client = reqwest::Client::new();
    let listings = [
        ("all events", base.clone()),
        (
            "one conversation",
            format!("{base}conversation=bench-conversation-7"),
        ),
        ("one type (status)", format!("{base}type=status")),
    ];
    for (label, listing) in listings {
        let first = time(&client, &format!("{listing}&limit=50")).await?;
        let cursor = cursor_at(&client, &listing, DEPTH).await?;
        let deep = time(&client, &format!("{listing}&limit=50&cursor={cursor}")).await?;
        println!(
            "  {label:<20} first page p50 {:>6.2} ms  p99 {:>6.2} ms   10,000 deep p50 {:>6.2} ms  p99 {:>6.2} ms",
            first.0, first.1, deep.0, deep.1
        );
    }
    Ok(())
}
