//! Word search over stored events (the history's `q=` filter), backed by an
//! index on both backends, so that a search over a million events reads the
//! index instead of every row.
//!
//! What matches: every word of the query, as a whole word (or, written
//! `invo*`, as the start of one), in the event's summary or raw JSON, in any
//! case. Whole words by default because a prefix costs the index far more:
//! FTS5 merges the lists of every word with that start before it can answer,
//! measured at 12-45 ms for a word in 1 event of 28 over a million events,
//! against 0.3-0.6 ms for the word itself. Words are what is left
//! between characters that are neither letters nor digits, so
//! `alice@example.com` is the three words `alice example com`, and finds
//! an event holding that address. A query with no word at all (`@@`) is
//! matched as text anywhere, by a scan.
//!
//! - PostgreSQL keeps the words in a generated `tsvector` column with a GIN
//!   index, on every insert.
//! - SQLite keeps them in an FTS5 table that the writer fills while it has
//!   nothing else to do ([`index_pending`]), so that indexing never delays
//!   a webhook's answer. Events above `search_progress.indexed_through`
//!   (stored in the last moments, or during a burst) are matched by a scan
//!   of those events only, word by word as text, until they are indexed.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use crate::backend::{full_text, FullText};
use crate::events::{contains_pattern, lower};
use crate::schema::events;
use crate::DbConnection;

/// The most words a query is searched for; more are ignored.
pub const MAX_WORDS: usize = 16;

/// The raw JSON an event is searched in: its first 64 KiB (both backends).
pub const INDEXED_RAW_BYTES: i64 = 65_536;

/// Events the writer indexes in one idle moment: small enough that a
/// webhook arriving meanwhile waits a few milliseconds at most.
pub const INDEX_BATCH: i64 = 200;

/// One word of a query: lower-cased letters and digits, and whether it was
/// written with a `*` right after it (`invo*`: any word starting so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub prefix: bool,
}

/// The words of a query: lower-cased runs of letters and digits, at most
/// [`MAX_WORDS`], each at most 64 characters; a `*` right after a word makes
/// it a prefix.
pub fn words(query: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut rest = query;
    while words.len() < MAX_WORDS {
        let Some(start) = rest.find(char::is_alphanumeric) else {
            break;
        };
        rest = &rest[start..];
        let end = rest
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(rest.len());
        words.push(Word {
            text: rest[..end]
                .chars()
                .take(64)
                .collect::<String>()
                .to_lowercase(),
            prefix: rest[end..].starts_with('*'),
        });
        rest = &rest[end..];
    }
    words
}

/// `"w1" AND "w2"*`: each word, as a prefix where asked. Words hold only
/// letters and digits, so quoting them is enough to keep FTS5 from reading
/// operators.
fn fts5_query(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"{}", w.text, if w.prefix { "*" } else { "" }))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `w1 & w2:*`, for `to_tsquery('simple', …)`; the same words.
fn tsquery(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| format!("{}{}", w.text, if w.prefix { ":*" } else { "" }))
        .collect::<Vec<_>>()
        .join(" & ")
}

/// A condition on events, boxed for either backend.
pub type Predicate = Box<dyn BoxableExpression<events::table, crate::MultiBackend, SqlType = Bool>>;

/// `text` anywhere in the summary or the raw JSON, in any case: a scan.
fn contains(text: &str) -> Predicate {
    let pattern = contains_pattern(text);
    Box::new(
        lower(events::summary)
            .like(pattern.clone())
            .escape('\\')
            .or(lower(events::raw).like(pattern).escape('\\')),
    )
}

