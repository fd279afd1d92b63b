//! The process clock ten minutes off the database clock: the outbox and
//! timer workers send nothing early and nothing late, and take no live
//! claim, on both backends. Its own test binary, because it skews the
//! process clock ([`hookline_storage::now`]) for the whole process; the
//! database clock is the truth.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use hookline_notifier::worker::WorkerSettings;
use hookline_notifier::{
    Mailer, NotifierHook, RecipientPolicy, RuleDef, Rules, Templates, TimerSettings, TimerWorker,
    Worker,
};
use hookline_storage::notifications::{self as outbox, NewNotification, Notification};
use hookline_storage::timers as store;
use hookline_storage::{db_now, prepare_value, skew_process_clock, Database, Ingestor};
use hookline_testdb::TestDatabase;
use serde_json::{json, Value};
use tokio::sync::Notify;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/swiftsell"
);

const SKEW_MINUTES: i64 = 10;

struct Setup {
    _test_db: TestDatabase,
    db: Database,
    ingestor: Ingestor,
    outbox: Worker,
    timers: TimerWorker,
    mail_dir: tempfile::TempDir,
}

impl Setup {
    fn new(test_db: TestDatabase) -> Setup {
        let db = Database::open(&test_db.url).unwrap();
        db.migrate().unwrap();
        let templates = Arc::new(Templates::built_in().unwrap());
        let rules = Arc::new(Rules::new(Arc::clone(&templates)));
        let wake = Arc::new(Notify::new());
        let hook = Arc::new(NotifierHook::new(
            Arc::clone(&rules),
            Arc::clone(&wake),
            RecipientPolicy::default(),
        ));
        let ingestor = Ingestor::start(db.clone(), 1, hook).unwrap();
        let mail_dir = tempfile::tempdir().unwrap();
        let mailer = Arc::new(Mailer::new(None, mail_dir.path()).unwrap());
        let outbox = Worker::new(
            db.clone(),
            templates,
            mailer,
            Arc::clone(&wake),
            WorkerSettings::with_defaults("hookline@example.com".parse().unwrap()),
        );
        let timers = TimerWorker::new(
            db.clone(),
            Arc::clone(&rules),
            RecipientPolicy::default(),
            wake,
            TimerSettings {
                lease: Duration::from_secs(60),
                ..TimerSettings::default()
            },
        );
        let setup = Setup {
            _test_db: test_db,
            db,
            ingestor,
            outbox,
            timers,
            mail_dir,
        };
        let mut conn = setup.db.conn().unwrap();
        for rule in [handover_rule(), waiting_rule()] {
            let def: RuleDef = serde_json::from_value(rule).unwrap();
            rules.create(&mut conn, def).unwrap();
        }
        setup
    }

    fn db_now(&self) -> NaiveDateTime {
        db_now(&mut self.db.conn().unwrap()).unwrap()
    }

    async fn post(&self, item: Value) {
        let prepared = vec![prepare_value(&item, Utc::now())];
        assert_eq!(self.ingestor.store(prepared).await.unwrap().stored, 1);
    }

    /// A notification to `recipient` about the handover the desk was told
    /// of, with `status` and its next attempt at `next`.
    fn insert(&self, recipient: &str, status: &str, next: NaiveDateTime) -> i64 {
        let about = self.by_recipient("desk@example.com");
        let mut conn = self.db.conn().unwrap();
        let now = self.db_now();
        outbox::insert(
            &mut conn,
            &NewNotification {
                rule_id: None,
                rule_name: "inserted".into(),
                event_id: about.event_id,
                conversation_key: about.conversation_key,
                recipient: recipient.into(),
                template: "handover".into(),
                status: status.into(),
                reason: None,
                next_attempt_at: Some(next),
                created_at: now,
                updated_at: now,
            },
        )
        .unwrap();
        self.by_recipient(recipient).id
    }

    /// A row to `recipient` claimed by another worker until `until`.
    fn claimed_elsewhere(&self, recipient: &str, until: NaiveDateTime) {
        let id = self.insert(recipient, outbox::QUEUED, self.db_now());
        let mut conn = self.db.conn().unwrap();
        let claimed =
            outbox::claim_due(&mut conn, "another-instance", self.db_now(), until, 1).unwrap();
        assert_eq!(
            claimed.iter().map(|n| n.id).collect::<Vec<_>>(),
            [id],
            "{:#?}",
            outbox::all(&mut conn).unwrap()
        );
    }

    fn by_recipient(&self, recipient: &str) -> Notification {
        let rows = outbox::all(&mut self.db.conn().unwrap()).unwrap();
        let mut mine: Vec<Notification> = rows
            .into_iter()
            .filter(|n| n.recipient == recipient)
            .collect();
        assert_eq!(mine.len(), 1, "{recipient}: {mine:#?}");
        mine.remove(0)
    }

    /// The recipients of the emails written so far, sorted.
    fn mailed(&self) -> Vec<String> {
        let mut to = Vec::new();
        for entry in std::fs::read_dir(self.mail_dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) == Some("eml") {
                to.push(recipient_of(&path));
            }
        }
        to.sort();
        to
    }
}

/// The `To:` of an `.eml` file.
fn recipient_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("To: "))
        .unwrap_or_else(|| panic!("no To: in {text}"));
    line["To: ".len()..]
        .trim()
        .trim_matches(['<', '>'])
        .to_owned()
}

