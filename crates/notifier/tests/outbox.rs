//! The outbox rows of one ingest group are written together after its last
//! rule: the throttle and the recipient cap still count the group's own
//! emails, rows keep the order the rules produced them in, and a rule whose
//! rows the database refuses still gets an `error` row while the others'
//! emails are stored. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::Utc;
use hookline_notifier::{NotifierHook, RecipientPolicy, RuleDef, Rules, Templates};
use hookline_storage::diesel::connection::SimpleConnection;
use hookline_storage::notifications::Notification;
use hookline_storage::schema::notifications;
use hookline_storage::{prepare_value, Database, DbConnection, Ingestor};
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
    ingestor: Ingestor,
}

impl Setup {
    /// Two rules on every handover: `desk` (throttled to one email per
    /// conversation per 10 minutes) and `lead`; at most `cap` emails per
    /// recipient per hour.
    fn new(test_db: TestDatabase, cap: u32) -> Setup {
        let db = Database::open(&test_db.url).unwrap();
        db.migrate().unwrap();
        let templates = Arc::new(Templates::built_in().unwrap());
        let rules = Arc::new(Rules::new(templates));
        let hook = Arc::new(NotifierHook::new(
            Arc::clone(&rules),
            Arc::new(Notify::new()),
            RecipientPolicy::new(&[], cap).unwrap(),
        ));
        let ingestor = Ingestor::start(db.clone(), 1, hook).unwrap();
        let mut conn = db.conn().unwrap();
        for rule in [
            json!({"name": "desk", "on": ["assignee_change"], "to": ["desk@example.com"], "template": "handover", "throttle": "10m"}),
            json!({"name": "lead", "on": ["assignee_change"], "to": ["lead@example.com"], "template": "handover"}),
        ] {
            let def: RuleDef = serde_json::from_value(rule).unwrap();
            rules.create(&mut conn, def).unwrap();
        }
        Setup {
            _test_db: test_db,
            db,
            ingestor,
        }
    }

    /// Stores `items` as one delivery (one group); all must be new.
    async fn deliver(&self, items: &[Value]) {
        let prepared = items
            .iter()
            .map(|item| prepare_value(item, Utc::now()))
            .collect();
        let outcome = self.ingestor.store(prepared).await.unwrap();
        assert_eq!(outcome.stored, items.len());
    }

    /// Every notification, in id order.
    fn rows(&self) -> Vec<Notification> {
        use hookline_storage::diesel::prelude::*;
        let mut conn = self.db.conn().unwrap();
        notifications::table
            .order(notifications::id.asc())
            .select(Notification::as_select())
            .load(&mut *conn)
            .unwrap()
    }

    fn with_conn(&self, f: impl FnOnce(&mut DbConnection)) {
        let mut conn = self.db.conn().unwrap();
        f(&mut conn);
    }
}

/// A handover in conversation `key`, `n` seconds after a fixed time (a
/// distinct item for each `n`).
fn handover(key: &str, n: u32) -> Value {
    let path = format!("{FIXTURES}/24-assignee_change.json");
    let body: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut item = body["events"][0].clone();
    item["conversation"]["key"] = json!(key);
    item["timestamp"] = json!(format!("2026-11-30 10:00:{n:02}"));
    item
}

/// (rule, conversation, status, reason prefix) of each row, in id order.
fn summary(rows: &[Notification]) -> Vec<(String, String, String, String)> {
    rows.iter()
        .map(|n| {
            let reason = n.reason.clone().unwrap_or_default();
            let prefix = reason.split(':').next().unwrap_or_default().to_owned();
            (
                n.rule_name.clone(),
                n.conversation_key.clone().unwrap_or_default(),
                n.status.clone(),
                prefix,
            )
        })
        .collect()
}

fn row(rule: &str, key: &str, status: &str, reason: &str) -> (String, String, String, String) {
    (rule.into(), key.into(), status.into(), reason.into())
}

