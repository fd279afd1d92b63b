//! The database layer on real SQLite files and, when
//! `HOOKLINE_TEST_POSTGRES_URL` is set, a real PostgreSQL server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use hookline_model::Envelope;
use hookline_storage::{
    conversations, events, ingest, migrations, prepare, settings, Database, Ingestor, PreparedItem,
};
use hookline_testdb::TestDatabase;
use serde_json::{json, Value};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/swiftsell"
);
const CONVERSATION: &str = "42bb83f00d8240e5bb41290a12eb44401693552452";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

fn fixtures() -> Vec<Vec<u8>> {
    let mut names: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names.iter().map(|n| fixture(n)).collect()
}

fn items(body: &[u8]) -> Vec<PreparedItem> {
    let envelope = Envelope::parse(body).unwrap();
    envelope
        .events
        .iter()
        .map(|item| prepare(item, Utc::now()))
        .collect()
}

/// Stores each body as one request of a single group.
fn store_bodies(
    conn: &mut hookline_storage::DbConnection,
    bodies: &[Vec<u8>],
) -> Vec<ingest::StoreOutcome> {
    let prepared: Vec<Vec<PreparedItem>> = bodies.iter().map(|b| items(b)).collect();
    let requests: Vec<&[PreparedItem]> = prepared.iter().map(Vec::as_slice).collect();
    ingest::store_group(conn, &requests).unwrap()
}

fn open(test_db: &TestDatabase) -> Database {
    let db = Database::open(&test_db.url).unwrap();
    db.migrate().unwrap();
    db
}

#[test]
fn every_down_migration_undoes_its_up() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        assert!(migrations::is_current(&mut conn).unwrap());
        assert!(migrations::revert_all(&mut conn).unwrap() > 0);
        assert!(
            events::count(&mut conn).is_err(),
            "{}: events table survived revert",
            test_db.name()
        );
        assert!(!migrations::is_current(&mut conn).unwrap());
        assert!(migrations::run_pending(&mut conn).unwrap() > 0);
        assert_eq!(events::count(&mut conn).unwrap(), 0);
    }
}

#[test]
fn all_fixtures_are_stored_with_their_types_and_raw_json() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        let bodies = fixtures();
        let outcomes = store_bodies(&mut conn, &bodies);
        let stored_count: usize = outcomes.iter().map(|o| o.stored).sum();
        assert_eq!(stored_count, 28, "{}", test_db.name());
        let stored = events::all(&mut conn).unwrap();
        assert_eq!(stored.len(), 28);
        for (row, body) in stored.iter().zip(&bodies) {
            let original: Value = serde_json::from_slice(body).unwrap();
            let raw: Value = serde_json::from_str(&row.raw).unwrap();
            assert_eq!(raw, original["events"][0]);
            assert!(row.conversation_id.is_some());
            assert!(!row.summary.is_empty());
        }
        assert_eq!(stored[0].event_type, "conversation_create");
        assert_eq!(stored[1].message_type.as_deref(), Some("text"));
        assert_eq!(stored[1].actor_type.as_deref(), Some("visitor"));
        assert_eq!(stored[23].event_type, "assignee_change");
        assert_eq!(
            stored[23].actor_email.as_deref(),
            Some("himanshu@swiftsell.biz")
        );
        assert_eq!(stored[0].bot_id, Some(8861));
        assert_eq!(
            stored[0].occurred_at.to_string(),
            "2023-09-01 14:13:32.141788"
        );
    }
}

#[test]
fn a_duplicate_is_stored_once_even_in_one_transaction() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        let body = fixture("02-message-text.json");
        let compact = items(&body);
        let value: Value = serde_json::from_slice(&body).unwrap();
        let spaced = items(serde_json::to_string_pretty(&value).unwrap().as_bytes());
        let outcomes = ingest::store_group(&mut conn, &[&compact, &spaced, &compact]).unwrap();
        let pairs: Vec<_> = outcomes.iter().map(|o| (o.stored, o.duplicates)).collect();
        assert_eq!(pairs, vec![(1, 0), (0, 1), (0, 1)], "{}", test_db.name());
        assert_eq!(events::count(&mut conn).unwrap(), 1);
        let conversation = conversations::get(&mut conn, CONVERSATION)
            .unwrap()
            .unwrap();
        assert_eq!(
            conversation.message_count, 1,
            "a duplicate must not count twice"
        );
    }
}

