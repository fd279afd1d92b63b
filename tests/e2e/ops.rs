//! Running it for real: configuration, readiness, metrics, graceful
//! shutdown, retention, erasure, several instances, the compose file.

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;
use crate::on_both_backends;
use hookline_storage::{conversations, events};
use hookline_testdb::TestDatabase;

fn hookline(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
    command.args(args).env("HOOKLINE_LOG", "error");
    for key in [
        "HOOKLINE_LISTEN",
        "HOOKLINE_MAX_BODY_BYTES",
        "HOOKLINE_MAIL_FROM",
        "HOOKLINE_RETENTION_DAYS",
    ] {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run hookline")
}

#[test]
fn config_layers_defaults_file_environment_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookline.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\nmax_body_bytes = 5000\nmail_from = \"file <file@x.io>\"\nretention_days = 7\nwebhook_token = \"s1,s2\"\nsmtp_url = \"smtp://user:hunter2@mail:25\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let output = hookline(
        &["config", "show", "--config", file, "--retention-days", "9"],
        &[
            ("HOOKLINE_MAX_BODY_BYTES", "6000"),
            ("HOOKLINE_RETENTION_DAYS", "8"),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains("listen = \"127.0.0.1:9999\""),
        "file over default: {shown}"
    );
    assert!(
        shown.contains("max_body_bytes = 6000"),
        "environment over file: {shown}"
    );
    assert!(
        shown.contains("retention_days = 9"),
        "flag over environment: {shown}"
    );
    assert!(
        shown.contains("mail_from = \"file <file@x.io>\""),
        "{shown}"
    );
    assert!(
        shown.contains("outbox_poll_ms = 1000"),
        "default kept: {shown}"
    );
    assert!(
        !shown.contains("s1") && !shown.contains("hunter2"),
        "secrets masked: {shown}"
    );
    assert!(
        shown.contains("smtp_url = \"smtp://user:***@mail:25\""),
        "{shown}"
    );

    std::fs::write(
        dir.path().join("bad.toml"),
        "listen = \"x\"\nlisten_adress = \"y\"\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.toml");
    let output = hookline(&["config", "show", "--config", bad.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("unknown field `listen_adress`"), "{error}");
    // serve refuses it too, before doing anything.
    let output = hookline(&["serve", "--config", bad.to_str().unwrap()], &[]);
    assert!(!output.status.success());
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore:
/// to hookline, the database goes away and comes back.
struct Proxy {
    port: u16,
    up: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let proxy = Proxy {
            port,
            up: Arc::default(),
            links: Arc::default(),
        };
        proxy.resume().await;
        proxy
    }

    async fn resume(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("proxy bind");
        let links = Arc::clone(&self.links);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links.lock().unwrap().push(link);
            }
        });
        *self.up.lock().unwrap() = Some(task);
    }

    fn cut(&self) {
        if let Some(task) = self.up.lock().unwrap().take() {
            task.abort();
        }
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_postgres_and_ingest_answers_503_meanwhile() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = Proxy::start(port).await;
    let server = std::env::var(hookline_testdb::POSTGRES_ENV).unwrap();
    let proxied = db
        .url
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
    assert_ne!(
        proxied, db.url,
        "the test URL names 127.0.0.1:5432: {server}"
    );
    let app = spawn_app_with(
        Some(db),
        Options {
            database_url: Some(proxied),
            ..Options::default()
        },
    );
    let readyz = || async {
        app.client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    app.wait_ready().await;

    let mut acknowledged = Vec::new();
    let note = |n: usize| {
        let mut item = fixture_item("28-note.json");
        item["event"]["payload"]["note"] = json!(format!("outage {n}"));
        envelope(&[item])
    };
    for n in 0..5 {
        assert_eq!(app.post(note(n)).await.status(), 200);
        acknowledged.push(n);
    }
    proxy.cut();
    assert_eq!(readyz().await, 503);
    for n in 5..8 {
        let response = app.post(note(n)).await;
        assert_eq!(response.status(), 503, "ingest while the database is away");
        assert!(response.headers().contains_key("retry-after"));
    }
    proxy.resume().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while readyz().await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "readyz did not come back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The platform retries what was refused; everything is accepted again.
    for n in 5..10 {
        let response = app.post(note(n)).await;
        assert_eq!(response.status(), 200);
        acknowledged.push(n);
    }
    let stored = app.with_db(|c| events::all(c).unwrap()).await;
    let notes: HashSet<String> = stored.iter().map(|e| e.summary.clone()).collect();
    for n in acknowledged {
        assert!(
            notes.contains(&format!(
                "agent himanshu@swiftsell.biz added a note: outage {n}"
            )),
            "outage {n} lost"
        );
    }
    assert_eq!(stored.len(), 10);
}

async fn metrics_reflect_what_was_posted(db: TestDatabase) {
    let app = spawn_app(db);
    for (_, body) in fixtures() {
        assert_eq!(app.post(body).await.status(), 200);
    }
    assert_eq!(app.post(fixture("28-note.json")).await.status(), 200);
    let refused = app
        .client
        .post(app.webhook_url())
        .bearer_auth("nope")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    app.wait_for_notifications(10, "the handover email", |rows| {
        rows.iter().any(|n| n.status == "sent")
    })
    .await;
    let text = app.metrics().await;
    for line in [
        "hookline_webhook_events_stored_total{type=\"message\"} 21",
        "hookline_webhook_events_stored_total{type=\"variables\"} 2",
        "hookline_webhook_events_stored_total{type=\"assignee_change\"} 1",
        "hookline_webhook_events_duplicate_total{type=\"note\"} 1",
        "hookline_webhook_rejected_total{cause=\"invalid_token\"} 1",
        "hookline_ingest_duration_seconds_count 29",
        "hookline_http_requests_total{route=\"/webhooks/swiftsell\",status=\"200\"} 29",
        "hookline_http_requests_total{route=\"/webhooks/swiftsell\",status=\"401\"} 1",
        "hookline_emails_sent_total 1",
        "hookline_outbox_notifications{status=\"sent\"} 1",
        "hookline_outbox_notifications{status=\"queued\"} 0",
        "hookline_outbox_oldest_pending_seconds 0",
        "hookline_database_up 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "metrics lack {line:?}:\n{text}"
        );
    }
    let evaluations: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("hookline_rule_evaluations_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        evaluations >= 2,
        "the handover and the close were evaluated: {evaluations}"
    );
    let response = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}

