//! Word search over stored events (`q=`), through the index on both
//! backends, on real SQLite files and, when `HOOKLINE_TEST_POSTGRES_URL` is
//! set, a real PostgreSQL server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use hookline_model::Envelope;
use hookline_storage::{events, ingest, prepare, retention, search, Database, DbConnection};
use hookline_testdb::TestDatabase;

const MESSAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/swiftsell/02-message-text.json"
);

/// Stores one visitor message per text, each in its own conversation, on
/// the given day (`2023-09-DD`).
fn store(conn: &mut DbConnection, texts: &[&str], day: u32) {
    let fixture = std::fs::read_to_string(MESSAGE).unwrap();
    let mut prepared = Vec::new();
    for (n, text) in texts.iter().enumerate() {
        let mut value: serde_json::Value = serde_json::from_str(&fixture).unwrap();
        let item = &mut value["events"][0];
        item["event"]["payload"]["message"]["text"] = (*text).into();
        item["conversation"]["key"] = format!("search-{day}-{n}").into();
        item["timestamp"] = format!("2023-09-{day:02} 10:00:{n:02}").into();
        let envelope = Envelope::from_value(value).unwrap();
        prepared.push(prepare(&envelope.events[0], Utc::now()));
    }
    ingest::store_group(conn, &[&prepared]).unwrap();
}

/// The texts of the events `q` finds, sorted.
fn found(conn: &mut DbConnection, q: &str) -> Vec<String> {
    let filter = events::EventFilter {
        q: Some(q.to_owned()),
        ..Default::default()
    };
    let mut texts: Vec<String> = events::page(conn, &filter, None, 100)
        .unwrap()
        .iter()
        .map(|e| {
            let raw: serde_json::Value = serde_json::from_str(&e.raw).unwrap();
            raw["event"]["payload"]["message"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    texts.sort();
    texts
}

fn sorted(texts: &[&str]) -> Vec<String> {
    let mut texts: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
    texts.sort();
    texts
}

fn index_all(conn: &mut DbConnection) {
    while search::index_pending(conn, 2).unwrap() > 0 {}
    assert_eq!(search::unindexed(conn).unwrap(), 0);
}

const TEXTS: [&str; 5] = [
    "Please write to Alice@Example.com about the invoice",
    "Grüße aus Köln, the invoice is late",
    "50% off_sale @@ today",
    "OR NOT \"quoted\" NEAR(words)",
    "nothing to see",
];

fn open(test_db: &TestDatabase) -> Database {
    let db = Database::open(&test_db.url).unwrap();
    db.migrate().unwrap();
    db
}

#[test]
fn every_word_of_a_query_is_found_as_a_whole_word_or_with_star_as_a_start() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.dedicated_connection().unwrap();
        store(&mut conn, &TEXTS, 1);
        index_all(&mut conn);
        let name = test_db.name();
        assert_eq!(found(&mut conn, "alice@example.com"), [TEXTS[0]], "{name}");
        assert_eq!(found(&mut conn, "EXAMPLE"), [TEXTS[0]], "{name}: any case");
        assert_eq!(
            found(&mut conn, "invo*"),
            sorted(&[TEXTS[0], TEXTS[1]]),
            "{name}: a prefix, asked for"
        );
        assert!(
            found(&mut conn, "invo").is_empty(),
            "{name}: without `*`, whole words only"
        );
        assert_eq!(
            found(&mut conn, "invoice late"),
            [TEXTS[1]],
            "{name}: every word"
        );
        assert_eq!(
            found(&mut conn, "köln"),
            [TEXTS[1]],
            "{name}: letters beyond ASCII"
        );
        assert!(
            found(&mut conn, "nvoice").is_empty(),
            "{name}: inside a word"
        );
        assert!(found(&mut conn, "invoice absent").is_empty(), "{name}");
        // Search syntax in the query is read as words, never as operators.
        assert_eq!(
            found(&mut conn, "OR NOT \"quoted\" NEAR(words)*"),
            [TEXTS[3]],
            "{name}"
        );
        assert_eq!(found(&mut conn, "near"), [TEXTS[3]], "{name}");
        // No word at all: the text itself, anywhere (wildcards literal).
        assert_eq!(found(&mut conn, "@@"), [TEXTS[2]], "{name}");
        assert_eq!(found(&mut conn, "%"), [TEXTS[2]], "{name}");
        assert!(found(&mut conn, "%%").is_empty(), "{name}");
        // The summary is searched too.
        assert_eq!(found(&mut conn, "visitor nothing").len(), 1, "{name}");
    }
}

#[test]
fn events_not_indexed_yet_are_found_by_a_scan() {
    // SQLite indexes in the writer's idle moments; PostgreSQL on insert, so
    // there every event is indexed at once.
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.dedicated_connection().unwrap();
        store(&mut conn, &TEXTS[..2], 1);
        index_all(&mut conn);
        store(&mut conn, &TEXTS[2..], 2);
        let name = test_db.name();
        let waiting = search::unindexed(&mut conn).unwrap();
        match db.backend() {
            hookline_storage::Backend::Sqlite => assert_eq!(waiting, 3, "{name}"),
            hookline_storage::Backend::Postgres => assert_eq!(waiting, 0, "{name}"),
        }
        assert_eq!(
            found(&mut conn, "invoice"),
            sorted(&[TEXTS[0], TEXTS[1]]),
            "{name}"
        );
        assert_eq!(found(&mut conn, "near words"), [TEXTS[3]], "{name}");
        assert_eq!(found(&mut conn, "nothing see"), [TEXTS[4]], "{name}");
        assert!(found(&mut conn, "nothing absent").is_empty(), "{name}");
        index_all(&mut conn);
        assert_eq!(found(&mut conn, "near words"), [TEXTS[3]], "{name}");
    }
}

