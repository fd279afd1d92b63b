//! Who gets in: login throttling, sessions, tokens; and what leaves:
//! exports, outbox files, metrics.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

/// Whether `cookie` still opens a page (else: redirected to the login).
async fn session_works(app: &TestApp, cookie: &str) -> bool {
    let response = no_redirects()
        .get(format!("{}/ui/conversations", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    match response.status().as_u16() {
        200 => true,
        303 => false,
        other => panic!("unexpected status {other}"),
    }
}

async fn api_status(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .get(format!("{}/api/v1/events", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn wrong_admin_tokens_are_slowed_per_address_and_logged(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            log_to_file: true,
            ..Options::default()
        },
    );
    let mut statuses = Vec::new();
    for n in 0..50 {
        let response = api_status(&app, &app.client, &format!("guess-{n}")).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let wait: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=5).contains(&wait), "{wait}");
            assert_eq!(error_body(response).await["error"], "too_many_attempts");
        }
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // The right token from the same address waits too ...
    assert_eq!(
        api_status(&app, &app.client, ADMIN_TOKEN).await.status(),
        429
    );
    assert_eq!(
        login(&app, ADMIN_TOKEN).await,
        Err(429),
        "the form shares the count"
    );
    // ... while another address is not slowed.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert_eq!(api_status(&app, &other, ADMIN_TOKEN).await.status(), 200);
    // Login form failures count the same way.
    let third = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut form = Vec::new();
    for _ in 0..7 {
        form.push(login_from(&app, &third, "wrong").await.err());
    }
    assert_eq!(form[..5], [Some(401); 5], "{form:?}");
    assert_eq!(form[5..], [Some(429); 2], "{form:?}");
    let log = std::fs::read_to_string(app.data_dir.path().join("server.log")).unwrap();
    assert!(
        log.contains("wrong admin token") && log.contains("127.0.0.1"),
        "{log}"
    );
    assert!(log.contains("127.0.0.3"), "{log}");
    assert!(!log.contains("guess-1"), "tokens are never logged: {log}");
}

#[test]
fn short_configured_tokens_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/h.db", dir.path().display());
    let admin = "admin-0123456789abcdef0123456789abcdef";
    let webhook = "webhook-0123456789abcdef0123456789abcdef";
    for (admin, webhook, metrics, named) in [
        ("a", webhook, None, "HOOKLINE_ADMIN_TOKEN"),
        (admin, "short-token", None, "HOOKLINE_WEBHOOK_TOKEN"),
        (admin, webhook, Some("metrics"), "HOOKLINE_METRICS_TOKEN"),
    ] {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
            "--admin-token",
            admin,
            "--webhook-token",
            webhook,
        ];
        if let Some(metrics) = metrics {
            args.extend(["--metrics-token", metrics]);
        }
        let output = hookline_cli(&args);
        assert!(!output.status.success(), "{named} was accepted");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains(named) && said.contains("at least 32 characters"),
            "{named}: {said}"
        );
    }
}

async fn logout_ends_the_session_on_the_server(db: TestDatabase) {
    let app = spawn_app(db);
    let cookie = login(&app, ADMIN_TOKEN).await.expect("login");
    let html = page(&app, "/ui/conversations", &cookie).await;
    let csrf = csrf_in(&html);
    // Nothing in the database lets a copy of it log in: only a hash of the
    // session id is stored.
    let id = cookie.trim_start_matches("hookline_session=").to_owned();
    let stored: Vec<String> = app
        .with_db(|c| {
            use hookline_storage::diesel::prelude::*;
            use hookline_storage::schema::admin_sessions::dsl::*;
            admin_sessions.select(id_hash).load(c).unwrap()
        })
        .await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], id);
    let response = no_redirects()
        .post(format!("{}/ui/logout", app.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // A copy of the cookie kept by an attacker stops working too.
    assert!(!session_works(&app, &cookie).await);
    let left: i64 = app
        .with_db(|c| {
            use hookline_storage::diesel::prelude::*;
            hookline_storage::schema::admin_sessions::table
                .count()
                .get_result(c)
                .unwrap()
        })
        .await;
    assert_eq!(left, 0);
}

async fn the_admin_token_is_kept_hashed_and_a_reset_applies_within_two_seconds(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            generated_admin_token: true,
            ..Options::default()
        },
    );
    let first = app
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("  admin token:    "))
        .expect("the generated token is printed on the first start")
        .trim()
        .to_owned();
    assert_eq!(first.len(), 64, "{first}");
    let settings: Vec<(String, String)> = app
        .with_db(|c| {
            use hookline_storage::diesel::prelude::*;
            use hookline_storage::schema::settings::dsl::*;
            settings.select((name, value)).load(c).unwrap()
        })
        .await;
    let stored = &settings
        .iter()
        .find(|(n, _)| n == "admin_token")
        .expect("stored")
        .1;
    assert!(
        stored.starts_with("sha256$") && !stored.contains(&first),
        "{stored}"
    );
    assert!(
        settings.iter().all(|(n, _)| n != "session_secret"),
        "{settings:?}"
    );
    assert!(
        settings.iter().all(|(_, v)| !v.contains(&first)),
        "{settings:?}"
    );
    assert_eq!(api_status(&app, &app.client, &first).await.status(), 200);
    let cookie = login(&app, &first).await.expect("login");

    let output = hookline_cli(&["reset-admin-token", "--database-url", &app.db_url]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    let second = said
        .lines()
        .find_map(|l| l.strip_prefix("new admin token: "))
        .expect("printed")
        .trim()
        .to_owned();
    // The session ended at once; the running server takes the new token
    // within two seconds, without a restart.
    assert!(!session_works(&app, &cookie).await);
    let reset_at = std::time::Instant::now();
    for attempt in 0u8.. {
        // Each try from its own address: wrong tokens slow an address down.
        let client = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 1, attempt]))
            .build()
            .unwrap();
        if api_status(&app, &client, &second).await.status() == 200 {
            break;
        }
        assert!(
            reset_at.elapsed() < Duration::from_secs(3),
            "the new token was not taken"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api_status(&app, &app.client, &first).await.status(), 401);
}