/// The condition an event must meet to match `query` (see the module
/// documentation), for the backend `conn` is on. None for a blank query.
/// With `ids`, only events with ids in that range (both ends included) are
/// asked about: the SQLite index then reads just that part of each word's
/// list.
pub fn predicate(conn: &DbConnection, query: &str, ids: Option<(i64, i64)>) -> Option<Predicate> {
    let query = query.trim();
    if query.is_empty() {
        return None;
    }
    let words = words(query);
    if words.is_empty() {
        return Some(contains(query));
    }
    Some(match full_text(conn) {
        FullText::TsVector => Box::new(
            diesel::dsl::sql::<Bool>("events.search @@ to_tsquery('simple', ")
                .bind::<Text, _>(tsquery(&words))
                .sql(")"),
        ),
        FullText::Fts5Behind => {
            // Indexed events through the index; those not indexed yet
            // word by word, by a scan of them alone.
            let matching = diesel::dsl::sql::<Bool>(
                "events.id IN (SELECT rowid FROM events_search WHERE events_search MATCH ",
            )
            .bind::<Text, _>(fts5_query(&words));
            let indexed: Predicate = match ids {
                Some((low, high)) => Box::new(
                    matching
                        .sql(" AND rowid BETWEEN ")
                        .bind::<BigInt, _>(low)
                        .sql(" AND ")
                        .bind::<BigInt, _>(high)
                        .sql(")"),
                ),
                None => Box::new(matching.sql(")")),
            };
            let mut recent: Predicate = Box::new(diesel::dsl::sql::<Bool>(
                "events.id > (SELECT indexed_through FROM search_progress WHERE id = 1)",
            ));
            for word in &words {
                recent = Box::new(recent.and(contains(&word.text)));
            }
            Box::new(indexed.or(recent))
        }
    })
}

/// Up to this many matches, a page is read from the matches (each looked up
/// by id, then sorted by time); beyond it, from the newest event back, each
/// checked against the index, which soon finds a page when matches are
/// that common. Either way a page costs at most a few thousand lookups.
pub const FEW_MATCHES: i64 = 5_000;

/// Whether `query` matches at most [`FEW_MATCHES`] indexed events (false
/// for a blank query or one without words: those are not read from the
/// index). Counting stops at the bound.
pub fn few_matches(conn: &mut DbConnection, query: &str) -> QueryResult<bool> {
    matches_at_most(conn, query, FEW_MATCHES)
}

/// Up to this many matches a word is rare: on SQLite its page is read
/// from its matches at once, without first reading the newest
/// [`crate::events::SEARCH_WINDOW`] events (measured at 200,000 events:
/// 0.5 ms instead of 4.9 ms for a word in a handful of events).
pub const RARE_MATCHES: i64 = 500;

/// Whether `query`'s words are rare enough ([`RARE_MATCHES`]) to be read
/// from their matches before anything else. Only asked on SQLite, where the
/// FTS5 count reads at most that many entries of each word's list; on
/// PostgreSQL counting even a few matches of a common word builds the
/// bitmap of all of them, so there the newest window goes first (false).
pub fn rare(conn: &mut DbConnection, query: &str) -> QueryResult<bool> {
    match conn {
        DbConnection::Sqlite(_) => matches_at_most(conn, query, RARE_MATCHES),
        DbConnection::Pg(_) => Ok(false),
    }
}

/// Whether `query` matches at most `bound` indexed events; counting stops
/// just past it.
fn matches_at_most(conn: &mut DbConnection, query: &str, bound: i64) -> QueryResult<bool> {
    let words = words(query);
    if words.is_empty() {
        return Ok(false);
    }
    let (sql, text) = match full_text(conn) {
        FullText::Fts5Behind => (
            "SELECT count(*) AS through FROM (SELECT rowid FROM events_search \
             WHERE events_search MATCH $1 LIMIT $2)",
            fts5_query(&words),
        ),
        FullText::TsVector => (
            "SELECT count(*) AS through FROM (SELECT 1 FROM events \
             WHERE search @@ to_tsquery('simple', $1) LIMIT $2) AS matches",
            tsquery(&words),
        ),
    };
    let count: Through = diesel::sql_query(sql)
        .bind::<Text, _>(text)
        .bind::<BigInt, _>(bound + 1)
        .get_result(conn)?;
    Ok(count.through <= bound)
}

/// `occurred_at` and `id` as expressions no index can order by, so that the
/// planner reads a page from the matches instead of walking the time index
/// (see [`few_matches`]). Same values, same order.
pub fn unindexed_order(conn: &DbConnection) -> (&'static str, &'static str) {
    crate::backend::unindexed_order(conn)
}

#[derive(QueryableByName)]
struct Through {
    #[diesel(sql_type = BigInt)]
    through: i64,
}

