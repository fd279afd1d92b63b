//! Alert rules and email: real SMTP (an in-process server), both backends.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp::SmtpServer;
use hookline_storage::notifications::Notification;
use hookline_testdb::TestDatabase;

const AGENT: &str = "himanshu@swiftsell.biz";

fn with_smtp(smtp: &SmtpServer) -> Options {
    Options {
        smtp_port: Some(smtp.port),
        ..Options::default()
    }
}

/// Fixture 24 (the handover) at another time: a new event each time.
fn handover_at(ts: &str) -> String {
    let mut item = fixture_item("24-assignee_change.json");
    item["timestamp"] = json!(ts);
    envelope(&[item])
}

async fn handover_emails_the_new_agent_once(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), with_smtp(&smtp));
    for (name, body) in fixtures().into_iter().take(22) {
        assert_eq!(app.post(body).await.status(), 200, "{name}");
    }
    let response = app.post(fixture("24-assignee_change.json")).await;
    assert_eq!(header_number(&response, "Hookline-Stored"), 1);
    let received = smtp.wait_for(1, 10).await;
    let email = &received[0];
    assert_eq!(email.to, vec![AGENT.to_owned()]);
    assert!(email.from.contains("hookline@localhost"), "{}", email.from);
    let subject = email.subject();
    assert!(
        subject.starts_with("Handover: ") && subject.contains("is now yours (WEB)"),
        "{subject}"
    );
    let text = email.part("text/plain");
    assert!(
        text.contains(
            "bot seq_user@swiftsell.biz handed a conversation over to agent himanshu@swiftsell.biz"
        ),
        "{text}"
    );
    assert!(text.contains("Conversation: Visitor - A27187"), "{text}");
    // The transcript so far: messages up to the handover, with media links.
    assert!(
        text.contains(
            "agent himanshu@swiftsell.biz sent image photo-1579353977828-2a4eab540b9a.jpeg"
        ),
        "{text}"
    );
    assert!(text.contains("https://bucket-dev.storage.googleapis.com/8791_8292_B9DwdqiUy5Ea101257098374GOoPO0Mc_attachment.pdf"), "{text}");
    assert!(
        text.contains("Open in Swiftsell: https://app.dev.swiftsell.biz/account/476/"),
        "{text}"
    );
    assert!(
        text.contains(&format!("/ui/conversations/{CONVERSATION}")),
        "{text}"
    );
    let html = email.part("text/html");
    assert!(html.contains("Transcript so far"), "{html}");
    assert!(
        html.contains("sent image photo-1579353977828-2a4eab540b9a.jpeg"),
        "{html}"
    );

    // The platform delivers the same event again: nothing more is sent.
    let again = app.post(fixture("24-assignee_change.json")).await;
    assert_eq!(header_number(&again, "Hookline-Duplicates"), 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.received().len(), 1);
    let rows = app
        .wait_for_notifications(5, "the handover to be recorded as sent", |rows| {
            rows.iter().any(|n| n.status == "sent")
        })
        .await;
    assert_eq!(rows.len(), 1);
    let sent = &rows[0];
    assert_eq!(sent.rule_name, "handover-to-agent");
    assert_eq!(sent.recipient, AGENT);
    assert_eq!(sent.attempts, 1);
    assert!(
        sent.smtp_response
            .as_deref()
            .unwrap_or_default()
            .starts_with("250"),
        "{sent:?}"
    );
    assert_eq!(sent.subject.as_deref(), Some(subject.as_str()));
}

