//! Where mail may go: the recipient policy, and links in what is sent.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::{handover, notifications_settled, with_smtp};
use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp::SmtpServer;
use hookline_testdb::TestDatabase;

// ---- recipient policy ----------------------------------------------------

async fn forged_handovers_cannot_mail_outside_the_allowed_domains(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(
        Some(db),
        Options {
            extra_args: vec!["--allowed-recipient-domains".into(), "swiftsell.biz".into()],
            ..with_smtp(&smtp)
        },
    );
    assert!(
        app.banner
            .iter()
            .any(|l| l.contains("recipients:     only swiftsell.biz")),
        "{:?}",
        app.banner
    );
    let forged = handover("forged", "anyone@victim.example", "2023-09-01 14:00:00");
    let lookalike = handover(
        "lookalike",
        "x@swiftsell.biz.victim.example",
        "2023-09-01 14:00:01",
    );
    let real = handover("real", "himanshu@swiftsell.biz", "2023-09-01 14:00:02");
    assert_eq!(
        app.post(envelope(&[forged, lookalike, real]))
            .await
            .status(),
        200
    );
    let rows = notifications_settled(&app, 3).await;
    for outside in ["anyone@victim.example", "x@swiftsell.biz.victim.example"] {
        let row = rows.iter().find(|r| r.recipient == outside).expect("row");
        assert_eq!(row.status, "skipped", "{row:?}");
        assert!(
            row.reason
                .as_deref()
                .unwrap_or_default()
                .contains("outside allowed_recipient_domains"),
            "{row:?}"
        );
    }
    smtp.wait_for(1, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 1, "only the allowed recipient gets mail");
    assert_eq!(received[0].to, vec!["himanshu@swiftsell.biz".to_owned()]);
}

async fn the_default_rules_send_one_email_per_conversation_per_ten_minutes(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), with_smtp(&smtp));
    // One delivery, many handovers of one conversation to one agent.
    let items: Vec<Value> = (0..40)
        .map(|n| {
            handover(
                "flood",
                "himanshu@swiftsell.biz",
                &format!("2023-09-01 14:00:{n:02}"),
            )
        })
        .collect();
    assert_eq!(app.post(envelope(&items)).await.status(), 200);
    let rows = notifications_settled(&app, 40).await;
    assert_eq!(rows.iter().filter(|r| r.status == "sent").count(), 1);
    let suppressed: Vec<_> = rows.iter().filter(|r| r.status == "suppressed").collect();
    assert_eq!(suppressed.len(), 39);
    assert!(suppressed[0]
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("within 10m"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), 1);
}

async fn one_recipient_gets_at_most_the_hourly_cap(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(
        Some(db),
        Options {
            extra_args: vec!["--recipient-hourly-cap".into(), "3".into()],
            ..with_smtp(&smtp)
        },
    );
    // Different conversations: the throttle does not apply, the cap does.
    let items: Vec<Value> = (0..10)
        .map(|n| {
            handover(
                &format!("cap-{n}"),
                "himanshu@swiftsell.biz",
                "2023-09-01 14:00:00",
            )
        })
        .collect();
    assert_eq!(app.post(envelope(&items)).await.status(), 200);
    let rows = notifications_settled(&app, 10).await;
    assert_eq!(rows.iter().filter(|r| r.status == "sent").count(), 3);
    let capped: Vec<_> = rows.iter().filter(|r| r.status == "suppressed").collect();
    assert_eq!(capped.len(), 7);
    assert!(
        capped[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("recipient_hourly_cap = 3"),
        "{:?}",
        capped[0]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), 3);
}