async fn sigterm_under_load_loses_nothing_acknowledged(db: TestDatabase) {
    let mut app = spawn_app(db);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for client_index in 0..6 {
        let acknowledged = Arc::clone(&acknowledged);
        let (client, url, token) = (app.client.clone(), app.webhook_url(), app.token.clone());
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                let text = format!("sigterm client {client_index} message {n}");
                let mut item = fixture_item("02-message-text.json");
                item["event"]["payload"]["message"]["text"] = json!(text);
                match client
                    .post(&url)
                    .bearer_auth(&token)
                    .body(envelope(&[item]))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => acknowledged.lock().unwrap().push(text),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let status = tokio::task::block_in_place(|| app.terminate());
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "too light a load: {}",
        acknowledged.len()
    );
    let stored: HashSet<String> = app
        .with_db(|c| events::all(c).unwrap())
        .await
        .iter()
        .map(|e| e.summary.trim_start_matches("visitor: ").to_owned())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|t| !stored.contains(*t))
        .collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
}

fn at(name: &str, ts: &str, conversation: &str, visitor: &str) -> Value {
    let mut item = fixture_item(name);
    item["timestamp"] = json!(ts);
    item["conversation"]["key"] = json!(conversation);
    item["visitor"]["key"] = json!(visitor);
    item
}

