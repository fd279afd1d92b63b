//! `cargo run --release -p hookline-bench -- ingest [--postgres URL]`
//! `cargo run --release -p hookline-bench -- rules`
//! `cargo run --release -p hookline-bench -- prep`
//! `cargo run --release -p hookline-bench -- query [--events N] [--postgres URL]`
//! `cargo run --release -p hookline-bench -- fairness [--seconds N] [--postgres URL]`
//! `cargo run --release -p hookline-bench -- timers [--postgres URL]`
//!
//! Starts the real `hookline` binary (release build) on a fresh database,
//! drives it from concurrent keep-alive connections, and prints, per
//! backend: the handshake baseline (same server, same token check, nothing
//! stored), then single-event deliveries built from the fixtures (each one
//! unique, so each is stored), with throughput, p50/p99 latency and the
//! ratio between the two.

mod cpu;
mod fairness;
mod http;
mod load;
mod prep;
mod query;
mod rules;
mod server;
mod timers;
mod wal;

use std::time::Duration;

use anyhow::{bail, Context};
use hookline_testdb::TestDatabase;

struct Options {
    postgres: Option<String>,
    seconds: u64,
    clients: usize,
    events: usize,
}

fn parse_args() -> anyhow::Result<(String, Options)> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "ingest".to_owned());
    let mut options = Options {
        postgres: std::env::var(hookline_testdb::POSTGRES_ENV).ok(),
        seconds: 10,
        clients: 64,
        events: 1_000_000,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--postgres" => options.postgres = Some(value),
            "--seconds" => options.seconds = value.parse().context("--seconds")?,
            "--clients" => options.clients = value.parse().context("--clients")?,
            "--events" => options.events = value.parse().context("--events")?,
            other => bail!("unknown option {other}; use --postgres URL, --seconds N, --clients N"),
        }
    }
    Ok((command, options))
}

fn main() -> anyhow::Result<()> {
    let (command, options) = parse_args()?;
    match command.as_str() {
        "ingest" => {}
        "rules" => return rules::run(),
        "prep" => return prep::run(),
        "timers" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            println!(
                "hookline timers benchmark: arming in the ingest transaction, and fire lateness"
            );
            let dbs = std::cell::RefCell::new(Vec::new());
            runtime.block_on(timers::run("SQLite", || {
                let db = TestDatabase::sqlite();
                let url = db.url.clone();
                dbs.borrow_mut().push(db);
                url
            }))?;
            match &options.postgres {
                Some(server) => runtime.block_on(timers::run("PostgreSQL", || {
                    let db = TestDatabase::postgres_at(server);
                    let url = db.url.clone();
                    dbs.borrow_mut().push(db);
                    url
                }))?,
                None => println!(
                    "(PostgreSQL skipped: pass --postgres URL or set HOOKLINE_TEST_POSTGRES_URL)"
                ),
            }
            return Ok(());
        }
        "query" => {
            let binary = server::build_release_binary()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            println!(
                "hookline query benchmark: {} stored events over 50 conversations, pages of 50",
                options.events
            );
            runtime.block_on(query::run(
                &binary,
                "SQLite",
                &TestDatabase::sqlite(),
                options.events,
            ))?;
            match &options.postgres {
                Some(url) => runtime.block_on(query::run(
                    &binary,
                    "PostgreSQL",
                    &TestDatabase::postgres_at(url),
                    options.events,
                ))?,
                None => println!(
                    "(PostgreSQL skipped: pass --postgres URL or set HOOKLINE_TEST_POSTGRES_URL)"
                ),
            }
            return Ok(());
        }
        "fairness" => {
            let binary = server::build_release_binary()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            println!(
                "hookline fairness benchmark: one 1-event delivery every 20 ms, {} s alone, then {} s beside back-to-back 20,000-item deliveries",
                options.seconds, options.seconds
            );
            let sqlite = TestDatabase::sqlite();
            runtime.block_on(fairness::run(
                &binary,
                "SQLite",
                &sqlite.url,
                options.seconds,
            ))?;
            match &options.postgres {
                Some(url) => {
                    let pg = TestDatabase::postgres_at(url);
                    runtime.block_on(fairness::run(
                        &binary,
                        "PostgreSQL",
                        &pg.url,
                        options.seconds,
                    ))?;
                }
                None => println!(
                    "(PostgreSQL skipped: pass --postgres URL or set HOOKLINE_TEST_POSTGRES_URL)"
                ),
            }
            return Ok(());
        }
        other => {
            bail!("unknown benchmark {other:?}; available: ingest, prep, rules, query, fairness, timers")
        }
    }
    let binary = server::build_release_binary()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "hookline ingest benchmark: {} concurrent keep-alive connections, {} s per run, {} cores",
        options.clients,
        options.seconds,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    prep::run()?;
    let mut databases = vec![("SQLite", TestDatabase::sqlite())];
    match &options.postgres {
        Some(url) => databases.push(("PostgreSQL", TestDatabase::postgres_at(url))),
        None => {
            println!("(PostgreSQL skipped: pass --postgres URL or set HOOKLINE_TEST_POSTGRES_URL)")
        }
    }
    for (name, db) in databases {
        let server = server::Server::start(&binary, &db.url)?;
        let duration = Duration::from_secs(options.seconds);
        let wal = wal::Sampler::start(&db.url);
        let report = runtime.block_on(load::compare(
            server.address,
            server.pid(),
            options.clients,
            duration,
        ))?;
        let wal = wal.map(wal::Sampler::finish);
        let stored = server.stored_events(&db.url)?;
        drop(server);
        println!("\n{name}");
        report.print();
        if let Some(wal) = wal {
            wal.print();
        }
        println!(
            "  events in the database after the run: {stored} (acknowledged: {})",
            report.ingest.ok
        );
        if (stored as u64) < report.ingest.ok {
            bail!("{name}: fewer events stored than acknowledged");
        }
    }
    Ok(())
}