/// One (firing, not firing) pair of rules per operator family.
fn operator_rules() -> Vec<(Value, bool)> {
    let rule = |name: &str, field: &str, op: &str, value: Option<Value>, fires: bool| {
        let mut condition = json!({"field": field, "op": op});
        if let Some(value) = value {
            condition["value"] = value;
        }
        (
            json!({"name": name, "on": ["assignee_change"], "all": [condition],
                   "to": [format!("{name}@example.com")], "template": "generic"}),
            fires,
        )
    };
    let mut rules = vec![
        rule("eq-yes", "payload.to.type", "eq", Some(json!("USER")), true),
        rule("eq-no", "payload.to.type", "eq", Some(json!("bot")), false),
        rule(
            "ne-yes",
            "payload.from.type",
            "ne",
            Some(json!("user")),
            true,
        ),
        rule(
            "ne-no",
            "payload.from.type",
            "ne",
            Some(json!("bot")),
            false,
        ),
        rule("in-yes", "bot.id", "in", Some(json!([1, "8861"])), true),
        rule("in-no", "bot.id", "in", Some(json!([1, 2])), false),
        rule("notin-yes", "account.id", "not_in", Some(json!([1])), true),
        rule(
            "notin-no",
            "account.id",
            "not_in",
            Some(json!([476])),
            false,
        ),
        rule(
            "contains-yes",
            "payload.to.email",
            "contains",
            Some(json!("SWIFTSELL")),
            true,
        ),
        rule(
            "contains-no",
            "payload.to.email",
            "contains",
            Some(json!("gmail")),
            false,
        ),
        rule(
            "starts-yes",
            "payload.from.email",
            "starts_with",
            Some(json!("seq_")),
            true,
        ),
        rule(
            "starts-no",
            "payload.from.email",
            "starts_with",
            Some(json!("him")),
            false,
        ),
        rule(
            "matches-yes",
            "payload.to.email",
            "matches",
            Some(json!("^[a-z]+@swiftsell\\.biz$")),
            true,
        ),
        rule(
            "matches-no",
            "payload.to.email",
            "matches",
            Some(json!("^x")),
            false,
        ),
        rule("exists-yes", "payload.changed_by", "exists", None, true),
        rule("exists-no", "payload.nothing", "exists", None, false),
        rule("missing-yes", "payload.nothing", "missing", None, true),
        rule("missing-no", "payload.to", "missing", None, false),
        rule("gt-yes", "bot.id", "gt", Some(json!(8000)), true),
        rule("gt-no", "bot.id", "gt", Some(json!(8861)), false),
        rule("gte-yes", "bot.id", "gte", Some(json!(8861)), true),
        rule("lt-no", "bot.id", "lt", Some(json!(8000)), false),
        rule("lte-yes", "visitor.id", "lte", Some(json!("826373")), true),
    ];
    // Case-sensitive rules compare exactly.
    let (mut strict, _) = rule(
        "case-no",
        "payload.to.type",
        "eq",
        Some(json!("USER")),
        false,
    );
    strict["case_sensitive"] = json!(true);
    rules.push((strict, false));
    // `any`: one of them is enough.
    rules.push((
        json!({"name": "any-yes", "on": ["assignee_change"],
               "any": [{"field": "type", "eq": 1, "op": "eq", "value": "note"}, {"field": "type", "op": "eq", "value": "assignee_change"}],
               "to": ["any-yes@example.com"], "template": "generic"}),
        true,
    ));
    rules
}