#[test]
fn concurrent_ingest_of_one_item_stores_it_once() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let writers =
            Ingestor::start(db.clone(), 4, std::sync::Arc::new(hookline_storage::NoHook)).unwrap();
        let body = fixture("28-note.json");
        let outcomes = runtime.block_on(async {
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let writers = writers.clone();
                    let prepared = items(&body);
                    tokio::spawn(async move { writers.store(prepared).await.unwrap() })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            outcomes
        });
        let stored: usize = outcomes.iter().map(|o| o.stored).sum();
        let duplicates: usize = outcomes.iter().map(|o| o.duplicates).sum();
        assert_eq!((stored, duplicates), (1, 15), "{}", test_db.name());
        assert_eq!(events::count(&mut db.conn().unwrap()).unwrap(), 1);
    }
}

#[test]
fn conversation_state_follows_occurrence_not_arrival() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        let at = |ts: &str, name: &str, status: Option<&str>| {
            let mut value: Value = serde_json::from_slice(&fixture(name)).unwrap();
            value["events"][0]["timestamp"] = json!(ts);
            if let Some(status) = status {
                value["events"][0]["event"]["payload"]["status"] = json!(status);
            }
            items(value.to_string().as_bytes())
        };
        // Arrival order: close (t4), handover (t3), create (t1), reopen (t2).
        let close = at("2023-09-01 14:20:00", "23-status.json", None);
        let handover = at("2023-09-01 14:15:00", "24-assignee_change.json", None);
        let create = at("2023-09-01 14:10:00", "01-conversation_create.json", None);
        let stale_reopen = at("2023-09-01 14:12:00", "23-status.json", Some("Open"));
        for batch in [&close, &handover, &create, &stale_reopen] {
            ingest::store_group(&mut conn, &[batch]).unwrap();
        }
        let c = conversations::get(&mut conn, CONVERSATION)
            .unwrap()
            .unwrap();
        assert_eq!(c.status, "closed", "{}", test_db.name());
        assert_eq!(c.closed_at.unwrap().to_string(), "2023-09-01 14:20:00");
        assert_eq!(
            c.assignee_email.as_deref(),
            Some("himanshu@swiftsell.biz"),
            "the create's bot assignee is older than the handover"
        );
        assert_eq!(c.assignee_type.as_deref(), Some("user"));
        assert_eq!(c.title.as_deref(), Some("Visitor - A27187"));
        assert_eq!(c.channel.as_deref(), Some("WEB"));
        assert_eq!(c.visitor_name.as_deref(), Some("nik"));
        assert_eq!(c.first_event_at.to_string(), "2023-09-01 14:10:00");
        assert_eq!(c.last_event_at.to_string(), "2023-09-01 14:20:00");
        assert_eq!(c.event_count, 4);
    }
}

#[test]
fn generated_settings_are_kept_once() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        assert_eq!(settings::get(&mut conn, "webhook_token").unwrap(), None);
        let first = settings::get_or_insert(&mut conn, "webhook_token", "first").unwrap();
        let second = settings::get_or_insert(&mut conn, "webhook_token", "second").unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("first", "first"));
    }
}

fn notification(
    status: &str,
    created_at: chrono::NaiveDateTime,
) -> hookline_storage::notifications::NewNotification {
    hookline_storage::notifications::NewNotification {
        rule_id: None,
        rule_name: "r".into(),
        event_id: None,
        conversation_key: Some("c".into()),
        recipient: "a@b.io".into(),
        template: "generic".into(),
        status: status.into(),
        reason: None,
        next_attempt_at: Some(created_at),
        created_at,
        updated_at: created_at,
    }
}

