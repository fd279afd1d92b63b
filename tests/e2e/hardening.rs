//! Nothing a caller or an operator sends stops ingest: settings and rules
//! out of range are refused, a failing rule is recorded while its event is
//! stored, the token is checked before the body is read, slow bodies time
//! out, odd items are stored, long values and absurd times are bounded.

use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

fn serve_with(extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/h.db", dir.path().display());
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
        .args(extra)
        .env("HOOKLINE_LOG", "error")
        .env_remove("HOOKLINE_ADMIN_TOKEN")
        .env_remove("HOOKLINE_WEBHOOK_TOKEN");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run hookline")
}

#[test]
fn settings_out_of_range_are_refused_at_start_naming_the_setting() {
    for (env, value, named) in [
        (
            "HOOKLINE_SMTP_RETRY_BASE_SECONDS",
            "1e30",
            "smtp_retry_base_seconds",
        ),
        (
            "HOOKLINE_SMTP_RETRY_BASE_SECONDS",
            "NaN",
            "smtp_retry_base_seconds",
        ),
        ("HOOKLINE_SMTP_MAX_ATTEMPTS", "0", "smtp_max_attempts"),
        ("HOOKLINE_SMTP_MAX_ATTEMPTS", "1000", "smtp_max_attempts"),
        ("HOOKLINE_RETENTION_DAYS", "4000000", "retention_days"),
        ("HOOKLINE_OUTBOX_POLL_MS", "0", "outbox_poll_ms"),
        ("HOOKLINE_MAX_BODY_BYTES", "0", "max_body_bytes"),
        ("HOOKLINE_BODY_TIMEOUT_SECONDS", "0", "body_timeout_seconds"),
        (
            "HOOKLINE_BODY_TIMEOUT_SECONDS",
            "99999",
            "body_timeout_seconds",
        ),
        (
            "HOOKLINE_RECIPIENT_HOURLY_CAP",
            "2000000",
            "recipient_hourly_cap",
        ),
    ] {
        let output = serve_with(&[], &[(env, value)]);
        assert!(!output.status.success(), "{env}={value} was accepted");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains(named) && said.contains(env),
            "{env}={value}: {said}"
        );
        assert!(!said.contains("panicked"), "{env}={value}: {said}");
    }
    // From the file too (clap's own range checks do not see it), and a
    // domain list that is not one.
    for (line, named) in [
        ("outbox_lease_seconds = 0", "outbox_lease_seconds"),
        ("sqlite_wal_limit_mb = 0", "sqlite_wal_limit_mb"),
        (
            "allowed_recipient_domains = [\"not a domain\"]",
            "allowed_recipient_domains",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookline.toml");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let output = serve_with(&["--config", file.to_str().unwrap()], &[]);
        assert!(!output.status.success(), "{line} was accepted");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(named), "{line}: {said}");
        assert!(!said.contains("panicked"), "{line}: {said}");
    }
}

async fn a_throttle_too_long_is_refused_and_an_old_stored_one_stops_nothing(db: TestDatabase) {
    let url = db.url.clone();
    let on_url = || Options {
        database_url: Some(url.clone()),
        ..Options::default()
    };
    {
        let app = spawn_app_with(None, on_url());
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/rules",
                Some(json!({"name": "huge", "on": ["note"], "to": ["lead@example.com"], "template": "generic", "throttle": "100000000d"})),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("throttle") && message.contains("366 days"),
            "{message}"
        );
        // An older hookline stored such a rule without checking it.
        app.with_db(|c| {
            hookline_storage::diesel::sql_query(
                "INSERT INTO rules (name, enabled, definition, created_at, updated_at) VALUES \
                 ('old-huge', TRUE, '{\"name\":\"old-huge\",\"enabled\":true,\"on\":[\"note\"],\"to\":[\"lead@example.com\"],\"template\":\"generic\",\"throttle\":\"100000000d\"}', \
                 CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            )
            .execute(c)
            .unwrap();
        })
        .await;
    }
    let mut app = spawn_app_with(None, on_url());
    for n in 0..3 {
        let mut note = fixture_item("28-note.json");
        note["timestamp"] = json!(format!("2023-09-01 14:00:0{n}"));
        assert_eq!(app.post(envelope(&[note])).await.status(), 200);
    }
    assert_eq!(app.event_count().await, 3);
    assert_eq!(app.readyz().await, 200);
    assert_eq!(app.terminate().code(), Some(0));
    drop(db);
}