async fn limits_count_the_groups_own_emails(test_db: TestDatabase) {
    let setup = Setup::new(test_db, 3);
    // One group: conversation a twice, then b, c, d.
    let group: Vec<Value> = [("a", 1), ("a", 2), ("b", 3), ("c", 4), ("d", 5)]
        .iter()
        .map(|(key, n)| handover(key, *n))
        .collect();
    setup.deliver(&group).await;
    let rows = setup.rows();
    assert_eq!(
        summary(&rows),
        vec![
            row("desk", "a", "queued", ""),
            row("lead", "a", "queued", ""),
            // The throttle sees the desk's email of the same group.
            row("desk", "a", "suppressed", "throttled"),
            row("lead", "a", "queued", ""),
            row("desk", "b", "queued", ""),
            // The cap counts the lead's three emails of the same group.
            row("lead", "b", "queued", ""),
            row("desk", "c", "queued", ""),
            row("lead", "c", "suppressed", "recipient cap"),
            row("desk", "d", "suppressed", "recipient cap"),
            row("lead", "d", "suppressed", "recipient cap"),
        ],
        "{rows:#?}"
    );
    // Rows are in the order of their events.
    let events: Vec<i64> = rows.iter().map(|n| n.event_id.unwrap()).collect();
    assert!(events.windows(2).all(|w| w[0] <= w[1]), "{events:?}");
    // A later group sees them stored.
    setup.deliver(&[handover("a", 6)]).await;
    let rows = setup.rows();
    assert_eq!(
        summary(&rows[10..]),
        vec![
            row("desk", "a", "suppressed", "throttled"),
            row("lead", "a", "suppressed", "recipient cap"),
        ],
        "{rows:#?}"
    );
}

/// Makes the database refuse every row of rule `desk` but `error` rows.
fn break_desk(conn: &mut DbConnection) {
    match conn {
        DbConnection::Sqlite(c) => c
            .batch_execute(
                "CREATE TRIGGER broken_desk BEFORE INSERT ON notifications \
                 WHEN NEW.rule_name = 'desk' AND NEW.status <> 'error' \
                 BEGIN SELECT RAISE(ABORT, 'induced failure of rule desk'); END;",
            )
            .unwrap(),
        DbConnection::Pg(c) => c
            .batch_execute(
                "CREATE FUNCTION broken_desk() RETURNS trigger AS $$ BEGIN \
                 IF NEW.rule_name = 'desk' AND NEW.status <> 'error' THEN \
                 RAISE EXCEPTION 'induced failure of rule desk'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER broken_desk BEFORE INSERT ON notifications \
                 FOR EACH ROW EXECUTE FUNCTION broken_desk();",
            )
            .unwrap(),
    }
}

async fn refused_rows_become_error_rows_and_the_others_are_stored(test_db: TestDatabase) {
    let setup = Setup::new(test_db, 60);
    setup.with_conn(break_desk);
    let group: Vec<Value> = [("a", 1), ("b", 2), ("c", 3)]
        .iter()
        .map(|(key, n)| handover(key, *n))
        .collect();
    setup.deliver(&group).await;
    let rows = setup.rows();
    assert_eq!(
        summary(&rows),
        vec![
            row("desk", "a", "error", "rule failed"),
            row("lead", "a", "queued", ""),
            row("desk", "b", "error", "rule failed"),
            row("lead", "b", "queued", ""),
            row("desk", "c", "error", "rule failed"),
            row("lead", "c", "queued", ""),
        ],
        "{rows:#?}"
    );
    for error in rows.iter().filter(|n| n.status == "error") {
        let reason = error.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("queueing its emails failed")
                && reason.contains("induced failure of rule desk"),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_count_the_groups_own_emails_on_both_backends() {
    for test_db in TestDatabase::each() {
        limits_count_the_groups_own_emails(test_db).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_rows_become_error_rows_and_the_others_are_stored_on_both_backends() {
    for test_db in TestDatabase::each() {
        refused_rows_become_error_rows_and_the_others_are_stored(test_db).await;
    }
}