#[test]
fn only_the_claiming_worker_records_a_result() {
    use hookline_storage::notifications as n;
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        let now = hookline_storage::now();
        n::insert(&mut conn, &notification(n::QUEUED, now)).unwrap();
        let claimed = n::claim_due(
            &mut conn,
            "worker-a",
            now,
            now + chrono::Duration::minutes(5),
            10,
        )
        .unwrap();
        assert_eq!(claimed.len(), 1);
        let id = claimed[0].id;
        assert!(
            !n::mark_sent(&mut conn, id, "worker-b", "s", "250 ok", None, now).unwrap(),
            "{}",
            test_db.name()
        );
        assert!(!n::mark_failed(&mut conn, id, "worker-b", None, "boom", None, now).unwrap());
        assert_eq!(n::get(&mut conn, id).unwrap().unwrap().status, n::SENDING);
        assert!(n::mark_sent(&mut conn, id, "worker-a", "s", "250 ok", None, now).unwrap());
        assert_eq!(n::get(&mut conn, id).unwrap().unwrap().status, n::SENT);
        // A resend of a sent one works; of a queued one it does not.
        assert!(n::requeue(&mut conn, id, now).unwrap());
        assert!(!n::requeue(&mut conn, id, now).unwrap());
    }
}

#[test]
fn retention_keeps_emails_still_waiting_to_go_out() {
    use hookline_storage::notifications as n;
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        let old = hookline_storage::now() - chrono::Duration::days(400);
        for status in [n::QUEUED, n::FAILED, n::SENT, n::DEAD, n::SUPPRESSED] {
            n::insert(&mut conn, &notification(status, old)).unwrap();
        }
        let deleted =
            hookline_storage::retention::purge_before(&mut conn, hookline_storage::now()).unwrap();
        assert_eq!(deleted.notifications, 3, "{}", test_db.name());
        let left: Vec<String> = n::all(&mut conn)
            .unwrap()
            .into_iter()
            .map(|x| x.status)
            .collect();
        assert_eq!(left, [n::QUEUED, n::FAILED]);
    }
}

/// The webhook prepares items from their JSON as received
/// (`prepare_value`); tools and tests from the typed model (`prepare`).
/// Both must give the same rows, dedupe key and raw JSON included, or a
/// delivery would not be recognised as the duplicate of an earlier one.
#[test]
fn preparing_from_received_json_matches_preparing_from_the_model() {
    let received_at = Utc::now();
    let mut bodies = fixtures();
    bodies.push(
        json!({"events": [
            [1, 2],
            "text",
            {"event": {"type": "message", "payload": {"message": 7}}, "timestamp": 12},
            {"event": {"type": "brand_new", "payload": {"x": {"y": null}}}},
            {"b": 1, "a": "\u{0}\"é\n"}
        ]})
        .to_string()
        .into_bytes(),
    );
    let mut compared = 0;
    for body in bodies {
        let value: Value = serde_json::from_slice(&body).unwrap();
        let (raw_items, _) = Envelope::split(value).unwrap();
        let envelope = Envelope::parse(&body).unwrap();
        assert_eq!(raw_items.len(), envelope.events.len());
        for (raw, typed) in raw_items.iter().zip(&envelope.events) {
            let from_json = hookline_storage::prepare_value(raw, received_at);
            assert_eq!(from_json, prepare(typed, received_at), "{raw}");
            let stored: Value = serde_json::from_str(&from_json.event.raw).unwrap();
            assert_eq!(&stored, raw);
            compared += 1;
        }
    }
    assert_eq!(compared, 28 + 5);
}

/// A hook with a bug: it panics on events of type `boom`.
struct PanickingHook;