use hookline_storage::diesel::RunQueryDsl;

/// Makes the database refuse every notification row of rule `broken`
/// (except `error` rows): a failure of that rule's own, inside the ingest
/// transaction.
fn break_rule(conn: &mut hookline_storage::DbConnection) {
    use hookline_storage::diesel::connection::SimpleConnection;
    match conn {
        hookline_storage::DbConnection::Sqlite(c) => c
            .batch_execute(
                "CREATE TRIGGER broken_rule BEFORE INSERT ON notifications \
                 WHEN NEW.rule_name = 'broken' AND NEW.status <> 'error' \
                 BEGIN SELECT RAISE(ABORT, 'induced failure of rule broken'); END;",
            )
            .unwrap(),
        hookline_storage::DbConnection::Pg(c) => c
            .batch_execute(
                "CREATE FUNCTION broken_rule() RETURNS trigger AS $$ BEGIN \
                 IF NEW.rule_name = 'broken' AND NEW.status <> 'error' THEN \
                 RAISE EXCEPTION 'induced failure of rule broken'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER broken_rule BEFORE INSERT ON notifications \
                 FOR EACH ROW EXECUTE FUNCTION broken_rule();",
            )
            .unwrap(),
    }
}

async fn a_failing_rule_is_recorded_and_its_event_stored(db: TestDatabase) {
    let app = spawn_app(db);
    app.clear_rules().await;
    for name in ["broken", "working"] {
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/rules",
                Some(json!({"name": name, "on": ["note"], "to": ["lead@example.com"], "template": "generic"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    app.with_db(break_rule).await;
    let response = app.post(fixture("28-note.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_number(&response, "Hookline-Stored"), 1);
    assert_eq!(app.event_count().await, 1);
    let rows = app
        .wait_for_notifications(10, "the working rule's email", |rows| {
            rows.iter()
                .any(|n| n.rule_name == "working" && n.status == "sent")
        })
        .await;
    let broken: Vec<_> = rows.iter().filter(|n| n.rule_name == "broken").collect();
    assert_eq!(broken.len(), 1, "{rows:?}");
    assert_eq!(broken[0].status, "error");
    let reason = broken[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("induced failure of rule broken"),
        "{reason}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("hookline_rule_errors_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookline_outbox_notifications{status=\"error\"} 1"),
        "{metrics}"
    );
}

async fn readiness_names_the_background_components(db: TestDatabase) {
    let app = spawn_app(db);
    app.wait_ready().await;
    let metrics = app.metrics().await;
    for component in ["ingest_writer", "outbox_worker"] {
        assert!(
            metrics.contains(&format!(
                "hookline_component_up{{component=\"{component}\"}} 1"
            )),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "hookline_component_restarts_total{{component=\"{component}\"}} 0"
            )),
            "{metrics}"
        );
    }
}

/// Sends `head` and then `body` on a raw connection, and reads the answer
/// (status and body) for up to `wait`.
async fn raw_request(
    app: &TestApp,
    head: &str,
    body: &[u8],
    wait: Duration,
) -> Option<(u16, String)> {
    let address = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&answer);
                    if let Some((headers, rest)) = text.split_once("\r\n\r\n") {
                        let length = headers
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(str::to_owned)
                            })
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if rest.len() >= length {
                            break;
                        }
                    }
                }
            }
        }
    })
    .await;
    if read.is_err() && answer.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

