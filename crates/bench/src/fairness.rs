//! `fairness`: the latency of 1-event deliveries while 20,000-item
//! deliveries stream in, against the same deliveries alone. Big deliveries
//! are committed 500 items at a time with other deliveries in between; the
//! target is a 1-event p99 under 100 ms.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::Connection;
use crate::server::{Server, TOKEN};

const PATH: &str = "/webhooks/swiftsell";
/// Items per big delivery.
const BIG: usize = 20_000;
/// One small delivery every this long.
const SMALL_EVERY: Duration = Duration::from_millis(20);

fn note(conversation: &str, n: u64) -> Value {
    json!({
        "event": {"type": "note", "payload": {
            "note_by": {"email": "agent@example.com", "id": "1", "type": "user"},
            "note": format!("note {n}")}},
        "conversation": {"key": conversation, "id": 1},
        "account": {"key": "acc", "id": 1, "bot": {"id": 8861}},
        "visitor": {"key": format!("visitor-{}", n % 1000), "id": 1},
        "timestamp": format!("2023-09-01 10:00:00.{:06}", n % 1_000_000),
    })
}

fn body(items: Vec<Value>) -> Vec<u8> {
    json!({ "events": items }).to_string().into_bytes()
}

/// p50, p99, max of `latencies` in ms.
fn percentiles(latencies: &mut [f64]) -> (f64, f64, f64) {
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (at(0.5), at(0.99), latencies.last().copied().unwrap_or(0.0))
}

/// Sends one small delivery every [`SMALL_EVERY`] until `stop`; their
/// latencies in ms.
async fn small_deliveries(
    server: std::net::SocketAddr,
    seconds: u64,
    seq: Arc<AtomicU64>,
) -> anyhow::Result<Vec<f64>> {
    let mut connection = Connection::open(server).await?;
    let mut latencies = Vec::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let payload = body(vec![note(&format!("small-{}", n % 100), n)]);
        let started = Instant::now();
        let status = connection.post(PATH, TOKEN, &payload).await?;
        anyhow::ensure!(status == 200, "a small delivery answered {status}");
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(SMALL_EVERY.saturating_sub(started.elapsed())).await;
    }
    Ok(latencies)
}

pub async fn run(
    binary: &PathBuf,
    name: &str,
    database_url: &str,
    seconds: u64,
) -> anyhow::Result<()> {
    let server = Server::start_with(binary, database_url, &["--max-body-bytes", "67108864"])?;
    let address = server.address;
    let seq = Arc::new(AtomicU64::new(0));

    let mut alone = small_deliveries(address, seconds, Arc::clone(&seq)).await?;

    let streaming = Arc::new(AtomicBool::new(true));
    let big_items = Arc::new(AtomicU64::new(0));
    let big = {
        let (streaming, big_items, seq) = (
            Arc::clone(&streaming),
            Arc::clone(&big_items),
            Arc::clone(&seq),
        );
        tokio::spawn(async move {
            let mut connection = Connection::open(address).await?;
            let mut latencies = Vec::new();
            while streaming.load(Ordering::Relaxed) {
                let first = seq.fetch_add(BIG as u64, Ordering::Relaxed);
                let payload = body(
                    (0..BIG as u64)
                        .map(|i| note(&format!("big-{}", i % 500), first + i))
                        .collect(),
                );
                let started = Instant::now();
                let status = connection.post(PATH, TOKEN, &payload).await?;
                anyhow::ensure!(status == 200, "a big delivery answered {status}");
                latencies.push(started.elapsed().as_secs_f64());
                big_items.fetch_add(BIG as u64, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(latencies)
        })
    };
    // Let the first big delivery arrive before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut beside = small_deliveries(address, seconds, Arc::clone(&seq)).await?;
    streaming.store(false, Ordering::Relaxed);
    let big_latencies = big.await??;

    let (a50, a99, amax) = percentiles(&mut alone);
    let (b50, b99, bmax) = percentiles(&mut beside);
    println!("\n{name}");
    println!(
        "  1-event deliveries alone:        {} sent, p50 {a50:.1} ms, p99 {a99:.1} ms, max {amax:.1} ms",
        alone.len()
    );
    println!(
        "  beside {BIG}-item deliveries: {} sent, p50 {b50:.1} ms, p99 {b99:.1} ms, max {bmax:.1} ms (target: p99 < 100 ms)",
        beside.len()
    );
    let mean = big_latencies.iter().sum::<f64>() / big_latencies.len().max(1) as f64;
    println!(
        "  {BIG}-item deliveries: {} committed, {:.1} s each on average, {} items stored meanwhile",
        big_latencies.len(),
        mean,
        big_items.load(Ordering::Relaxed)
    );
    Ok(())
}