impl ingest::IngestHook for PanickingHook {
    fn in_transaction(
        &self,
        _: &mut hookline_storage::DbConnection,
        stored: &[ingest::NewlyStored<'_>],
    ) -> hookline_storage::diesel::QueryResult<()> {
        if stored.iter().any(|s| s.item.event.event_type == "boom") {
            panic!("a bug in the hook");
        }
        Ok(())
    }
}

#[test]
fn a_panic_while_writing_fails_only_its_request_and_the_writer_carries_on() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let writer = Ingestor::start(db.clone(), 1, std::sync::Arc::new(PanickingHook)).unwrap();
        let item = |kind: &str, n: usize| {
            let mut value: Value = serde_json::from_slice(&fixture("28-note.json")).unwrap();
            value["events"][0]["event"]["type"] = json!(kind);
            value["events"][0]["timestamp"] = json!(format!("2023-09-01 14:00:{n:02}"));
            items(value.to_string().as_bytes())
        };
        let results = runtime.block_on(async {
            // Several requests at once, so that they share a group.
            let tasks: Vec<_> = (0..6)
                .map(|n| {
                    let writer = writer.clone();
                    let prepared = item(if n == 3 { "boom" } else { "note" }, n);
                    tokio::spawn(async move { writer.store(prepared).await })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        });
        for (n, result) in results.iter().enumerate() {
            match (n, result) {
                (3, Err(hookline_storage::StorageError::Panicked(message))) => {
                    assert!(message.contains("a bug in the hook"), "{message}")
                }
                (3, other) => panic!("{}: the panicking request: {other:?}", test_db.name()),
                (_, Ok(outcome)) => assert_eq!(outcome.stored, 1),
                (_, Err(error)) => panic!("{}: request {n} failed: {error}", test_db.name()),
            }
        }
        // Nothing of the panicking request was stored, and the writer goes on.
        let mut conn = db.conn().unwrap();
        assert_eq!(events::count(&mut conn).unwrap(), 5, "{}", test_db.name());
        let later = runtime.block_on(writer.store(item("note", 30))).unwrap();
        assert_eq!(later.stored, 1);
        assert!(writer.health.verdict().is_ok());
        assert_eq!(writer.health.restarts(), 0, "contained, not restarted");
    }
}

#[test]
fn a_request_that_goes_away_is_not_counted_as_waiting() {
    let test_db = TestDatabase::sqlite();
    let db = open(&test_db);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let writer = Ingestor::start(db, 1, std::sync::Arc::new(hookline_storage::NoHook)).unwrap();
    runtime.block_on(async {
        // The client disconnects before the answer: the future is dropped.
        let store = writer.store(items(&fixture("28-note.json")));
        let _ = tokio::time::timeout(std::time::Duration::ZERO, store).await;
    });
    assert_eq!(
        writer.health.waiting(),
        0,
        "a leaked count would read as a stalled writer"
    );
    let outcome = runtime
        .block_on(writer.store(items(&fixture("23-status.json"))))
        .unwrap();
    assert_eq!(outcome.stored, 1);
    assert_eq!(writer.health.waiting(), 0);
}

/// The overview's chart: each event is counted in the hour it occurred,
/// an event at an hour's first instant in that hour, and nothing before
/// the first hour or after the last.
#[test]
fn events_are_counted_in_the_hour_they_occurred() {
    use chrono::NaiveDateTime;
    use hookline_storage::overview::{self, HourCount};
    let at = |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let note = |key: &str, when: &str| -> Vec<u8> {
        serde_json::to_vec(&json!({"events": [{
            "event": {"type": "note", "payload": {"note": key}},
            "conversation": {"key": key},
            "timestamp": when,
        }]}))
        .unwrap()
    };
    let mut create: Value =
        serde_json::from_slice(&fixture("01-conversation_create.json")).unwrap();
    create["events"][0]["timestamp"] = json!("2026-11-30 11:20:00.000000");
    let bodies = [
        note("before", "2026-11-30 09:59:59.999999"),
        note("first-instant", "2026-11-30 10:00:00.000000"),
        note("first-hour", "2026-11-30 10:59:59.999999"),
        note("second-hour", "2026-11-30 11:30:00.000000"),
        serde_json::to_vec(&create).unwrap(),
        note("last-hour", "2026-11-30 12:59:59.000000"),
        note("after", "2026-11-30 13:00:00.000000"),
    ];
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        store_bodies(&mut conn, &bodies);
        let counts = overview::events_per_hour(
            &mut conn,
            at("2026-11-30 10:00:00"),
            3,
            &["conversation_create", "message", "note"],
        )
        .unwrap();
        let row = |event_type: &str, hour: &str, count: i64| HourCount {
            event_type: event_type.to_owned(),
            hour: at(hour),
            count,
        };
        assert_eq!(
            counts,
            vec![
                row("conversation_create", "2026-11-30 11:00:00", 1),
                row("note", "2026-11-30 10:00:00", 2),
                row("note", "2026-11-30 11:00:00", 1),
                row("note", "2026-11-30 12:00:00", 1),
            ],
            "{}",
            test_db.name()
        );
    }
}