fn item(fixture: &str) -> Value {
    let body: Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{fixture}")).unwrap()).unwrap();
    body["events"][0].clone()
}

/// An event time `seconds_ago` seconds back on the real clock, as Swiftsell
/// writes it.
fn ago(seconds_ago: i64) -> String {
    (Utc::now() - chrono::Duration::seconds(seconds_ago))
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// An event rule: every handover emails the handover desk at once.
fn handover_rule() -> Value {
    json!({"name": "handover", "on": ["assignee_change"], "to": ["desk@example.com"], "template": "handover"})
}

/// A timer rule: a visitor's message unanswered for a minute emails the
/// lead.
fn waiting_rule() -> Value {
    json!({
        "name": "visitor-waiting",
        "to": ["lead@example.com"],
        "template": "waiting",
        "timer": {
            "after": "60s",
            "rearm": "keep_first",
            "start": {"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "visitor"}]},
            "stop": [{"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "user"}]}],
        }
    })
}

fn handover(key: &str) -> Value {
    let mut item = item("24-assignee_change.json");
    item["conversation"]["key"] = json!(key);
    item["timestamp"] = json!(ago(0));
    item
}

fn visitor_message(key: &str, seconds_ago: i64) -> Value {
    let mut item = item("02-message-text.json");
    item["conversation"]["key"] = json!(key);
    item["timestamp"] = json!(ago(seconds_ago));
    item
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// The process clock ten minutes ahead: a retry due in five minutes (by
/// the database) stays put, another instance's live claim is not taken, a
/// timer due in a minute does not fire; an email queued now (stamped by
/// the fast process clock) goes out at once.
async fn process_clock_ahead(setup: &Setup) {
    setup.post(handover("c-ahead")).await;
    let queued = setup.by_recipient("desk@example.com");
    assert_eq!(queued.status, outbox::QUEUED);
    // Ingest stamps it by the process clock, ten minutes ahead.
    assert!(queued.next_attempt_at.unwrap() > setup.db_now() + minutes(SKEW_MINUTES - 1));
    let db = setup.db_now();
    setup.insert("retry@example.com", outbox::FAILED, db + minutes(5));
    setup.claimed_elsewhere("held@example.com", db + minutes(5));
    setup.post(visitor_message("c-ahead-wait", 0)).await;

    assert_eq!(
        setup.timers.run_once().await.unwrap(),
        0,
        "a timer fired early"
    );
    assert_eq!(setup.outbox.run_once(None).await.unwrap(), 1);
    assert_eq!(setup.mailed(), ["desk@example.com"]);

    let retry = setup.by_recipient("retry@example.com");
    assert_eq!(retry.status, outbox::FAILED, "a retry was sent early");
    assert_eq!(retry.attempts, 0);
    let held = setup.by_recipient("held@example.com");
    assert_eq!(held.status, outbox::SENDING);
    assert_eq!(held.claimed_by.as_deref(), Some("another-instance"));
    let armed = store::all(&mut setup.db.conn().unwrap()).unwrap();
    assert_eq!(armed.len(), 1, "{armed:#?}");
    assert_eq!(armed[0].status, store::ARMED);
    let sent = setup.by_recipient("desk@example.com");
    assert_eq!(sent.status, outbox::SENT);
    // Recorded by the database clock, not ten minutes ahead.
    assert!(sent.sent_at.unwrap() <= setup.db_now());
}

/// The process clock ten minutes behind: a retry and a timer due a second
/// ago (by the database) go out now, and a claim whose lease ran out a
/// second ago passes to this worker.
async fn process_clock_behind(setup: &Setup) {
    let db = setup.db_now();
    setup.claimed_elsewhere("lapsed@example.com", db - chrono::Duration::seconds(1));
    setup.insert(
        "retry-now@example.com",
        outbox::FAILED,
        db - chrono::Duration::seconds(1),
    );
    setup.post(visitor_message("c-behind-wait", 61)).await;

    assert_eq!(
        setup.timers.run_once().await.unwrap(),
        1,
        "a due timer did not fire"
    );
    let mut claimed = 0;
    while let n @ 1.. = setup.outbox.run_once(None).await.unwrap() {
        claimed += n;
    }
    assert_eq!(claimed, 3);
    assert_eq!(
        setup.mailed(),
        [
            "desk@example.com",
            "lapsed@example.com",
            "lead@example.com",
            "retry-now@example.com"
        ]
    );
    for recipient in [
        "retry-now@example.com",
        "lapsed@example.com",
        "lead@example.com",
    ] {
        assert_eq!(
            setup.by_recipient(recipient).status,
            outbox::SENT,
            "{recipient}"
        );
    }
    let fired: Vec<_> = store::all(&mut setup.db.conn().unwrap())
        .unwrap()
        .into_iter()
        .filter(|t| t.status == store::FIRED)
        .collect();
    assert_eq!(fired.len(), 1, "{fired:#?}");
    assert_eq!(fired[0].conversation_key, "c-behind-wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_clock_ten_minutes_off_the_database_clock_sends_nothing_early_or_late() {
    for test_db in TestDatabase::each() {
        let backend = test_db.name();
        eprintln!("{backend}");
        let setup = Setup::new(test_db);
        skew_process_clock(minutes(SKEW_MINUTES));
        process_clock_ahead(&setup).await;
        skew_process_clock(-minutes(SKEW_MINUTES));
        process_clock_behind(&setup).await;
        skew_process_clock(chrono::Duration::zero());
    }
}