async fn retention_deletes_only_what_is_older(db: TestDatabase) {
    let app = spawn_app(db);
    let now = chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let items = vec![
        at(
            "02-message-text.json",
            "2001-01-01 10:00:00",
            "old",
            "v-old",
        ),
        at(
            "24-assignee_change.json",
            "2001-01-01 10:01:00",
            "old",
            "v-old",
        ),
        at(
            "02-message-text.json",
            "2001-01-01 10:00:00",
            "both",
            "v-both",
        ),
        at("28-note.json", &now, "both", "v-both"),
        at("02-message-text.json", &now, "new", "v-new"),
    ];
    assert_eq!(
        header_number(&app.post(envelope(&items)).await, "Hookline-Stored"),
        5
    );
    app.wait_for_notifications(10, "the old handover's email", |rows| {
        rows.iter().any(|n| n.status == "sent")
    })
    .await;
    let output = hookline(
        &[
            "purge",
            "--before",
            "2010-01-01",
            "--database-url",
            &app.db_url,
        ],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("3 events, 1 conversations"), "{said}");
    let (left, kept) = app
        .with_db(|c| {
            let left: Vec<String> = events::all(c)
                .unwrap()
                .iter()
                .map(|e| e.conversation_key.clone().unwrap())
                .collect();
            let kept: Vec<String> = ["old", "both", "new"]
                .iter()
                .filter(|k| conversations::get(c, k).unwrap().is_some())
                .map(|k| (*k).to_owned())
                .collect();
            (left, kept)
        })
        .await;
    assert_eq!(left, ["both", "new"]);
    assert_eq!(kept, ["both", "new"]);
}

async fn the_retention_task_runs_in_the_background(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            extra_args: [
                "--retention-days",
                "30",
                "--retention-interval-seconds",
                "1",
            ]
            .map(String::from)
            .to_vec(),
            ..Options::default()
        },
    );
    let now = chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let items = vec![
        at("02-message-text.json", "2001-01-01 10:00:00", "old", "v"),
        at("28-note.json", &now, "new", "v"),
    ];
    assert_eq!(app.post(envelope(&items)).await.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let count = app.event_count().await;
        if count == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention did not delete the old event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = app.with_db(|c| events::all(c).unwrap()).await;
    assert_eq!(left[0].conversation_key.as_deref(), Some("new"));
}

async fn erasure_forgets_a_visitor_and_reports_counts(db: TestDatabase) {
    let app = spawn_app(db);
    for (_, body) in fixtures() {
        assert_eq!(app.post(body).await.status(), 200);
    }
    app.wait_for_notifications(10, "the handover email", |rows| {
        rows.iter().any(|n| n.status == "sent")
    })
    .await;
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/erase",
            Some(json!({"visitor": "a569015fa03d41a283ed4c66c4601966"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The handover's email was written as an .eml file (no SMTP here):
    // erasing the visitor deletes it too.
    assert_eq!(
        body["deleted"],
        json!({"events": 27, "conversations": 1, "notifications": 1, "email_files": 1})
    );
    let left = app.with_db(|c| events::all(c).unwrap()).await;
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].visitor_key.as_deref(),
        Some("8eef41bf4d4248dd82d6a57c5b42fca9")
    );
    assert!(app.notifications().await.is_empty());
    let output = hookline(
        &[
            "erase",
            "--visitor",
            "8eef41bf4d4248dd82d6a57c5b42fca9",
            "--database-url",
            &app.db_url,
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&output.stdout)
        .contains("deleted 1 events, 1 conversations, 0 notifications, 0 email files"));
    assert_eq!(app.event_count().await, 0);
    let (status, _) = app
        .api(Method::POST, "/api/v1/erase", Some(json!({"visitor": ""})))
        .await;
    assert_eq!(status, 400);
}

on_both_backends!(
    metrics_reflect_what_was_posted,
    sigterm_under_load_loses_nothing_acknowledged,
    retention_deletes_only_what_is_older,
    the_retention_task_runs_in_the_background,
    erasure_forgets_a_visitor_and_reports_counts,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_behave_as_one() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let url = db.url.clone();
    let a = spawn_app(db);
    let b = spawn_app_with(
        None,
        Options {
            database_url: Some(url),
            ..Options::default()
        },
    );
    // Every item goes to both instances, at once: each is stored once.
    let items: Vec<Value> = (0..40)
        .map(|n| {
            let mut item = fixture_item("28-note.json");
            item["event"]["payload"]["note"] = json!(format!("shared {n}"));
            item
        })
        .collect();
    let mut tasks = Vec::new();
    for item in &items {
        for app in [&a, &b] {
            let request = app
                .client
                .post(app.webhook_url())
                .bearer_auth(&app.token)
                .body(envelope(std::slice::from_ref(item)));
            tasks.push(tokio::spawn(async move { request.send().await.unwrap() }));
        }
    }
    let (mut stored, mut duplicates) = (0, 0);
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status(), 200);
        stored += header_number(&response, "Hookline-Stored");
        duplicates += header_number(&response, "Hookline-Duplicates");
    }
    assert_eq!((stored, duplicates), (40, 40));
    assert_eq!(a.event_count().await, 40);
    // A rule created through one instance is used by the other.
    let rule = json!({"name": "notes-to-lead", "on": ["note"], "to": ["lead@example.com"], "template": "generic"});
    assert_eq!(
        a.api(Method::POST, "/api/v1/rules", Some(rule)).await.0,
        201
    );
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let mut item = fixture_item("28-note.json");
    item["event"]["payload"]["note"] = json!("after the rule");
    assert_eq!(b.post(envelope(&[item])).await.status(), 200);
    b.wait_for_notifications(10, "instance b to apply the rule made on a", |rows| {
        rows.iter().any(|n| n.rule_name == "notes-to-lead")
    })
    .await;
}

