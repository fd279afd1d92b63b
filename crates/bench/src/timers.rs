//! `timers`: how fast the ingest path arms timers, and how late due timers
//! fire. In-process, on a fresh database per backend: the real writer and
//! ingest hook (rules, timers) and the real timer worker.
//!
//! 1. Arming: deliveries of 100 visitor messages, each in a conversation of
//!    its own, stored back to back by the group-commit writer, with a timer
//!    rule of two steps (so two timer rows per message), against the same
//!    deliveries with no rule: timers armed per second and what arming
//!    costs ingest.
//! 2. Firing: 1,000 timers due within the same second, the worker polling
//!    as configured by default (every second): for each, the time from its
//!    due time to the commit that fired it (database clock).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hookline_notifier::{
    NotifierHook, RecipientPolicy, RuleDef, Rules, Templates, TimerSettings, TimerWorker,
};
use hookline_storage::{prepare_value, timers, Backend, Database, Ingestor};
use serde_json::{json, Value};
use tokio::sync::Notify;

const BATCH: usize = 100;

fn message(conversation: usize, at: &str) -> Value {
    json!({
        "event": {"type": "message", "payload": {
            "message_by": {"email": null, "id": null, "type": "visitor"},
            "message": {"type": "text", "text": "anyone there?"}}},
        "conversation": {"key": format!("bench-{conversation:08}"), "id": conversation},
        "account": {"key": "bench", "id": 1, "bot": {"id": 1}},
        "visitor": {"key": format!("v-{conversation}"), "id": conversation},
        "timestamp": at,
    })
}

fn rule(after: &str) -> anyhow::Result<RuleDef> {
    Ok(serde_json::from_value(json!({
        "name": "bench-waiting",
        "to": ["lead@example.com"],
        "template": "waiting",
        "timer": {
            "after": after,
            "start": {"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "visitor"}]},
            "stop": [{"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "user"}]}],
            "escalate": [{"at": "2h", "to": ["head@example.com"]}],
        }
    }))?)
}

struct Setup {
    db: Database,
    rules: Arc<Rules>,
    ingestor: Ingestor,
}

fn setup(url: &str, with_rule: Option<&str>) -> anyhow::Result<Setup> {
    let db = Database::open(url)?;
    db.migrate()?;
    let rules = Arc::new(Rules::new(Arc::new(Templates::built_in()?)));
    let mut conn = db.dedicated_connection()?;
    if let Some(after) = with_rule {
        rules.create(&mut conn, rule(after)?)?;
    }
    let hook = Arc::new(NotifierHook::new(
        Arc::clone(&rules),
        Arc::new(Notify::new()),
        RecipientPolicy::default(),
    ));
    let writers = match db.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    };
    let ingestor = Ingestor::start(db.clone(), writers, hook)?;
    Ok(Setup {
        db,
        rules,
        ingestor,
    })
}

/// Stores `deliveries` deliveries of [`BATCH`] messages, 8 in flight;
/// the elapsed time.
async fn store(setup: &Setup, deliveries: usize, offset: usize) -> anyhow::Result<Duration> {
    let at = Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let started = Instant::now();
    let mut pending = tokio::task::JoinSet::new();
    for d in 0..deliveries {
        let items = (0..BATCH)
            .map(|i| prepare_value(&message(offset + d * BATCH + i, &at), Utc::now()))
            .collect();
        let ingestor = setup.ingestor.clone();
        pending.spawn(async move { ingestor.store(items).await });
        while pending.len() >= 8 {
            if let Some(done) = pending.join_next().await {
                done??;
            }
        }
    }
    while let Some(done) = pending.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

pub async fn run(name: &str, make_url: impl Fn() -> String) -> anyhow::Result<()> {
    let deliveries = 100;
    let events = deliveries * BATCH;
    println!("\n{name}");
    let plain = setup(&make_url(), None)?;
    let baseline = store(&plain, deliveries, 0).await?;
    let armed = setup(&make_url(), Some("1h"))?;
    let with_timers = store(&armed, deliveries, 0).await?;
    let rows = timers::all(&mut *armed.db.conn()?)?.len();
    println!(
        "  ingest, no rule:            {events} events in {:.2} s = {:.0} events/s",
        baseline.as_secs_f64(),
        events as f64 / baseline.as_secs_f64()
    );
    println!(
        "  ingest, a two-step timer:   {events} events in {:.2} s = {:.0} events/s, {rows} timers armed = {:.0} timers/s",
        with_timers.as_secs_f64(),
        events as f64 / with_timers.as_secs_f64(),
        rows as f64 / with_timers.as_secs_f64()
    );

    // Firing: 1,000 due two seconds after they are stored.
    let firing = setup(&make_url(), Some("2s"))?;
    store(&firing, 10, 0).await?;
    let worker = Arc::new(TimerWorker::new(
        firing.db.clone(),
        Arc::clone(&firing.rules),
        RecipientPolicy::default(),
        Arc::new(Notify::new()),
        TimerSettings::default(),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Arc::clone(&worker).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let all = timers::all(&mut *firing.db.conn()?)?;
        let fired = all.iter().filter(|t| t.status == timers::FIRED).count();
        if fired >= 1_000 || Instant::now() > deadline {
            break;
        }
    }
    let _ = stop.send(true);
    let _ = running.await;
    let mut late: Vec<f64> = timers::all(&mut *firing.db.conn()?)?
        .iter()
        .filter(|t| t.status == timers::FIRED)
        .filter_map(|t| t.fired_at.map(|f| (f - t.due_at).num_milliseconds() as f64))
        .collect();
    late.sort_by(f64::total_cmp);
    if late.is_empty() {
        anyhow::bail!("{name}: no timer fired");
    }
    let at = |p: f64| late[((late.len() - 1) as f64 * p) as usize];
    println!(
        "  firing {} timers due at once, poll 1 s: after their due time p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        late.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