/// Indexes up to `max` events not yet in the SQLite search index, in one
/// transaction that takes the write lock first. Returns how many it
/// indexed (0: nothing left, or not SQLite).
pub fn index_pending(conn: &mut DbConnection, max: i64) -> QueryResult<usize> {
    if full_text(conn) != FullText::Fts5Behind {
        return Ok(0);
    }
    // The index can always be built again from `events`, and the batch
    // and its mark commit together: it need not wait for its own fsync.
    // The next commit of events syncs the log, this batch with it; a crash
    // before that loses the batch and its mark alike, and it is redone.
    conn.batch_execute("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")?;
    let result = index_batch(conn, max).and_then(|n| conn.batch_execute("COMMIT").map(|()| n));
    if result.is_err() {
        let _ = conn.batch_execute("ROLLBACK");
    }
    // Events are committed with FULL again; if this failed, the caller
    // drops the connection, and a new one starts with FULL.
    conn.batch_execute("PRAGMA synchronous = FULL")?;
    result
}

fn index_batch(conn: &mut DbConnection, max: i64) -> QueryResult<usize> {
    let from: Through =
        diesel::sql_query("SELECT indexed_through AS through FROM search_progress WHERE id = 1")
            .get_result(conn)?;
    // The last id of this batch: the max-th event above the mark, or the
    // newest one.
    let to: Option<Through> = diesel::sql_query(
        "SELECT max(id) AS through FROM (SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?) \
         HAVING count(*) > 0",
    )
    .bind::<BigInt, _>(from.through)
    .bind::<BigInt, _>(max)
    .get_result(conn)
    .optional()?;
    let Some(to) = to else {
        return Ok(0);
    };
    let indexed = diesel::sql_query(
        "INSERT INTO events_search (rowid, body) \
         SELECT id, summary || ' ' || substr(raw, 1, ?) FROM events WHERE id > ? AND id <= ?",
    )
    .bind::<BigInt, _>(INDEXED_RAW_BYTES)
    .bind::<BigInt, _>(from.through)
    .bind::<BigInt, _>(to.through)
    .execute(conn)?;
    diesel::sql_query("UPDATE search_progress SET indexed_through = ? WHERE id = 1")
        .bind::<BigInt, _>(to.through)
        .execute(conn)?;
    Ok(indexed)
}

/// Stored events not yet in the search index (SQLite; always 0 on
/// PostgreSQL, which indexes on insert): the ids above the index's mark.
/// Read from the ends of the primary key, not counted, so that `/metrics`
/// stays cheap while a large database is first indexed; it is the exact
/// count unless events above the mark were erased meanwhile.
pub fn unindexed(conn: &mut DbConnection) -> QueryResult<i64> {
    if full_text(conn) != FullText::Fts5Behind {
        return Ok(0);
    }
    let row: Through = diesel::sql_query(
        "SELECT max(0, coalesce((SELECT max(id) FROM events), 0) - indexed_through) AS through \
         FROM search_progress WHERE id = 1",
    )
    .get_result(conn)?;
    Ok(row.through)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_letters_and_digits_lower_cased() {
        let texts = |q: &str| words(q).into_iter().map(|w| w.text).collect::<Vec<_>>();
        assert_eq!(texts("Alice@Example.com"), ["alice", "example", "com"]);
        assert_eq!(texts("  \"OR\" NEAR(a b) *"), ["or", "near", "a", "b"]);
        assert_eq!(texts("Grüße, 東京!"), ["grüße", "東京"]);
        assert!(words("@@ -- %_ *").is_empty());
        assert_eq!(words(&"w ".repeat(100)).len(), MAX_WORDS);
        assert_eq!(words(&"x".repeat(500))[0].text.len(), 64);
    }

    #[test]
    fn a_star_right_after_a_word_makes_it_a_prefix() {
        let prefixes = |q: &str| words(q).into_iter().map(|w| w.prefix).collect::<Vec<_>>();
        assert_eq!(prefixes("invo* late"), [true, false]);
        assert_eq!(prefixes("invo * late*"), [false, true]);
        assert_eq!(prefixes("(invo)*"), [false]);
        assert_eq!(prefixes("**invo**"), [true]);
    }

    #[test]
    fn queries_quote_every_word_so_no_operator_gets_through() {
        let w = words("hello AND world*");
        assert_eq!(fts5_query(&w), "\"hello\" AND \"and\" AND \"world\"*");
        assert_eq!(tsquery(&w), "hello & and & world:*");
    }
}
