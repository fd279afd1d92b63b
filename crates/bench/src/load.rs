//! The load: the handshake baseline, then unique single-event deliveries.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cpu;
use crate::http::Connection;
use crate::server::TOKEN;

const PATH: &str = "/webhooks/swiftsell";
/// The conversation key the fixtures share (all but one).
const FIXTURE_CONVERSATION: &str = "42bb83f00d8240e5bb41290a12eb44401693552452";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/swiftsell"
);

/// One run's figures.
pub struct Run {
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    latencies_us: Vec<u64>,
    /// The server's CPU time per request, by thread role.
    cpu: Option<String>,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[index.min(self.latencies_us.len() - 1)] as f64 / 1000.0
    }

    fn line(&self, label: &str) -> String {
        let mut line = format!(
            "  {label:<34} {:>9.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} ok, {} failed)",
            self.per_second(),
            self.percentile(0.50),
            self.percentile(0.99),
            self.ok,
            self.failed
        );
        if let Some(cpu) = &self.cpu {
            line.push_str("\n  ");
            line.push_str(&" ".repeat(35));
            line.push_str(cpu);
        }
        line
    }
}

pub struct Report {
    pub handshake: Run,
    pub ingest: Run,
}

impl Report {
    pub fn print(&self) {
        println!("{}", self.handshake.line("handshake (no storage) requests"));
        println!("{}", self.ingest.line("single-event deliveries stored"));
        println!(
            "  ratio stored/baseline: {:.2} (target >= 0.50)",
            self.ingest.per_second() / self.handshake.per_second().max(1.0)
        );
    }
}

/// The fixtures' items as envelope templates with a placeholder timestamp,
/// so that every request carries a new event.
fn templates() -> anyhow::Result<Vec<(String, String)>> {
    let mut names: Vec<_> = std::fs::read_dir(FIXTURES)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let mut templates = Vec::new();
    for path in names {
        let mut value: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        value["events"][0]["timestamp"] = Value::from("@@TS@@");
        let text = value.to_string();
        if let Some((before, after)) = text.split_once("\"@@TS@@\"") {
            templates.push((before.to_owned(), after.to_owned()));
        }
    }
    Ok(templates)
}

pub async fn compare(
    address: SocketAddr,
    server_pid: u32,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    // Warm up connections and caches.
    run(address, clients, Duration::from_secs(1), None).await?;
    let handshake = measured(server_pid, run(address, clients, duration, None)).await?;
    let templates = Rc::new(templates()?);
    let ingest = measured(server_pid, run(address, clients, duration, Some(templates))).await?;
    Ok(Report { handshake, ingest })
}

/// A run, with the server's CPU time per request it caused.
async fn measured(
    server_pid: u32,
    run: impl std::future::Future<Output = anyhow::Result<Run>>,
) -> anyhow::Result<Run> {
    let before = cpu::Sample::take(server_pid);
    let mut run = run.await?;
    let used = before.until(&cpu::Sample::take(server_pid));
    run.cpu = cpu::describe(&used, run.ok + run.failed);
    Ok(run)
}

async fn run(
    address: SocketAddr,
    clients: usize,
    duration: Duration,
    templates: Option<Rc<Vec<(String, String)>>>,
) -> anyhow::Result<Run> {
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    let deadline = start + duration;
    let results = local
        .run_until(async {
            let mut tasks = Vec::new();
            let clock = Rc::new(Cell::new(chrono::Utc::now().timestamp_micros()));
            for client in 0..clients {
                let templates = templates.clone();
                let clock = Rc::clone(&clock);
                tasks.push(tokio::task::spawn_local(async move {
                    client_loop(address, client, deadline, templates, clock).await
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                all.push(task.await);
            }
            all
        })
        .await;
    let seconds = start.elapsed().as_secs_f64();
    let mut run = Run {
        ok: 0,
        failed: 0,
        seconds,
        latencies_us: Vec::new(),
        cpu: None,
    };
    for result in results {
        let (ok, failed, latencies) = result??;
        run.ok += ok;
        run.failed += failed;
        run.latencies_us.extend(latencies);
    }
    run.latencies_us.sort_unstable();
    Ok(run)
}

async fn client_loop(
    address: SocketAddr,
    client: usize,
    deadline: Instant,
    templates: Option<Rc<Vec<(String, String)>>>,
    clock: Rc<Cell<i64>>,
) -> anyhow::Result<(u64, u64, Vec<u64>)> {
    let mut connection = Connection::open(address).await?;
    let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        let body = match &templates {
            None => Vec::new(),
            Some(templates) => {
                // Each client walks the fixtures in order, one conversation
                // per pass: a conversation gets all 28 kinds of event.
                let (before, after) = &templates[n as usize % templates.len()];
                let conversation =
                    format!("bench-{client:03}-{:034}", n as usize / templates.len());
                // A unique timestamp per request (so a unique event), rising
                // like a live platform's: now plus a shared microsecond count.
                let micros = clock.get();
                clock.set(micros + 1);
                let at = chrono::DateTime::from_timestamp_micros(micros)
                    .unwrap_or_default()
                    .naive_utc()
                    .format("%Y-%m-%d %H:%M:%S%.6f");
                format!("{before}\"{at}\"{after}")
                    .replace(FIXTURE_CONVERSATION, &conversation)
                    .into_bytes()
            }
        };
        n += 1;
        let started = Instant::now();
        match connection.post(PATH, TOKEN, &body).await {
            Ok(200) => {
                ok += 1;
                latencies.push(started.elapsed().as_micros() as u64);
            }
            Ok(_) => failed += 1,
            Err(_) => {
                failed += 1;
                connection = Connection::open(address).await?;
            }
        }
    }
    Ok((ok, failed, latencies))
}