/// Ingest writes who each handover went to (the overview reads it instead
/// of parsing every handover): the agent's email, `""` for a handover to a
/// bot, nothing for other events.
#[test]
fn handovers_are_stored_with_the_agent_they_went_to() {
    use diesel::prelude::*;
    use hookline_storage::schema::events as columns;
    let mut to_bot: Value = serde_json::from_slice(&fixture("24-assignee_change.json")).unwrap();
    to_bot["events"][0]["event"]["payload"]["to"]["type"] = json!("bot");
    to_bot["events"][0]["timestamp"] = json!("2026-11-30 12:00:00.000000");
    let mut bodies = fixtures();
    bodies.push(serde_json::to_vec(&to_bot).unwrap());
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        store_bodies(&mut conn, &bodies);
        let rows: Vec<(String, Option<String>)> = columns::table
            .order(columns::id)
            .select((columns::event_type, columns::handed_to))
            .load(&mut *conn)
            .unwrap();
        assert_eq!(rows.len(), 29, "{}", test_db.name());
        let handed: Vec<Option<&str>> = rows
            .iter()
            .filter(|(t, _)| t == "assignee_change")
            .map(|(_, to)| to.as_deref())
            .collect();
        assert_eq!(
            handed,
            vec![Some("himanshu@swiftsell.biz"), Some("")],
            "{}",
            test_db.name()
        );
        assert!(
            rows.iter()
                .filter(|(t, _)| t != "assignee_change")
                .all(|(_, to)| to.is_none()),
            "{}",
            test_db.name()
        );
    }
}

/// The worst agent email a handover can carry (10,000 bytes with a NUL) is
/// stored as `actor_email` stores it: bounded, without the NUL, and equal to
/// the `actor_email` of that agent's message, so the overview still pairs
/// the handover with the agent's reply.
#[test]
fn a_huge_agent_email_is_stored_bounded_and_still_matches_the_reply() {
    use diesel::prelude::*;
    use hookline_storage::schema::events as columns;
    let email = format!("{}\u{0}@example.com", "a".repeat(10_000));
    let mut handover: Value = serde_json::from_slice(&fixture("24-assignee_change.json")).unwrap();
    handover["events"][0]["event"]["payload"]["to"]["email"] = json!(email);
    let mut reply: Value = serde_json::from_slice(&fixture("03-message-image.json")).unwrap();
    reply["events"][0]["event"]["payload"]["message_by"] =
        json!({"email": email, "id": "1", "type": "user"});
    let bodies = [handover, reply].map(|b| serde_json::to_vec(&b).unwrap());
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.conn().unwrap();
        store_bodies(&mut conn, &bodies);
        let handed_to: Option<String> = columns::table
            .filter(columns::event_type.eq("assignee_change"))
            .select(columns::handed_to)
            .first(&mut *conn)
            .unwrap();
        let replied_by: Option<String> = columns::table
            .filter(columns::event_type.eq("message"))
            .select(columns::actor_email)
            .first(&mut *conn)
            .unwrap();
        let handed_to = handed_to.expect("a handover to an agent");
        assert!(
            handed_to.len() <= hookline_model::record::MAX_INDEXED_BYTES,
            "{}: {} bytes",
            test_db.name(),
            handed_to.len()
        );
        assert!(!handed_to.contains('\0'), "{}", test_db.name());
        assert_eq!(Some(handed_to), replied_by, "{}", test_db.name());
    }
}