async fn each_operator_family_fires_and_does_not_fire(db: TestDatabase) {
    let app = spawn_app(db);
    app.clear_rules().await;
    let rules = operator_rules();
    for (rule, _) in &rules {
        let mut rule = rule.clone();
        // The any-rule above carries a stray key on purpose: it must be refused.
        if rule["name"] == "any-yes" {
            let (status, error) = app
                .api(Method::POST, "/api/v1/rules", Some(rule.clone()))
                .await;
            assert_eq!(status, 400, "{error}");
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .contains("unknown field `eq`"),
                "{error}"
            );
            rule["any"][0] = json!({"field": "type", "op": "eq", "value": "note"});
        }
        let (status, body) = app.api(Method::POST, "/api/v1/rules", Some(rule)).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(
        app.post(fixture("24-assignee_change.json")).await.status(),
        200
    );
    let rows = app
        .wait_for_notifications(5, "the notifications of the firing rules", |rows| {
            !rows.is_empty()
        })
        .await;
    let got: HashSet<String> = rows.iter().map(|n| n.rule_name.clone()).collect();
    let want: HashSet<String> = rules
        .iter()
        .filter(|(_, fires)| *fires)
        .map(|(rule, _)| rule["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, want);
    for n in &rows {
        assert_eq!(n.recipient, format!("{}@example.com", n.rule_name));
    }
}

async fn throttle_sends_one_email_per_window_and_records_the_rest(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), with_smtp(&smtp));
    app.clear_rules().await;
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/rules",
            Some(json!({"name": "team-handover", "on": ["assignee_change"], "to": ["team@example.com"],
                        "template": "handover", "throttle": "10m"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for ts in [
        "2023-09-01 14:20:00",
        "2023-09-01 14:21:00",
        "2023-09-01 14:22:00",
    ] {
        let response = app.post(handover_at(ts)).await;
        assert_eq!(header_number(&response, "Hookline-Stored"), 1);
    }
    smtp.wait_for(1, 10).await;
    let rows = app
        .wait_for_notifications(5, "one sent and two suppressed", |rows| {
            rows.iter().filter(|n| n.status == "sent").count() == 1
        })
        .await;
    let suppressed: Vec<&Notification> = rows.iter().filter(|n| n.status == "suppressed").collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(suppressed.len(), 2);
    for n in suppressed {
        assert!(
            n.reason
                .as_deref()
                .unwrap_or_default()
                .contains("throttled"),
            "{n:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1);
}

async fn smtp_down_retries_and_delivers_each_once_it_is_back(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    smtp.set_refusing(true);
    let app = spawn_app_with(
        Some(db),
        Options {
            retry_base_seconds: Some(0.2),
            max_attempts: Some(30),
            ..with_smtp(&smtp)
        },
    );
    for ts in ["2023-09-01 15:00:00", "2023-09-01 15:01:00"] {
        let mut body: Value = serde_json::from_str(&handover_at(ts)).unwrap();
        body["events"][0]["conversation"]["key"] = json!(format!("conv-{ts}"));
        assert_eq!(app.post(body.to_string()).await.status(), 200);
    }
    let rows = app
        .wait_for_notifications(15, "failed attempts while SMTP is down", |rows| {
            rows.len() == 2 && rows.iter().all(|n| n.attempts >= 2 && n.status == "failed")
        })
        .await;
    for n in &rows {
        assert!(
            n.last_error.as_deref().unwrap_or_default().contains("451"),
            "{n:?}"
        );
        assert!(n.next_attempt_at.is_some());
    }
    assert!(smtp.received().is_empty());
    smtp.set_refusing(false);
    smtp.wait_for(2, 15).await;
    app.wait_for_notifications(10, "both sent", |rows| {
        rows.iter().all(|n| n.status == "sent")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 2, "each exactly once");
    let keys: HashSet<String> = received
        .iter()
        .map(|e| {
            e.part("text/plain")
                .lines()
                .find(|l| l.contains("/ui/conversations/"))
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 2);
}

async fn after_the_last_attempt_a_notification_is_dead(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    smtp.set_refusing(true);
    let app = spawn_app_with(
        Some(db),
        Options {
            retry_base_seconds: Some(0.1),
            max_attempts: Some(3),
            ..with_smtp(&smtp)
        },
    );
    assert_eq!(
        app.post(fixture("24-assignee_change.json")).await.status(),
        200
    );
    let rows = app
        .wait_for_notifications(15, "the notification to die", |rows| {
            rows.first().is_some_and(|n| n.status == "dead")
        })
        .await;
    assert_eq!(rows[0].attempts, 3);
    assert_eq!(rows[0].next_attempt_at, None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.refused.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "no attempt after dying"
    );
    assert!(smtp.received().is_empty());
}

async fn payload_html_is_escaped_and_subjects_stay_on_one_line(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), with_smtp(&smtp));
    let mut create = fixture_item("01-conversation_create.json");
    create["timestamp"] = json!("2023-09-01 14:00:00");
    create["event"]["payload"]["title"] = json!("Evil\r\nBcc: victim@example.com");
    for variable in create["event"]["payload"]["variables"]
        .as_array_mut()
        .unwrap()
    {
        if variable["name"] == "visitor_name" {
            variable["value"] = json!("<b>Mallory</b>\r\nX-Injected: yes");
        }
    }
    let mut message = fixture_item("02-message-text.json");
    message["timestamp"] = json!("2023-09-01 14:05:00");
    message["event"]["payload"]["message"]["text"] = json!("<script>alert(1)</script>");
    let mut handover = fixture_item("24-assignee_change.json");
    handover["timestamp"] = json!("2023-09-01 14:10:00");
    assert_eq!(
        app.post(envelope(&[create, message, handover]))
            .await
            .status(),
        200
    );
    let email = smtp.wait_for(1, 10).await.remove(0);
    let subject = email.subject();
    assert!(
        !subject.contains('\r') && !subject.contains('\n'),
        "{subject:?}"
    );
    assert!(
        subject.contains("<b>Mallory</b> X-Injected: yes"),
        "{subject:?}"
    );
    let parsed = email.parsed();
    use mailparse::MailHeaderMap;
    assert!(parsed.headers.get_first_value("Bcc").is_none());
    assert!(parsed.headers.get_first_value("X-Injected").is_none());
    let html = email.part("text/html");
    assert!(
        html.contains("visitor: &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;b&gt;Mallory&lt;/b&gt;"), "{html}");
    let text = email.part("text/plain");
    assert!(
        text.contains("visitor: <script>alert(1)</script>"),
        "plain text shows the text as sent: {text}"
    );
}

async fn without_smtp_the_handover_is_written_as_an_eml_file(db: TestDatabase) {
    let app = spawn_app(db);
    for (_, body) in fixtures() {
        assert_eq!(app.post(body).await.status(), 200);
    }
    let outbox = app.data_dir.path().join("outbox");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let file = loop {
        let found = std::fs::read_dir(&outbox)
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "eml"))
            })
            .ok()
            .flatten();
        if let Some(file) = found {
            break file;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no .eml in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let eml = std::fs::read_to_string(&file).unwrap();
    assert!(eml.contains("To: himanshu@swiftsell.biz"), "{eml}");
    assert!(eml.contains("Subject: Handover: "), "{eml}");
    let rows = app
        .wait_for_notifications(5, "the file delivery to be recorded", |rows| {
            rows.iter().any(|n| n.status == "sent")
        })
        .await;
    assert!(rows[0]
        .smtp_response
        .as_deref()
        .unwrap_or_default()
        .contains(".eml"));
}

/// Rules judge each event against its conversation as of that event, even
/// when later events of the conversation arrive in the same delivery.
async fn rules_see_each_events_own_conversation_state(db: TestDatabase) {
    let app = spawn_app(db);
    let agent = |email: &str| json!({"email": email, "id": "1", "type": "user"});
    let mut to_a = fixture_item("24-assignee_change.json");
    to_a["timestamp"] = json!("2023-09-01 14:00:00");
    to_a["event"]["payload"]["to"] = agent("agent-a@example.com");
    let mut close = fixture_item("23-status.json");
    close["timestamp"] = json!("2023-09-01 14:05:00");
    close["event"]["payload"]["closed_by"] = agent("agent-b@example.com");
    let mut to_b = fixture_item("24-assignee_change.json");
    to_b["timestamp"] = json!("2023-09-01 14:10:00");
    to_b["event"]["payload"]["to"] = agent("agent-b@example.com");
    let response = app.post(envelope(&[to_a, close, to_b])).await;
    assert_eq!(header_number(&response, "Hookline-Stored"), 3);
    let rows = app
        .wait_for_notifications(10, "three notifications", |rows| rows.len() == 3)
        .await;
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|n| (n.rule_name.clone(), n.recipient.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "closed-by-someone-else".to_owned(),
                "agent-a@example.com".to_owned()
            ),
            (
                "handover-to-agent".to_owned(),
                "agent-a@example.com".to_owned()
            ),
            (
                "handover-to-agent".to_owned(),
                "agent-b@example.com".to_owned()
            ),
        ],
        "the close was made by B while A was the assignee"
    );
}

on_both_backends!(
    rules_see_each_events_own_conversation_state,
    without_smtp_the_handover_is_written_as_an_eml_file,
    handover_emails_the_new_agent_once,
    each_operator_family_fires_and_does_not_fire,
    throttle_sends_one_email_per_window_and_records_the_rest,
    smtp_down_retries_and_delivers_each_once_it_is_back,
    after_the_last_attempt_a_notification_is_dead,
    payload_html_is_escaped_and_subjects_stay_on_one_line,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_postgres_send_each_notification_once() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let smtp = SmtpServer::start().await;
    let url = db.url.clone();
    let first = spawn_app_with(Some(db), with_smtp(&smtp));
    let second = spawn_app_with(
        None,
        Options {
            database_url: Some(url),
            ..with_smtp(&smtp)
        },
    );
    let total = 30;
    for n in 0..total {
        let mut item = fixture_item("24-assignee_change.json");
        item["conversation"]["key"] = json!(format!("two-workers-{n}"));
        let app = if n % 2 == 0 { &first } else { &second };
        assert_eq!(app.post(envelope(&[item])).await.status(), 200);
    }
    smtp.wait_for(total, 20).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let received = smtp.received();
    assert_eq!(received.len(), total, "every notification exactly once");
    let keys: HashSet<String> = received
        .iter()
        .filter_map(|e| {
            let text = e.part("text/plain");
            let line = text.lines().find(|l| l.contains("/ui/conversations/"))?;
            Some(line.rsplit('/').next()?.trim().to_owned())
        })
        .collect();
    assert_eq!(keys.len(), total);
    let rows = first.notifications().await;
    let attempts: HashSet<i32> = rows.iter().map(|n| n.attempts).collect();
    assert_eq!(
        attempts,
        HashSet::from([1]),
        "no notification was attempted twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_email_checks_the_mail_settings() {
    let smtp = SmtpServer::start().await;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(["send-test-email", "--to", "ops@example.com"])
            .args(["--smtp-url", &format!("smtp://127.0.0.1:{}", smtp.port)])
            .args(["--mail-from", "hookline <hookline@example.com>"])
            .env("HOOKLINE_LOG", "error")
            .output()
            .map(|output| (output, smtp))
    })
    .await
    .unwrap()
    .unwrap();
    let (output, smtp) = output;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("sent to ops@example.com"));
    let received = smtp.wait_for(1, 5).await;
    assert_eq!(received[0].to, vec!["ops@example.com".to_owned()]);
    assert_eq!(received[0].subject(), "hookline test email");
    // A server that refuses says so, with a failing exit status.
    smtp.set_refusing(true);
    let port = smtp.port;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(["send-test-email", "--to", "ops@example.com"])
            .args(["--smtp-url", &format!("smtp://127.0.0.1:{port}")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("451"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// SIGTERM while an email is being handed to the mail server: hookline
/// finishes that email and records it before it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_email_being_sent() {
    let smtp = SmtpServer::start().await;
    smtp.set_slow(1500);
    let mut app = spawn_app_with(Some(TestDatabase::sqlite()), with_smtp(&smtp));
    assert_eq!(
        app.post(fixture("24-assignee_change.json")).await.status(),
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !smtp.receiving.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the email never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server holds its answer for 1.5 s; stop hookline meanwhile.
    let status = tokio::task::block_in_place(|| app.terminate());
    assert!(status.success(), "{status:?}");
    assert_eq!(smtp.received().len(), 1);
    let rows = app.notifications().await;
    assert_eq!(
        rows[0].status, "sent",
        "recorded before exiting: {:?}",
        rows[0]
    );
    assert!(rows[0]
        .smtp_response
        .as_deref()
        .unwrap_or_default()
        .starts_with("250"));
}