async fn the_webhook_token_is_printed_in_full_only_when_generated(db: TestDatabase) {
    let url = db.url.clone();
    let generate = || Options {
        tokens: Some(String::new()),
        database_url: Some(url.clone()),
        ..Options::default()
    };
    let first = spawn_app_with(Some(db), generate());
    let line = first
        .banner
        .iter()
        .find(|l| l.contains("webhook token:"))
        .expect("banner line")
        .clone();
    let token = line.split_whitespace().last().unwrap().to_owned();
    assert_eq!(token.len(), 64, "{line}");
    let second = spawn_app_with(None, generate());
    let banner = second.banner.join("\n");
    assert!(!banner.contains(&token), "{banner}");
    assert!(
        banner.contains(&format!("{}…{}", &token[..4], &token[60..])),
        "{banner}"
    );
    assert!(banner.contains("hookline webhook-token show"), "{banner}");
    let output = hookline_cli(&["webhook-token", "show", "--database-url", &url]);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), token);
    // And the token shown works.
    let response = second
        .client
        .post(second.webhook_url())
        .bearer_auth(&token)
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

// ---- exports, files, metrics ----------------------------------------------

async fn csv_exports_neutralise_formulas(db: TestDatabase) {
    let app = spawn_app(db);
    let mut note = fixture_item("28-note.json");
    note["event"]["payload"]["note"] = json!("=HYPERLINK(\"http://evil.example\",\"click\")");
    let mut text = fixture_item("02-message-text.json");
    text["event"]["payload"]["message"]["text"] = json!("+cmd|' /C calc'!A0");
    text["event"]["type"] = json!("@message");
    assert_eq!(app.post(envelope(&[note, text])).await.status(), 200);
    let response = app
        .client
        .get(format!("{}/api/v1/export?format=csv", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    let cells: Vec<&str> = csv
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|c| c.trim_start_matches('"'))
        .collect();
    for cell in &cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "a spreadsheet would evaluate {cell:?}: {csv}"
        );
    }
    assert!(csv.contains(",'@message,"), "{csv}");
}

async fn outbox_files_are_private_and_erased_with_their_visitor(db: TestDatabase) {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(db);
    assert_eq!(
        app.post(fixture("24-assignee_change.json")).await.status(),
        200
    );
    let rows = app
        .wait_for_notifications(10, "the .eml file", |rows| {
            rows.iter().any(|n| n.status == "sent")
        })
        .await;
    let outbox = app.data_dir.path().join("outbox");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&outbox), 0o700);
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&files[0]), 0o600);
    assert!(rows[0]
        .smtp_response
        .as_deref()
        .unwrap_or_default()
        .contains(files[0].to_str().unwrap()));
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/erase",
            Some(json!({"visitor": "a569015fa03d41a283ed4c66c4601966"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"]["email_files"], 1, "{body}");
    assert!(!files[0].exists(), "the email about the visitor is gone");
}

async fn metrics_can_require_a_token(db: TestDatabase) {
    let token = "metrics-token-0123456789abcdef0123456789";
    let app = spawn_app_with(
        Some(db),
        Options {
            env: vec![("HOOKLINE_METRICS_TOKEN".into(), token.into())],
            ..Options::default()
        },
    );
    let url = format!("{}/metrics", app.base);
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_body(response).await["error"], "unauthorized");
    let response = app
        .client
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the admin token is not the metrics token"
    );
    let response = app
        .client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("hookline_http_requests_total"));
}

on_both_backends!(
    wrong_admin_tokens_are_slowed_per_address_and_logged,
    logout_ends_the_session_on_the_server,
    the_admin_token_is_kept_hashed_and_a_reset_applies_within_two_seconds,
    the_webhook_token_is_printed_in_full_only_when_generated,
    csv_exports_neutralise_formulas,
    outbox_files_are_private_and_erased_with_their_visitor,
    metrics_can_require_a_token,
);
