//! Timer rules end to end inside one process, on both backends: events
//! stored through the real ingest path (writer, hook, transaction), the
//! timer worker driven with `run_once` / `claim` / `fire`, and the outbox
//! rows it writes checked. Events carry times in the past, so that a timer
//! is due at once: no sleeping for its time to come.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hookline_notifier::timers::worker::Fired;
use hookline_notifier::{
    NotifierHook, RecipientPolicy, RuleDef, Rules, Templates, TimerSettings, TimerWorker,
};
use hookline_storage::notifications::{self, Notification};
use hookline_storage::timers::{self as store, Timer};
use hookline_storage::{prepare_value, Database, Ingestor};
use hookline_testdb::TestDatabase;
use serde_json::{json, Value};
use tokio::sync::Notify;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/swiftsell"
);

struct Setup {
    _test_db: TestDatabase,
    db: Database,
    rules: Arc<Rules>,
    ingestor: Ingestor,
}

impl Setup {
    fn new(test_db: TestDatabase) -> Setup {
        let db = Database::open(&test_db.url).unwrap();
        db.migrate().unwrap();
        let templates = Arc::new(Templates::built_in().unwrap());
        let rules = Arc::new(Rules::new(templates));
        let hook = Arc::new(NotifierHook::new(
            Arc::clone(&rules),
            Arc::new(Notify::new()),
            RecipientPolicy::default(),
        ));
        let ingestor = Ingestor::start(db.clone(), 1, hook).unwrap();
        Setup {
            _test_db: test_db,
            db,
            rules,
            ingestor,
        }
    }

    fn worker(&self, settings: TimerSettings) -> TimerWorker {
        TimerWorker::new(
            self.db.clone(),
            Arc::clone(&self.rules),
            RecipientPolicy::default(),
            Arc::new(Notify::new()),
            settings,
        )
    }

    fn add_rule(&self, rule: Value) -> i64 {
        let def: RuleDef = serde_json::from_value(rule).unwrap();
        let mut conn = self.db.conn().unwrap();
        self.rules.create(&mut conn, def).unwrap().id
    }

    async fn post(&self, items: Vec<Value>) -> usize {
        let now = Utc::now();
        let prepared = items.iter().map(|i| prepare_value(i, now)).collect();
        self.ingestor.store(prepared).await.unwrap().stored
    }

    fn notifications(&self) -> Vec<Notification> {
        notifications::all(&mut self.db.conn().unwrap()).unwrap()
    }

    fn timers(&self) -> Vec<Timer> {
        store::all(&mut self.db.conn().unwrap()).unwrap()
    }
}

fn item(fixture: &str) -> Value {
    let body: Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{fixture}")).unwrap()).unwrap();
    body["events"][0].clone()
}

/// An event time `seconds_ago` seconds back, as Swiftsell writes it.
fn ago(seconds_ago: i64) -> String {
    (Utc::now() - chrono::Duration::seconds(seconds_ago))
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// A text message by the visitor (or, with `agent`, by that agent) in
/// conversation `key`, `seconds_ago` seconds back.
fn message(key: &str, agent: Option<&str>, text: &str, seconds_ago: i64) -> Value {
    let mut item = item("02-message-text.json");
    item["conversation"]["key"] = json!(key);
    item["timestamp"] = json!(ago(seconds_ago));
    item["event"]["payload"]["message"]["text"] = json!(text);
    if let Some(agent) = agent {
        item["event"]["payload"]["message_by"] =
            json!({"email": agent, "id": "8292", "type": "user"});
    }
    item
}

/// "Visitor waiting": a visitor message starts it, an agent's message or a
/// close stops it.
fn waiting_rule(after: &str, rearm: &str, escalate: Value) -> Value {
    json!({
        "name": "visitor-waiting",
        "to": ["lead@example.com"],
        "template": "waiting",
        "timer": {
            "after": after,
            "rearm": rearm,
            "start": {"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "visitor"}]},
            "stop": [
                {"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "user"}]},
                {"on": ["status"]},
            ],
            "escalate": escalate,
        }
    })
}

fn settings() -> TimerSettings {
    TimerSettings {
        poll: Duration::from_millis(50),
        lease: Duration::from_secs(60),
        batch: 50,
        max_lateness: Duration::from_secs(3_600),
    }
}

/// Every day open from 00:00 to 24:00 UTC, except `holidays`.
fn always(holidays: &[String]) -> Value {
    let day = json!(["00:00-24:00"]);
    json!({
        "time_zone": "UTC",
        "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day},
        "holidays": holidays,
    })
}

/// A handover of fixture 24 to `agent` in conversation `key`.
fn handover(key: &str, agent: &str, seconds_ago: i64) -> Value {
    let mut item = item("24-assignee_change.json");
    item["conversation"]["key"] = json!(key);
    item["timestamp"] = json!(ago(seconds_ago));
    item["event"]["payload"]["to"] = json!({"email": agent, "id": "1", "type": "user"});
    item
}

mod definitions;
mod episodes;
mod named;
mod preview;
