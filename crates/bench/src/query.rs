//! `query`: history queries over a million stored events: p50/p99 of the
//! first page and of a page 10,000 items deep, over all events, one
//! conversation and one event type, and of word searches (`q=`), through the
//! real server's API; how long the search index took to catch up; and the
//! latency of 1-event deliveries alone and while the heaviest admin reads
//! run back to back. Also the overview's figures (`/api/v1/overview`, the
//! same as the page `/ui/`) over the last day and the last week.

use std::time::Instant;

use anyhow::Context;
use hookline_model::Envelope;
use hookline_storage::{ingest, prepare, Database};
use hookline_testdb::TestDatabase;
use serde_json::Value;

use crate::server::{Server, ADMIN_TOKEN};

const CONVERSATIONS: usize = 50;
const BATCH: usize = 5_000;
const ROUNDS: usize = 200;
const DEPTH: usize = 10_000;
const OVERVIEW_ROUNDS: usize = 50;

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
            // One event in 100,000 carries a rare word (`needle`).
            item["conversation"]["key"] = if n % 100_000 == 50_000 {
                Value::from(format!("bench-needle-{n}"))
            } else {
                Value::from(format!("bench-conversation-{}", n % CONVERSATIONS))
            };
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

/// p50 and p99 of `rounds` requests for `url`, each checked by `check`.
async fn time_checked(
    client: &reqwest::Client,
    url: &str,
    rounds: usize,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<(f64, f64)> {
    let mut timings = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let page = get(client, url).await?;
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(check(&page), "{url}: unexpected answer");
    }
    timings.sort_by(f64::total_cmp);
    let at = |p: f64| timings[((timings.len() - 1) as f64 * p) as usize];
    Ok((at(0.5), at(0.99)))
}

/// A metric's value from `/metrics`.
async fn metric(
    client: &reqwest::Client,
    address: std::net::SocketAddr,
    name: &str,
) -> Option<f64> {
    let text = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Which of the heaviest admin reads a reader sends.
#[derive(Clone, Copy, PartialEq)]
enum Reads {
    /// Word searches and listings of 500 items.
    Searches,
    /// A preview of a `*` rule over 10,000 events per type.
    Preview,
    /// Both, in turn.
    All,
}

/// The heaviest reads an admin can ask for (those of `kind`), back to
/// back until `stop`; how many were done.
async fn heavy_reads(
    client: reqwest::Client,
    base: String,
    kind: Reads,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<usize> {
    let urls = [
        format!("{base}/api/v1/events?q=zzabsent&limit=500"),
        format!("{base}/api/v1/events?q=hiiiii&limit=500"),
        format!("{base}/api/v1/events?q=needle&limit=500"),
        format!("{base}/api/v1/conversations?q=zzabsent&limit=500"),
        format!("{base}/api/v1/events?limit=500&type=status&since=2000-01-01T00:00:00Z"),
    ];
    let mut done = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if kind != Reads::Preview {
            for url in &urls {
                // The body is read, not parsed: parsing it here would hold
                // up the runtime the deliveries' latency is measured on.
                let response = client.get(url).bearer_auth(ADMIN_TOKEN).send().await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "{url}: {}",
                    response.status()
                );
                response.bytes().await?;
                done += 1;
            }
        }
        if kind == Reads::Searches {
            continue;
        }
        let preview = client
            .post(format!("{base}/api/v1/rules/preview"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"rule": {"name": "bench preview", "on": ["*"], "to": ["ops@example.com"], "template": "generic"}, "limit": 10000}))
            .send()
            .await?;
        anyhow::ensure!(
            preview.status().is_success(),
            "preview: {}",
            preview.status()
        );
        preview.bytes().await?;
        done += 1;
    }
    Ok(done)
}