#[test]
fn retention_runs_in_one_process_at_a_time_on_postgres() {
    use hookline_storage::diesel::connection::SimpleConnection;
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let database = hookline_storage::Database::open(&db.url).unwrap();
    database.migrate().unwrap();
    let mut holder = database.dedicated_connection().unwrap();
    let mut other = database.dedicated_connection().unwrap();
    let cutoff = hookline_storage::now();
    // Another process holds the retention lock: this one skips its run.
    holder
        .batch_execute("SELECT pg_advisory_lock(114827819971173)")
        .unwrap();
    assert_eq!(
        hookline_storage::retention::purge_exclusive(&mut other, cutoff).unwrap(),
        None
    );
    holder
        .batch_execute("SELECT pg_advisory_unlock(114827819971173)")
        .unwrap();
    assert!(
        hookline_storage::retention::purge_exclusive(&mut other, cutoff)
            .unwrap()
            .is_some()
    );
}

#[test]
fn the_compose_file_runs_hookline_with_postgres_and_a_mail_catcher() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("docker-compose.yml is YAML");
    let compose = &docs[0];
    let services = &compose["services"];
    for name in ["postgres", "mailpit", "hookline"] {
        assert!(!services[name].is_badvalue(), "no {name} service");
    }
    let hookline = &services["hookline"];
    assert_eq!(hookline["build"].as_str(), Some("."));
    let ports: Vec<&str> = hookline["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(ports.contains(&"8080:8080"));
    let env = &hookline["environment"];
    let database = env["HOOKLINE_DATABASE_URL"].as_str().unwrap();
    assert!(
        database.starts_with("postgres://") && database.contains("@postgres:5432/"),
        "{database}"
    );
    assert_eq!(
        env["HOOKLINE_SMTP_URL"].as_str(),
        Some("smtp://mailpit:1025")
    );
    assert_eq!(env["HOOKLINE_LISTEN"].as_str(), Some("0.0.0.0:8080"));
    let check: Vec<&str> = hookline["healthcheck"]["test"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(check.iter().any(|c| c.ends_with("/readyz")), "{check:?}");
    assert_eq!(
        hookline["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    let mail_ports: Vec<&str> = services["mailpit"]["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(mail_ports.contains(&"8025:8025"), "the web inbox");
    assert!(services["mailpit"]["image"]
        .as_str()
        .unwrap()
        .starts_with("axllent/mailpit"));
    assert!(!services["postgres"]["healthcheck"].is_badvalue());
    // The image: multi-stage, non-root, healthy on /readyz.
    let dockerfile = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    assert_eq!(
        dockerfile
            .lines()
            .filter(|l| l.starts_with("FROM "))
            .count(),
        2
    );
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "root");
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/readyz"));
}
