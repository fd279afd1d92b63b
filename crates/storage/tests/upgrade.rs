//! Upgrading a database whose events were stored under the old dedupe
//! keys (the bare hash): a re-delivery after the upgrade still collapses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use hookline_storage::diesel::connection::SimpleConnection;
use hookline_storage::diesel::prelude::*;
use hookline_storage::schema::events as events_table;
use hookline_storage::{events, ingest, migrations, prepare_text, settings, Database};
use hookline_testdb::TestDatabase;

/// The migration that put the item's time in front of its key.
const TIME_ORDERED_KEYS: &str = "2026-12-01-000060";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../tests/fixtures/swiftsell/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The items of a delivery (one item per fixture body).
fn item_of(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value["events"][0].to_string()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn a_duplicate_of_an_event_stored_before_the_upgrade_still_collapses() {
    let first_came = at("2026-11-30T12:00:00Z");
    let texts = [
        // Filed under its own time: rewritten by the migration's SQL.
        item_of(&fixture("02-message-text.json")),
        // Times stored with a millisecond fraction, and with none.
        r#"{"timestamp":"2026-11-29 10:00:00.25","event":{"type":"note","payload":{}}}"#.to_owned(),
        r#"{"timestamp":"2026-11-29 10:00:01","event":{"type":"note","payload":{}}}"#.to_owned(),
        // No time: filed under its receipt time; finished from its JSON.
        r#"{"event":{"type":"note","payload":{"note":"untimed"}},"conversation":{"key":"c1"}}"#
            .to_owned(),
        // A time a day and a half ahead of its first receipt: filed under
        // the receipt time then, under its own time when re-sent later.
        r#"{"timestamp":"2026-12-02 00:00:00","event":{"type":"note","payload":{}}}"#.to_owned(),
        // Not readable as a value at all.
        r#"{"n":1e999}"#.to_owned(),
    ];
    for test_db in TestDatabase::each() {
        let name = test_db.name();
        let db = Database::open(&test_db.url).unwrap();
        let mut conn = db.dedicated_connection().unwrap();
        assert!(migrations::run_pending_before(&mut conn, TIME_ORDERED_KEYS).unwrap() > 0);
        // Stored as the version before the upgrade stored them: the hash
        // alone as the key.
        let old: Vec<_> = texts
            .iter()
            .map(|text| {
                let mut item = prepare_text(text, first_came);
                let (_, hash) = item.event.dedupe_key.split_once('|').unwrap();
                item.event.dedupe_key = hash.to_owned();
                item
            })
            .collect();
        // Today's insert names `handed_to`, a later migration's column:
        // it is there while the old rows go in (left NULL, as the old
        // version left it), and gone again before the upgrade adds it.
        conn.batch_execute("ALTER TABLE events ADD COLUMN handed_to TEXT")
            .unwrap();
        let outcome = ingest::store_group(&mut conn, &[&old]).unwrap();
        assert_eq!(outcome[0].stored, texts.len(), "{name}");
        conn.batch_execute("ALTER TABLE events DROP COLUMN handed_to")
            .unwrap();

        assert!(migrations::run_pending(&mut conn).unwrap() > 0, "{name}");
        assert!(migrations::is_current(&mut conn).unwrap(), "{name}");
        assert_eq!(
            settings::get(&mut conn, "dedupe_keys_to_finish").unwrap(),
            None,
            "{name}: the keys were not finished"
        );

        // Re-delivered two days later: every item is recognised.
        let again: Vec<_> = texts
            .iter()
            .map(|text| prepare_text(text, first_came + TimeDelta::days(2)))
            .collect();
        let outcome = ingest::store_group(&mut conn, &[&again]).unwrap();
        assert_eq!(outcome[0].stored, 0, "{name}: {outcome:?}");
        assert_eq!(outcome[0].duplicates, texts.len(), "{name}");
        assert_eq!(events::count(&mut conn).unwrap(), texts.len() as i64);
        let keys: Vec<String> = events_table::table
            .order(events_table::id.asc())
            .select(events_table::dedupe_key)
            .load(&mut conn)
            .unwrap();
        let expected: Vec<&str> = again.iter().map(|i| i.event.dedupe_key.as_str()).collect();
        assert_eq!(keys, expected, "{name}");
        assert!(
            keys[0].starts_with("001693577625503552|"),
            "{name}: {}",
            keys[0]
        );
        assert!(keys[3].starts_with('|'), "{name}: {}", keys[3]);

        // And back: the down migration gives the old keys again.
        let reverted = loop {
            let keys: Vec<String> = events_table::table
                .order(events_table::id.asc())
                .select(events_table::dedupe_key)
                .load(&mut conn)
                .unwrap();
            if !keys.iter().any(|k| k.contains('|')) {
                break keys;
            }
            migrations::revert_last(&mut conn).unwrap();
        };
        let hashes: Vec<&str> = old.iter().map(|i| i.event.dedupe_key.as_str()).collect();
        assert_eq!(reverted, hashes, "{name}");
    }
}