/// Latencies of 1-event deliveries for 10 s while two clients send the
/// reads of `kind`, and how many reads they did.
async fn deliveries_beside(
    client: &reqwest::Client,
    address: std::net::SocketAddr,
    kind: Reads,
    first: u64,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let admin = format!("http://{address}");
    let readers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(heavy_reads(
                client.clone(),
                admin.clone(),
                kind,
                std::sync::Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let latencies = deliveries_apart(address, 10, first).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for reader in readers {
        reads += reader.await??;
    }
    Ok((latencies?, reads))
}

/// 1-event deliveries, one every 20 ms for `seconds`; their latencies (ms).
async fn deliveries(
    address: std::net::SocketAddr,
    seconds: u64,
    first: u64,
) -> anyhow::Result<Vec<f64>> {
    let mut connection = crate::http::Connection::open(address).await?;
    let mut latencies = Vec::new();
    let end = Instant::now() + std::time::Duration::from_secs(seconds);
    let mut n = first;
    while Instant::now() < end {
        n += 1;
        let body = serde_json::json!({"events": [{
            "event": {"type": "note", "payload": {
                "note_by": {"email": "agent@example.com", "id": "1", "type": "user"},
                "note": format!("bench note {n}")}},
            "conversation": {"key": format!("bench-live-{}", n % 100), "id": 1},
            "account": {"key": "acc", "id": 1, "bot": {"id": 8861}},
            "visitor": {"key": "bench-visitor", "id": 1},
            "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        }]})
        .to_string()
        .into_bytes();
        let started = Instant::now();
        let status = connection
            .post("/webhooks/swiftsell", crate::server::TOKEN, &body)
            .await?;
        anyhow::ensure!(status == 200, "a delivery answered {status}");
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(std::time::Duration::from_millis(20).saturating_sub(started.elapsed()))
            .await;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// [`deliveries`] on a thread and runtime of their own, so that the readers'
/// tasks in this process do not delay them.
async fn deliveries_apart(
    address: std::net::SocketAddr,
    seconds: u64,
    first: u64,
) -> anyhow::Result<Vec<f64>> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let measured = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(deliveries(address, seconds, first)));
        let _ = answer.send(measured);
    });
    answered.await?
}

fn p(latencies: &[f64], q: f64) -> f64 {
    latencies
        .get(((latencies.len().max(1) - 1) as f64 * q) as usize)
        .copied()
        .unwrap_or(0.0)
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
    // A live PostgreSQL table is vacuumed by autovacuum as rows come in,
    // which marks its pages all-visible (counts then read the index only);
    // right after a bulk load none is yet. Measure the live state.
    if db.backend() == hookline_storage::Backend::Postgres {
        use hookline_storage::diesel::connection::SimpleConnection;
        let vacuumed = Instant::now();
        db.dedicated_connection()?
            .batch_execute("VACUUM (ANALYZE) events")?;
        println!(
            "  VACUUM (ANALYZE) events, as autovacuum does on a live table: {:.0} s",
            vacuumed.elapsed().as_secs_f64()
        );
    }
    let server = Server::start(binary, &url)?;
    let server_started = Instant::now();
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

    // Word search: wait for the index to catch up (SQLite fills it in the
    // writer's idle moments; PostgreSQL on insert).
    loop {
        let waiting = metric(&client, server.address, "hookline_search_unindexed_events").await;
        if waiting == Some(0.0) {
            break;
        }
        anyhow::ensure!(
            server_started.elapsed().as_secs() < 3_600,
            "the search index did not catch up in an hour ({waiting:?} left)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let caught_up = server_started.elapsed().as_secs_f64();
    println!(
        "  search index caught up {caught_up:.1} s after the server started, page timings above included (SQLite indexes all {total} events meanwhile)"
    );
    let needles = total / 100_000;
    let searches: [(&str, String, usize); 5] = [
        ("a common word", format!("{base}q=hiiiii&limit=50"), 50),
        ("a common prefix", format!("{base}q=hiii*&limit=50"), 50),
        (
            "a rare word",
            format!("{base}q=needle&limit=50"),
            needles.min(50),
        ),
        ("an absent word", format!("{base}q=zzabsent&limit=50"), 0),
        ("two words", format!("{base}q=hiiiii%20needle&limit=50"), 0),
    ];
    for (label, url, expected) in searches {
        let (p50, p99) = time_checked(&client, &url, ROUNDS, |page| {
            page["items"].as_array().map(Vec::len) == Some(expected)
        })
        .await?;
        println!("  q= {label:<17} first page p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  (target p99 < 50 ms)");
    }

    // The overview: a day's and a week's figures; both include the reply
    // times over the week's handovers (one a 28 events here).
    for window in ["24h", "7d"] {
        let url = format!("http://{}/api/v1/overview?window={window}", server.address);
        let overview = get(&client, &url).await?;
        let (p50, p99) = time_checked(&client, &url, OVERVIEW_ROUNDS, |o| {
            o["handovers"].as_i64().is_some_and(|n| n > 0)
                && o["replies"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await?;
        let handovers: i64 = overview["replies"]
            .as_array()
            .map(|r| r.iter().filter_map(|a| a["handovers"].as_i64()).sum())
            .unwrap_or(0);
        println!(
            "  overview {window:<3} (/api/v1/overview) p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  ({} events in the window, {handovers} handovers in the reply measure)",
            overview["events_total"]
        );
    }

    // Ingest beside the heaviest reads: all of them, then each kind alone,
    // to tell which one costs ingest what.
    let alone = deliveries_apart(server.address, 10, 0).await?;
    println!(
        "  1-event deliveries alone p50 {:.1} ms p99 {:.1} ms; beside 2 clients of heavy admin reads (target p99 within 2x):",
        p(&alone, 0.5),
        p(&alone, 0.99),
    );
    let kinds = [
        ("searches and listings of 500, and a * preview", Reads::All),
        ("searches and listings of 500 only", Reads::Searches),
        (
            "a * preview over 10,000 events per type only",
            Reads::Preview,
        ),
    ];
    for (round, (label, kind)) in kinds.into_iter().enumerate() {
        let (beside, reads) = deliveries_beside(
            &client,
            server.address,
            kind,
            1_000_000 * (round as u64 + 1),
        )
        .await?;
        println!(
            "    {label}: p50 {:.1} ms p99 {:.1} ms max {:.1} ms ({reads} reads in 10 s)",
            p(&beside, 0.5),
            p(&beside, 0.99),
            p(&beside, 1.0),
        );
    }
    Ok(())
}