async fn rules_cannot_take_recipients_from_visitor_data(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), with_smtp(&smtp));
    let rule = |to: Value, allow: bool| {
        let mut rule = json!({"name": "relay", "on": ["message"], "to": to, "template": "generic"});
        if allow {
            rule["allow_visitor_recipients"] = json!(true);
        }
        rule
    };
    for to in [
        "{{conversation.visitor.email}}",
        "{{payload.message.payload.value}}",
        "{{visitor.key}}@example.com",
        "{{#if bot.id}}{{conversation.title}}{{/if}}",
    ] {
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/rules",
                Some(rule(json!([to]), false)),
            )
            .await;
        assert_eq!(status, 422, "{to}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("a visitor can set") && message.contains("allow_visitor_recipients"),
            "{to}: {message}"
        );
    }
    let many: Vec<String> = (0..51).map(|n| format!("agent{n}@example.com")).collect();
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/rules",
            Some(rule(json!(many), false)),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 50"),
        "{body}"
    );
    // Saying so explicitly is allowed.
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/rules",
            Some(rule(json!(["{{conversation.visitor.email}}"]), true)),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // An actor's email is refused at send time when the actor is the
    // visitor.
    app.clear_rules().await;
    // Each way of writing the sender's address: a field, unescaped, with
    // whitespace control, inside a block.
    for (name, to) in [
        ("by-sender", "{{payload.message_by.email}}"),
        ("by-sender-raw", "{{{payload.message_by.email}}}"),
        ("by-sender-trim", "{{~ payload.message_by.email ~}}"),
        (
            "by-actor-if",
            "{{#if event.actor.email}}{{event.actor.email}}{{/if}}",
        ),
    ] {
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/rules",
                Some(json!({"name": name, "on": ["message"], "to": [to], "template": "generic"})),
            )
            .await;
        assert_eq!(status, 201, "{to}: {body}");
    }
    let mut item = fixture_item("02-message-text.json");
    item["event"]["payload"]["message_by"] =
        json!({"type": "visitor", "email": "relay-victim@example.net", "id": null});
    assert_eq!(app.post(envelope(&[item])).await.status(), 200);
    let rows = notifications_settled(&app, 4).await;
    for row in &rows {
        assert_eq!(row.status, "skipped", "{row:?}");
        assert!(
            row.reason
                .as_deref()
                .unwrap_or_default()
                .contains("visitor"),
            "{row:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        smtp.received().is_empty(),
        "no mail to the visitor's address"
    );
}

// ---- links -----------------------------------------------------------------

const ODD_KEY: &str = "a/b?c#d 100% é";

async fn links_are_web_links_only_and_keys_are_encoded(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), with_smtp(&smtp));
    let mut evil = fixture_item("03-message-image.json");
    evil["conversation"]["key"] = json!(ODD_KEY);
    evil["event"]["payload"]["message"]["payload"]["link"] = json!("javascript:alert(5)");
    let mut good = fixture_item("03-message-image.json");
    good["conversation"]["key"] = json!(ODD_KEY);
    good["timestamp"] = json!("2023-09-01 14:13:00.000001");
    good["event"]["payload"]["message"]["payload"]["link"] = json!("https://cdn.example/cat.png");
    let handover = handover(ODD_KEY, "himanshu@swiftsell.biz", "2023-09-01 14:20:00");
    assert_eq!(
        app.post(envelope(&[evil, good, handover])).await.status(),
        200
    );
    let email = smtp.wait_for(1, 10).await.remove(0);
    let html = email.part("text/html");
    assert!(
        !html.to_lowercase().contains("javascript:alert(5)\""),
        "{html}"
    );
    assert!(!html.contains("href=\"javascript"), "{html}");
    assert!(
        html.contains("href=\"https://cdn.example/cat.png\""),
        "{html}"
    );
    assert!(
        html.contains("(javascript:alert(5))"),
        "shown as text: {html}"
    );
    let encoded = "/ui/conversations/a%2Fb%3Fc%23d%20100%25%20%C3%A9";
    assert!(html.contains(&format!("{}{encoded}\"", app.base)), "{html}");
    let text = email.part("text/plain");
    assert!(
        text.contains(&format!("History in hookline: {}{encoded}", app.base)),
        "{text}"
    );

    // The pages link the same way, and the link opens the conversation.
    let cookie = login(&app, ADMIN_TOKEN).await.expect("logged in");
    let events = page(&app, "/ui/events", &cookie).await;
    assert!(events.contains(&format!("href=\"{encoded}\"")), "{events}");
    let response = app
        .client
        .get(format!("{}{encoded}", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("cat.png"), "the conversation's page: {body}");
    let (status, body) = app
        .api(
            Method::GET,
            &format!(
                "/api/v1/conversations/{}",
                &encoded["/ui/conversations/".len()..]
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conversation"]["key"], ODD_KEY, "{body}");
}

on_both_backends!(
    forged_handovers_cannot_mail_outside_the_allowed_domains,
    the_default_rules_send_one_email_per_conversation_per_ten_minutes,
    one_recipient_gets_at_most_the_hourly_cap,
    rules_cannot_take_recipients_from_visitor_data,
    links_are_web_links_only_and_keys_are_encoded,
);

#[test]
fn rules_check_warns_where_mail_can_go() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        r#"
[[rule]]
name = "handover"
on = ["assignee_change"]
to = ["{{payload.to.email}}", "lead@elsewhere.example"]
template = "handover"
"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let output = hookline_cli(&["rules", "check", file]);
    assert!(output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("comes from payload data and any domain is allowed"),
        "{said}"
    );
    let output = hookline_cli(&[
        "rules",
        "check",
        file,
        "--allowed-recipient-domains",
        "example.com",
    ]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(!said.contains("any domain is allowed"), "{said}");
    assert!(
        said.contains("lead@elsewhere.example is outside allowed_recipient_domains"),
        "{said}"
    );
}