async fn a_wrong_token_is_answered_before_the_body_is_read(db: TestDatabase) {
    let app = spawn_app(db);
    // The body never completes: only a server that does not wait for it
    // can answer.
    let head =
        "POST /webhooks/swiftsell HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token\r\n\
                Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n";
    let (status, body) = raw_request(&app, head, b"{\"events\": [", Duration::from_secs(5))
        .await
        .expect("an answer before the body");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"unauthorized\""), "{body}");
    // With the right token in a header, the body is read as usual; without
    // any header token, the body's "token" field is used.
    let response = app
        .client
        .post(app.webhook_url())
        .body(json!({"token": app.token, "events": [fixture_item("28-note.json")]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.event_count().await, 1);
}

async fn a_body_that_does_not_arrive_in_time_is_answered_408(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            extra_args: vec!["--body-timeout-seconds".into(), "1".into()],
            ..Options::default()
        },
    );
    let head = format!(
        "POST /webhooks/swiftsell HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        app.token
    );
    let (status, body) = raw_request(&app, &head, b"{\"events\": [", Duration::from_secs(8))
        .await
        .expect("an answer after the body deadline");
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("body_timeout"), "{body}");
    assert_eq!(app.event_count().await, 0);
}

async fn odd_items_are_stored_not_the_delivery_refused(db: TestDatabase) {
    let app = spawn_app(db);
    let good = fixture_item("28-note.json").to_string();
    let body = format!(
        "{{\"events\": [{good}, {{\"event\": {{\"type\": \"note\", \"payload\": {{\"n\": 1e400}}}}, \"timestamp\": \"2023-09-01 10:00:00\"}}, \
         {{\"event\": {{\"type\": \"note\", \"type\": \"message\", \"payload\": {{}}}}, \"timestamp\": \"2023-09-01 10:00:01\"}}, \
         {{\"n\": -1e999999}}]}}"
    );
    let response = app.post(body.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_number(&response, "Hookline-Stored"), 4);
    // The same delivery again: each item is a duplicate.
    let again = app.post(body).await;
    assert_eq!(header_number(&again, "Hookline-Duplicates"), 4);
    let rows = app
        .with_db(|c| hookline_storage::events::all(c).unwrap())
        .await;
    let unreadable: Vec<_> = rows.iter().filter(|e| e.raw.contains("1e400")).collect();
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].event_type, "unrecognized");
    assert!(
        unreadable[0].raw.contains("\"n\": 1e400"),
        "stored as received: {}",
        unreadable[0].raw
    );
    assert!(
        unreadable[0].summary.contains("number out of range"),
        "{}",
        unreadable[0].summary
    );
    // Still refused: a body that is not JSON, or not an envelope.
    let response = app.post("{\"events\": [1e400").await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_body(response).await["error"], "invalid_json");
    let response = app.post("[1, 2]").await;
    assert_eq!(response.status(), 400);
}