#[test]
fn deleted_events_leave_the_index() {
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.dedicated_connection().unwrap();
        store(&mut conn, &["an old invoice"], 1);
        store(&mut conn, &["a new invoice"], 3);
        index_all(&mut conn);
        let cutoff = chrono::NaiveDate::from_ymd_opt(2023, 9, 2)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        retention::purge_before(&mut conn, cutoff).unwrap();
        assert_eq!(
            found(&mut conn, "invoice"),
            ["a new invoice"],
            "{}",
            test_db.name()
        );
        if db.backend() == hookline_storage::Backend::Sqlite {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let left: Count = diesel::sql_query(
                "SELECT count(*) AS n FROM events_search WHERE events_search MATCH 'invoice'",
            )
            .get_result(&mut conn)
            .unwrap();
            assert_eq!(left.n, 1, "the purged event's words are gone");
        }
    }
}

/// Stores `count` visitor messages whose times are not in the order of
/// their ids (stored in a shuffled order of time): message `k` (by time)
/// says "common" when `k` is even, "rare" for the three oldest, and its
/// number.
fn store_shuffled(conn: &mut DbConnection, count: usize) {
    let fixture = std::fs::read_to_string(MESSAGE).unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2023, 9, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut prepared = Vec::new();
    for i in 0..count {
        let k = (i * 7_919) % count;
        let mut words = vec![format!("number{k}")];
        if k.is_multiple_of(2) {
            words.push("common".to_owned());
        }
        if k < 3 {
            words.push("rare".to_owned());
        }
        let mut value: serde_json::Value = serde_json::from_str(&fixture).unwrap();
        let item = &mut value["events"][0];
        item["event"]["payload"]["message"]["text"] = words.join(" ").into();
        item["conversation"]["key"] = format!("shuffled-{}", k % 7).into();
        item["timestamp"] = (start + chrono::Duration::seconds(k as i64))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
            .into();
        let envelope = Envelope::from_value(value).unwrap();
        prepared.push(prepare(&envelope.events[0], Utc::now()));
        if prepared.len() == 500 {
            ingest::store_group(conn, &[&prepared]).unwrap();
            prepared.clear();
        }
    }
    ingest::store_group(conn, &[&prepared]).unwrap();
}

/// Every page of `q`, followed by cursor: the numbers of the messages, in
/// the order given.
fn numbers_paged(conn: &mut DbConnection, q: &str, limit: i64) -> Vec<usize> {
    let filter = events::EventFilter {
        q: Some(q.to_owned()),
        ..Default::default()
    };
    let mut numbers = Vec::new();
    let mut cursor = None;
    loop {
        let page = events::page(conn, &filter, cursor, limit).unwrap();
        for event in &page {
            let raw: serde_json::Value = serde_json::from_str(&event.raw).unwrap();
            let text = raw["event"]["payload"]["message"]["text"].as_str().unwrap();
            numbers.push(
                text["number".len()..]
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
        match page.last() {
            Some(last) if page.len() as i64 == limit => cursor = Some((last.occurred_at, last.id)),
            _ => return numbers,
        }
    }
}

#[test]
fn searches_page_newest_first_whether_their_words_are_common_or_rare() {
    // More events than the newest window a search looks at first, stored
    // out of time order, half of them indexed (SQLite), half found by the
    // scan of the unindexed tail.
    let count = 2 * events::SEARCH_WINDOW as usize + 101;
    for test_db in TestDatabase::each() {
        let db = open(&test_db);
        let mut conn = db.dedicated_connection().unwrap();
        store_shuffled(&mut conn, count);
        search::index_pending(&mut conn, count as i64 / 2).unwrap();
        let name = test_db.name();
        let newest_first = |keep: &dyn Fn(usize) -> bool| -> Vec<usize> {
            (0..count).rev().filter(|k| keep(*k)).collect()
        };
        // A common word: each page is found among the newest events.
        assert_eq!(
            numbers_paged(&mut conn, "common", 97),
            newest_first(&|k| k.is_multiple_of(2)),
            "{name}"
        );
        // A rare word, only in the oldest events: the whole history.
        assert_eq!(numbers_paged(&mut conn, "rare", 50), [2, 1, 0], "{name}");
        assert_eq!(
            numbers_paged(&mut conn, "rare common", 50),
            [2, 0],
            "{name}"
        );
        assert!(numbers_paged(&mut conn, "absent", 50).is_empty(), "{name}");
        // The same answers once everything is indexed.
        while search::index_pending(&mut conn, 500).unwrap() > 0 {}
        assert_eq!(
            numbers_paged(&mut conn, "common", 500),
            newest_first(&|k| k.is_multiple_of(2)),
            "{name}"
        );
        assert_eq!(numbers_paged(&mut conn, "number7", 50), [7], "{name}");
    }
}
