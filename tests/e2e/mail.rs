//! Emails that look like real mail, checked with a MIME parser: a
//! Message-ID of their own, marked as machine-sent, threaded per
//! conversation, HTML with a language and a title.

use mailparse::MailHeaderMap;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp::{Received, SmtpServer};
use hookline_testdb::TestDatabase;

fn header(email: &Received, name: &str) -> Option<String> {
    email.parsed().headers.get_first_value(name)
}

/// Checks what every email carries; its Message-ID.
fn machine_mail(email: &Received, domain: &str) -> String {
    let id = header(email, "Message-ID").expect("a Message-ID");
    let inner = id
        .trim()
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or_else(|| panic!("{id}"));
    let (local, at) = inner.split_once('@').unwrap_or_else(|| panic!("{id}"));
    assert_eq!(at, domain, "{id}");
    assert_eq!(local.len(), 32, "{id}");
    assert_eq!(
        header(email, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        header(email, "X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    let html = email.part("text/html");
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(
        html.contains("<title>") && html.contains("</title>"),
        "{html}"
    );
    id
}

async fn emails_are_marked_identified_and_threaded_per_conversation(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(
        Some(db),
        Options {
            smtp_port: Some(smtp.port),
            ..Options::default()
        },
    );
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/rules",
            Some(json!({"name": "notes", "on": ["note"], "to": ["lead@example.com"], "template": "generic"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut other = fixture_item("24-assignee_change.json");
    other["conversation"]["key"] = json!("another-conversation");
    // Two emails about the fixture conversation, one about another.
    assert_eq!(
        app.post(envelope(&[
            fixture_item("24-assignee_change.json"),
            fixture_item("28-note.json"),
            other
        ]))
        .await
        .status(),
        200
    );
    let received = smtp.wait_for(3, 15).await;
    let mut ids = Vec::new();
    let mut threads = Vec::new();
    for email in &received {
        ids.push(machine_mail(email, "localhost"));
        let replying = header(email, "In-Reply-To").expect("In-Reply-To");
        assert_eq!(header(email, "References"), Some(replying.clone()));
        let key = if email.part("text/plain").contains("another-conversation") {
            "another"
        } else {
            "fixture"
        };
        threads.push((key, replying));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each email has its own Message-ID");
    let of = |key: &str| {
        threads
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, t)| t.clone())
            .collect::<Vec<_>>()
    };
    let (fixture, another) = (of("fixture"), of("another"));
    assert_eq!(fixture.len(), 2, "{threads:?}");
    assert_eq!(fixture[0], fixture[1], "one conversation, one thread");
    assert_eq!(another.len(), 1);
    assert_ne!(
        fixture[0], another[0],
        "another conversation, another thread"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_email_is_a_full_document_marked_as_machine_sent() {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(["send-test-email", "--to", "ops@example.com"])
            .args(["--smtp-url", &format!("smtp://127.0.0.1:{port}")])
            .args(["--mail-from", "hookline <hookline@example.com>"])
            .env("HOOKLINE_LOG", "error")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(output.status.success());
    let email = smtp.wait_for(1, 10).await.remove(0);
    machine_mail(&email, "example.com");
    assert_eq!(header(&email, "In-Reply-To"), None, "no conversation");
    let html = email.part("text/html");
    assert!(
        html.starts_with("<!doctype html>") && html.contains("</html>"),
        "{html}"
    );
}

on_both_backends!(emails_are_marked_identified_and_threaded_per_conversation);
