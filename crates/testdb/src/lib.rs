//! Isolated databases for tests: a temporary SQLite file, or a fresh
//! PostgreSQL schema (dropped afterwards) when `HOOKLINE_TEST_POSTGRES_URL`
//! is set.
//!
//! A crate of its own, used only as a dev-dependency (and by the
//! benchmark tool), so that no binary hookline ships carries these helpers.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

/// The variable naming the PostgreSQL server tests may use.
pub const POSTGRES_ENV: &str = "HOOKLINE_TEST_POSTGRES_URL";

/// A database of a test's own.
pub struct TestDatabase {
    /// The URL to give hookline.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDatabase {
    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let url = format!("sqlite://{}", dir.path().join("hookline.db").display());
        TestDatabase {
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A new schema on the PostgreSQL server named by
    /// `HOOKLINE_TEST_POSTGRES_URL`; `None`, with a notice on stderr, when
    /// the variable is unset.
    pub fn postgres() -> Option<TestDatabase> {
        let Ok(server) = std::env::var(POSTGRES_ENV) else {
            eprintln!(
                "notice: {POSTGRES_ENV} is not set; skipping the PostgreSQL run of this test"
            );
            return None;
        };
        Some(TestDatabase::postgres_at(&server))
    }

    /// A new schema of its own on the PostgreSQL server at `server`.
    pub fn postgres_at(server: &str) -> TestDatabase {
        let server = server.to_owned();
        let schema = format!(
            "hl_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros()
        );
        let mut conn = admin(&server);
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("create schema {schema}: {e}"));
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-csearch_path%3D{schema}");
        TestDatabase {
            url,
            _dir: None,
            pg: Some((server, schema)),
        }
    }

    /// Both backends where available: SQLite always, PostgreSQL when set.
    pub fn each() -> Vec<TestDatabase> {
        std::iter::once(TestDatabase::sqlite())
            .chain(TestDatabase::postgres())
            .collect()
    }

    /// `sqlite` or `postgres`, for messages.
    pub fn name(&self) -> &'static str {
        if self.pg.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }
}

fn admin(server: &str) -> PgConnection {
    PgConnection::establish(server).unwrap_or_else(|e| panic!("connect to {POSTGRES_ENV}: {e}"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server, schema)) = &self.pg {
            let _ = admin(server).batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}
