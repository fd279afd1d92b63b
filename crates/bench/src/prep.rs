//! `prep`: the per-item cost of what a request thread does before the
//! writer (parse, dedupe key, summary, what the event says about its
//! conversation), over the 28 documented fixtures; and the write-ahead log
//! bytes SQLite writes per stored event.

use std::time::Instant;

use chrono::Utc;
use hookline_storage::diesel::connection::SimpleConnection;
use hookline_storage::{Database, PreparedItem};
use hookline_testdb::TestDatabase;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/swiftsell"
);
const ROUNDS: usize = 2_000;

/// The fixtures' bodies, in name order.
pub fn bodies() -> anyhow::Result<Vec<Vec<u8>>> {
    let mut names: Vec<_> = std::fs::read_dir(FIXTURES)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names.into_iter().map(|p| Ok(std::fs::read(p)?)).collect()
}

/// A body's items prepared as the webhook prepares them: the envelope read
/// in one pass, each item typed once from its text.
pub fn prepare_body(body: &[u8], received_at: chrono::DateTime<Utc>) -> Vec<PreparedItem> {
    match hookline_model::read_body(body) {
        Ok(hookline_model::Body::Items(items)) => items
            .into_iter()
            .map(|raw| hookline_model::record::read_item(raw, received_at).into())
            .collect(),
        _ => Vec::new(),
    }
}

/// Microseconds per item (p50 over rounds of all fixtures).
pub fn prep_micros() -> anyhow::Result<f64> {
    let bodies = bodies()?;
    let now = Utc::now();
    let mut per_item = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut items = 0;
        for body in &bodies {
            items += std::hint::black_box(prepare_body(body, now)).len();
        }
        per_item.push(started.elapsed().as_secs_f64() * 1e6 / items.max(1) as f64);
    }
    per_item.sort_by(f64::total_cmp);
    Ok(per_item[per_item.len() / 2])
}

/// Unique single-item bodies from the fixtures, over `conversations`
/// conversations (as the ingest load sends them).
fn unique_items(count: usize) -> anyhow::Result<Vec<PreparedItem>> {
    let bodies = bodies()?;
    let start = Utc::now();
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let body = &bodies[n % bodies.len()];
        let mut value: serde_json::Value = serde_json::from_slice(body)?;
        let at = start + chrono::TimeDelta::microseconds(n as i64);
        value["events"][0]["timestamp"] =
            serde_json::Value::from(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        value["events"][0]["conversation"]["key"] =
            serde_json::Value::from(format!("wal-{:06}", n / bodies.len()));
        out.extend(prepare_body(value.to_string().as_bytes(), Utc::now()));
    }
    Ok(out)
}

/// Bytes appended to the SQLite write-ahead log per stored event, storing
/// `count` unique events in groups of `group` (checkpoints off, so that
/// the log holds every frame written).
pub fn wal_bytes_per_event(count: usize, group: usize) -> anyhow::Result<f64> {
    let test = TestDatabase::sqlite();
    let db = Database::open(&test.url)?;
    db.migrate()?;
    let items = unique_items(count)?;
    let mut conn = db.dedicated_connection()?;
    conn.batch_execute("PRAGMA wal_autocheckpoint = 0; PRAGMA wal_checkpoint(TRUNCATE);")?;
    let before = db.wal_bytes().unwrap_or(0);
    for chunk in items.chunks(group) {
        hookline_storage::ingest::store_group(&mut conn, &[chunk])?;
    }
    let after = db.wal_bytes().unwrap_or(0);
    Ok(after.saturating_sub(before) as f64 / count as f64)
}

pub fn run() -> anyhow::Result<()> {
    println!(
        "prep benchmark: parse + dedupe key + summary + conversation observation, 28 fixtures"
    );
    println!(
        "  prep: {:.1} µs per item (p50 of {ROUNDS} rounds)",
        prep_micros()?
    );
    for group in [1, 32] {
        println!(
            "  SQLite write-ahead log: {:.0} bytes per stored event (groups of {group})",
            wal_bytes_per_event(5_000, group)?
        );
    }
    Ok(())
}