async fn long_values_and_absurd_times_are_bounded(db: TestDatabase) {
    let app = spawn_app(db);
    let long_key = format!("key-{}", "k/é".repeat(4_000));
    let long_type = "t".repeat(10_000);
    let mut keyed = fixture_item("24-assignee_change.json");
    keyed["conversation"]["key"] = json!(long_key);
    let mut typed = fixture_item("28-note.json");
    typed["event"]["type"] = json!(long_type);
    let mut future = fixture_item("28-note.json");
    future["timestamp"] = json!("9999-12-31 23:59:59");
    let mut ancient = fixture_item("28-note.json");
    ancient["timestamp"] = json!("0001-01-01 00:00:00");
    let before = hookline_storage::now();
    let response = app.post(envelope(&[keyed, typed, future, ancient])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_number(&response, "Hookline-Stored"), 4);
    let rows = app
        .with_db(|c| hookline_storage::events::all(c).unwrap())
        .await;
    for row in &rows {
        for column in [Some(&row.event_type), row.conversation_key.as_ref()]
            .into_iter()
            .flatten()
        {
            assert!(
                column.len() <= hookline_storage::MAX_INDEXED_BYTES,
                "{}",
                column.len()
            );
        }
    }
    // Findable by the full value.
    let (status, body) = app
        .api(
            Method::GET,
            &format!("/api/v1/events?type={long_type}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    let (status, body) = app
        .api(
            Method::GET,
            &format!("/api/v1/conversations/{}", urlencode(&long_key)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Absurd times are filed at their receipt and keep the original in raw.
    let absurd: Vec<_> = rows
        .iter()
        .filter(|e| e.raw.contains("9999-12-31") || e.raw.contains("0001-01-01"))
        .collect();
    assert_eq!(absurd.len(), 2);
    for row in absurd {
        assert!(
            row.occurred_at >= before - chrono::Duration::seconds(1),
            "{row:?}"
        );
        assert_eq!(row.occurred_at, row.received_at);
    }
    let (_, recent) = app
        .api(
            Method::GET,
            "/api/v1/events?since=2026-01-01T00:00:00Z&type=note",
            None,
        )
        .await;
    assert_eq!(
        recent["items"].as_array().map(Vec::len),
        Some(2),
        "{recent}"
    );
}

async fn a_big_delivery_is_stored_whole_and_answered_once(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            max_body_bytes: Some(8 * 1024 * 1024),
            ..Options::default()
        },
    );
    let items: Vec<Value> = (0..1_700)
        .map(|n| {
            let mut note = fixture_item("28-note.json");
            note["conversation"]["key"] = json!(format!("big-{}", n % 50));
            note["timestamp"] = json!(format!(
                "2023-09-01 14:{:02}:{:02}.{n:06}",
                n / 60 % 60,
                n % 60
            ));
            note
        })
        .collect();
    let response = app.post(envelope(&items)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_number(&response, "Hookline-Stored"), 1_700);
    assert_eq!(app.event_count().await, 1_700);
}

on_both_backends!(
    a_throttle_too_long_is_refused_and_an_old_stored_one_stops_nothing,
    a_failing_rule_is_recorded_and_its_event_stored,
    readiness_names_the_background_components,
    a_wrong_token_is_answered_before_the_body_is_read,
    a_body_that_does_not_arrive_in_time_is_answered_408,
    odd_items_are_stored_not_the_delivery_refused,
    long_values_and_absurd_times_are_bounded,
    a_big_delivery_is_stored_whole_and_answered_once,
);

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with a notice) unless this process may mount file systems.
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!("skipped: mounting a small tmpfs needs root (run as root, as .ci/run does)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the disk; the file's path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_stores_nothing_half_and_recovers() {
    let Some(disk) = SmallDisk::mount(16) else {
        return;
    };
    let url = format!("sqlite://{}/hookline.db", disk.path().display());
    let mut app = spawn_app_with(
        None,
        Options {
            database_url: Some(url),
            ..Options::default()
        },
    );
    let note = |n: usize| {
        let mut note = fixture_item("28-note.json");
        note["timestamp"] = json!(format!(
            "2023-09-01 10:{:02}:{:02}.{n:06}",
            n / 60 % 60,
            n % 60
        ));
        note["event"]["payload"]["note"] = json!("x".repeat(2_000));
        envelope(&[note])
    };
    let mut acknowledged = 0;
    let mut n = 0;
    for _ in 0..5 {
        n += 1;
        assert_eq!(app.post(note(n)).await.status(), 200);
        acknowledged += 1;
    }
    let filler = disk.fill();
    let mut refused = None;
    for _ in 0..2_000 {
        n += 1;
        let response = app.post(note(n)).await;
        match response.status().as_u16() {
            200 => acknowledged += 1,
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                refused = Some(error_body(response).await);
                break;
            }
            other => panic!("a full disk answered {other}"),
        }
    }
    let refused = refused.expect("a full disk refuses with 503");
    assert_eq!(refused["error"], "storage_unavailable", "{refused}");
    std::fs::remove_file(filler).unwrap();
    // Space again: ingest goes on.
    let mut recovered = false;
    for _ in 0..50 {
        n += 1;
        if app.post(note(n)).await.status() == 200 {
            acknowledged += 1;
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ingest did not recover when space was freed");
    assert_eq!(
        app.event_count().await,
        acknowledged,
        "nothing half-stored, nothing acknowledged lost"
    );
    assert_eq!(app.readyz().await, 200);
    app.kill();
}
