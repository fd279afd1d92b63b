//! Retention and erasure while ingest goes on, on real SQLite files and,
//! when `HOOKLINE_TEST_POSTGRES_URL` is set, a real PostgreSQL server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::Duration;

use chrono::{Duration as Span, Utc};
use diesel::connection::SimpleConnection;
use hookline_storage::ingest::{self, IngestHook, NewlyStored};
use hookline_storage::{conversations, events, prepare_value, retention, Database, DbConnection};
use hookline_testdb::TestDatabase;
use serde_json::{json, Value};

const NOTE: &str = include_str!("../../../tests/fixtures/swiftsell/28-note.json");

fn open(test_db: &TestDatabase) -> Database {
    let db = Database::open(&test_db.url).unwrap();
    db.migrate().unwrap();
    db
}

/// A note in `conversation` by `visitor` at `at`, with text `text`.
fn note(conversation: &str, visitor: &str, at: chrono::DateTime<Utc>, text: &str) -> Value {
    let envelope: Value = serde_json::from_str(NOTE).unwrap();
    let mut item = envelope["events"][0].clone();
    item["conversation"]["key"] = json!(conversation);
    item["visitor"]["key"] = json!(visitor);
    item["timestamp"] = json!(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
    item["event"]["payload"]["note"] = json!(text);
    item
}

fn store(conn: &mut DbConnection, items: &[Value]) {
    let prepared: Vec<_> = items.iter().map(|i| prepare_value(i, Utc::now())).collect();
    ingest::store_group(conn, &[&prepared]).unwrap();
}

/// Pauses inside the ingest transaction, after the conversations are
/// written and before the commit, so that a purge can run into it.
struct PauseBeforeCommit {
    reached: mpsc::SyncSender<()>,
    pause: Duration,
}

impl IngestHook for PauseBeforeCommit {
    fn in_transaction(
        &self,
        _: &mut DbConnection,
        _: &[NewlyStored<'_>],
    ) -> diesel::QueryResult<()> {
        let _ = self.reached.send(());
        std::thread::sleep(self.pause);
        Ok(())
    }
}

#[test]
fn purge_keeps_a_conversation_that_became_active_while_it_ran() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.dedicated_connection().unwrap();
        let two_days_ago = Utc::now() - Span::days(2);
        store(
            &mut conn,
            &[
                note("live", "v1", two_days_ago, "old"),
                note("dead", "v2", two_days_ago, "old"),
            ],
        );
        // An event for "live" is being stored (its conversation row already
        // updated, not committed yet) when the purge starts.
        let (reached, wait) = mpsc::sync_channel(1);
        let ingest_db = db.clone();
        let ingest = std::thread::spawn(move || {
            let mut conn = ingest_db.dedicated_connection().unwrap();
            let item = prepare_value(&note("live", "v1", Utc::now(), "new"), Utc::now());
            let hook = PauseBeforeCommit {
                reached,
                pause: Duration::from_millis(600),
            };
            ingest::store_group_with(&mut conn, &[&[item]], &hook).unwrap()
        });
        wait.recv().unwrap();
        let deleted = retention::purge_before(&mut conn, hookline_storage::now() - Span::hours(1))
            .unwrap_or_else(|e| panic!("{}: purge failed: {e}", test_db.name()));
        assert_eq!(ingest.join().unwrap()[0].stored, 1);
        let live = conversations::get(&mut conn, "live").unwrap();
        assert!(
            live.is_some(),
            "{}: the purge deleted a conversation that had a new event",
            test_db.name()
        );
        assert!(conversations::get(&mut conn, "dead").unwrap().is_none());
        assert_eq!(
            (deleted.events, deleted.conversations),
            (2, 1),
            "{}",
            test_db.name()
        );
        let left: Vec<String> = events::all(&mut conn)
            .unwrap()
            .into_iter()
            .map(|e| e.summary)
            .collect();
        assert_eq!(left.len(), 1, "{}: {left:?}", test_db.name());
    }
}

/// More than SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const MANY: i64 = 70_000;

#[test]
fn erase_deletes_more_events_than_a_statement_can_bind() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.dedicated_connection().unwrap();
        store(
            &mut conn,
            &[
                note("theirs", "many", Utc::now(), "first"),
                note("other", "someone-else", Utc::now(), "kept"),
            ],
        );
        let at = match conn {
            DbConnection::Pg(_) => "TIMESTAMP '2026-01-01 00:00:00'",
            DbConnection::Sqlite(_) => "'2026-01-01 00:00:00'",
        };
        // Half by visitor key, half only through the visitor's conversation.
        conn.batch_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MANY}) \
             INSERT INTO events (dedupe_key, event_type, conversation_key, visitor_key, \
                 occurred_at, received_at, summary, raw) \
             SELECT 'bulk-' || i, 'note', CASE WHEN i % 2 = 0 THEN 'theirs' ELSE 'elsewhere' END, \
                 CASE WHEN i % 2 = 0 THEN NULL ELSE 'many' END, {at}, {at}, 'bulk', '{{}}' FROM n"
        ))
        .unwrap();
        let deleted = retention::erase_visitor(&mut conn, "many")
            .unwrap_or_else(|e| panic!("{}: erase failed: {e}", test_db.name()));
        assert_eq!(
            (deleted.events, deleted.conversations),
            (MANY as usize + 1, 1),
            "{}",
            test_db.name()
        );
        let left = events::all(&mut conn).unwrap();
        assert_eq!(left.len(), 1, "{}", test_db.name());
        assert_eq!(left[0].visitor_key.as_deref(), Some("someone-else"));
        assert!(conversations::get(&mut conn, "theirs").unwrap().is_none());
        assert!(conversations::get(&mut conn, "other").unwrap().is_some());
    }
}
