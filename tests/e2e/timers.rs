//! Timer rules through the real binary: real SMTP, both backends. Events
//! carry times in the past where a test needs a timer due at once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp::SmtpServer;
use hookline_testdb::TestDatabase;

const AGENT: &str = "himanshu@swiftsell.biz";

fn options(smtp: &SmtpServer, more: &[&str]) -> Options {
    let mut extra_args = vec!["--timer-poll-ms".to_owned(), "100".to_owned()];
    extra_args.extend(more.iter().map(|s| (*s).to_owned()));
    Options {
        smtp_port: Some(smtp.port),
        extra_args,
        ..Options::default()
    }
}

/// An event time `seconds_ago` seconds back, as Swiftsell writes it.
fn ago(seconds_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds_ago))
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// The handover of fixture 24 in conversation `key`, `seconds_ago` back.
fn handover(key: &str, seconds_ago: i64) -> Value {
    let mut item = fixture_item("24-assignee_change.json");
    item["conversation"]["key"] = json!(key);
    item["timestamp"] = json!(ago(seconds_ago));
    item
}

/// A text message in conversation `key` by the visitor, or by `agent`.
fn message(key: &str, agent: Option<&str>, seconds_ago: i64) -> Value {
    let mut item = fixture_item("02-message-text.json");
    item["conversation"]["key"] = json!(key);
    item["timestamp"] = json!(ago(seconds_ago));
    if let Some(agent) = agent {
        item["event"]["payload"]["message_by"] =
            json!({"email": agent, "id": "8292", "type": "user"});
    }
    item
}

/// "A handed-over chat has no reply from its agent within `after`": the
/// agent, then the head of support at `escalate_at`.
fn no_agent_reply(after: &str, escalate_at: &str) -> Value {
    json!({
        "name": "handover-no-agent-reply",
        "to": ["{{conversation.assignee.email}}"],
        "template": "waiting",
        "timer": {
            "after": after,
            "rearm": "restart",
            "start": {"on": ["assignee_change"], "all": [{"field": "payload.to.type", "op": "eq", "value": "user"}]},
            "stop": [
                {"on": ["message"], "all": [
                    {"field": "payload.message_by.type", "op": "eq", "value": "user"},
                    {"field": "payload.message_by.email", "op": "eq", "value": "{{conversation.assignee.email}}"}
                ]},
                {"on": ["status"]}
            ],
            "escalate": [{"at": escalate_at, "to": ["head@example.com"]}]
        }
    })
}

async fn add_rule(app: &TestApp, rule: Value) -> i64 {
    app.clear_rules().await;
    let (status, body) = app.api(Method::POST, "/api/v1/rules", Some(rule)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("rule id")
}

async fn a_handover_without_reply_emails_the_agent_then_escalates_once_each(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), options(&smtp, &[]));
    add_rule(&app, no_agent_reply("5s", "10s")).await;
    let delivery = envelope(&[handover("c-waiting", 20)]);
    let response = app.post(delivery.clone()).await;
    assert_eq!(response.status(), 200);
    let received = smtp.wait_for(2, 15).await;
    // Both steps are overdue; each is sent once, and nothing more follows.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let received_now = smtp.received();
    assert_eq!(received_now.len(), 2, "{received_now:#?}");
    let mut to: Vec<String> = received.iter().map(|r| r.to.join(",")).collect();
    to.sort();
    assert_eq!(to, ["head@example.com", AGENT]);
    let first = received.iter().find(|r| r.to == [AGENT]).expect("to agent");
    let subject = first.subject();
    assert!(subject.starts_with("Waiting 2"), "{subject}");
    assert!(
        subject.contains("agent himanshu@swiftsell.biz"),
        "{subject}"
    );
    let text = first.part("text/plain");
    assert!(text.contains("has been waiting 2"), "{text}");
    assert!(text.contains("for agent himanshu@swiftsell.biz"), "{text}");
    let escalation = received
        .iter()
        .find(|r| r.to == ["head@example.com"])
        .expect("to head");
    assert!(
        escalation.subject().starts_with("Escalation: "),
        "{}",
        escalation.subject()
    );
    // The Emails page's record says which timer sent it.
    let rows = app.notifications().await;
    assert!(
        rows.iter().all(|n| n
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("timer #")),
        "{rows:#?}"
    );
    // The same handover delivered again arms nothing.
    let again = app.post(delivery).await;
    assert_eq!(header_number(&again, "Hookline-Duplicates"), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 2);
}

async fn the_agents_reply_in_time_sends_nothing(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), options(&smtp, &[]));
    add_rule(&app, no_agent_reply("5s", "10s")).await;
    // Answered 3 s after the handover, in the same delivery: the timer is
    // cancelled in the transaction that stores the answer.
    let answered = envelope(&[
        handover("c-answered", 20),
        message("c-answered", Some(AGENT), 17),
    ]);
    assert_eq!(app.post(answered).await.status(), 200);
    // Another agent's message does not count; this one waits in vain.
    let other = envelope(&[
        handover("c-unanswered", 20),
        message("c-unanswered", Some("someone@swiftsell.biz"), 17),
    ]);
    assert_eq!(app.post(other).await.status(), 200);
    let received = smtp.wait_for(2, 15).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.received().len(), 2);
    let rows = app.notifications().await;
    assert!(
        rows.iter()
            .all(|n| n.conversation_key.as_deref() == Some("c-unanswered")),
        "{rows:#?}"
    );
    assert_eq!(received.len(), 2);
    let timers = app
        .with_db(|c| hookline_storage::timers::all(c).expect("timers"))
        .await;
    let answered: Vec<&str> = timers
        .iter()
        .filter(|t| t.conversation_key == "c-answered")
        .map(|t| t.status.as_str())
        .collect();
    assert_eq!(answered, ["cancelled", "cancelled"]);
}

async fn after_an_outage_an_overdue_timer_is_summarised_once(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let mut app = spawn_app_with(
        Some(db),
        options(&smtp, &["--timer-max-lateness-seconds", "2"]),
    );
    add_rule(&app, no_agent_reply("1s", "1h")).await;
    let db_url = app.db_url.clone();
    assert_eq!(
        app.post(envelope(&[handover("c-outage", 0)]))
            .await
            .status(),
        200
    );
    // hookline dies before the timer is due, and is down for 5 s.
    app.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = spawn_app_with(
        None,
        Options {
            database_url: Some(db_url),
            ..options(&smtp, &["--timer-max-lateness-seconds", "2"])
        },
    );
    let received = smtp.wait_for(1, 15).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.received().len(), 1);
    let subject = received[0].subject();
    assert!(
        subject.contains("1 alert(s) missed while hookline was down"),
        "{subject}"
    );
    assert!(received[0].part("text/plain").contains("c-outage"));
    drop(again);
    drop(app);
}

async fn armed_timers_show_on_the_conversation_page_the_api_and_metrics(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), options(&smtp, &[]));
    add_rule(&app, no_agent_reply("1h", "2h")).await;
    assert_eq!(
        app.post(envelope(&[handover(CONVERSATION, 0)]))
            .await
            .status(),
        200
    );
    let (status, body) = app
        .api(
            Method::GET,
            &format!("/api/v1/timers?status=armed&conversation={CONVERSATION}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{body}");
    // Newest first: the escalation was armed with the first step.
    let steps: Vec<i64> = items.iter().map(|t| t["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, [2, 1]);
    assert_eq!(items[0]["recipients"], "head@example.com");
    assert_eq!(items[1]["rule"], "handover-no-agent-reply");
    let (status, body) = app
        .api(Method::GET, "/api/v1/timers?status=sleeping", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("status"),
        "{body}"
    );
    let (_, spec) = app.api(Method::GET, "/api/v1/openapi.json", None).await;
    assert!(spec["paths"]["/timers"]["get"].is_object(), "{spec}");
    assert!(spec["components"]["schemas"]["Timer"]["properties"]["due_at"].is_object());

    let cookie = login(&app, ADMIN_TOKEN).await.expect("login");
    // The Rules page lists the timer rule like any other.
    let rules_page = page(&app, "/ui/rules", &cookie).await;
    assert!(
        rules_page.contains("handover-no-agent-reply"),
        "{rules_page}"
    );
    let html = page(&app, &format!("/ui/conversations/{CONVERSATION}"), &cookie).await;
    assert!(html.contains("<h2>Timers</h2>"), "{html}");
    assert!(
        html.contains("escalates to head@example.com at ")
            && html.contains("unless a stop event arrives"),
        "{html}"
    );
    assert!(
        html.contains("alerts {{conversation.assignee.email}} at "),
        "{html}"
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("hookline_timers{status=\"armed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookline_timers_armed_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookline_timers_oldest_overdue_seconds 0"),
        "{metrics}"
    );

    // The agent answers: both are cancelled, and the page says why.
    assert_eq!(
        app.post(envelope(&[message(CONVERSATION, Some(AGENT), 0)]))
            .await
            .status(),
        200
    );
    let html = page(&app, &format!("/ui/conversations/{CONVERSATION}"), &cookie).await;
    assert_eq!(html.matches("stopped by event #").count(), 2, "{html}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("hookline_timers_cancelled_total 2"),
        "{metrics}"
    );
}

/// The rule of [`no_agent_reply`] ("5m", then "8m") as TOML, for the CLI.
const NO_AGENT_REPLY_TOML: &str = r#"
[[rule]]
name = "handover-no-agent-reply"
to = ["{{conversation.assignee.email}}"]
template = "waiting"

[rule.timer]
after = "5m"
rearm = "restart"
start = { on = ["assignee_change"], all = [{ field = "payload.to.type", op = "eq", value = "user" }] }
stop = [
  { on = ["message"], all = [{ field = "payload.message_by.type", op = "eq", value = "user" }, { field = "payload.message_by.email", op = "eq", value = "{{conversation.assignee.email}}" }] },
  { on = ["status"] },
]
escalate = [{ at = "8m", to = ["head@example.com"] }]
"#;

async fn a_timer_rules_preview_and_dry_run_say_when_it_would_have_fired(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(Some(db), options(&smtp, &[]));
    app.clear_rules().await;
    // c-late: handed over ten minutes ago, never answered (both steps);
    // c-quick: the agent answered 20 s after the handover.
    let events = [
        handover("c-late", 600),
        handover("c-quick", 500),
        message("c-quick", Some(AGENT), 480),
    ];
    assert_eq!(app.post(envelope(&events)).await.status(), 200);
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/rules/preview",
            Some(json!({"rule": no_agent_reply("5m", "8m")})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let summary = body["timer"]["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("would have fired 2 times (1 first email, 1 escalation), at "),
        "{summary}"
    );
    assert!(
        summary.ends_with("; 1 wait answered before its email"),
        "{summary}"
    );
    assert_eq!(body["complete"], true, "{body}");
    assert_eq!(body["fired_count"], 2, "{body}");
    let fired = body["fired"].as_array().expect("fired");
    assert_eq!(fired[0]["timer"]["conversation"], "c-late");
    assert_eq!(fired[0]["timer"]["step"], 1);
    assert_eq!(fired[0]["recipients"], json!([AGENT]));
    assert_eq!(fired[1]["timer"]["step"], 2);
    assert_eq!(fired[1]["recipients"], json!(["head@example.com"]));
    let subject = fired[1]["subject"].as_str().expect("subject");
    assert!(subject.starts_with("Escalation: Waiting 8m"), "{subject}");
    let answered = body["not_fired"][0]["failed"].as_str().expect("failed");
    assert!(
        answered.starts_with("answered in time: stopped by event #"),
        "{answered}"
    );
    // `rules test` over the same events says the same.
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_file = dir.path().join("rules.toml");
    std::fs::write(&rules_file, NO_AGENT_REPLY_TOML).expect("write");
    let events_file = dir.path().join("events.json");
    std::fs::write(&events_file, envelope(&events)).expect("write");
    let output = hookline_cli(&[
        "rules",
        "test",
        rules_file.to_str().expect("path"),
        "--event",
        events_file.to_str().expect("path"),
    ]);
    let text = stdout(&output);
    assert!(
        text.contains(&format!("timer rule handover-no-agent-reply: {summary}")),
        "{text}"
    );
    assert!(text.contains("step 2 of 2 · c-late"), "{text}");
    assert!(text.contains("head@example.com -> send"), "{text}");
}

on_both_backends!(
    armed_timers_show_on_the_conversation_page_the_api_and_metrics,
    a_handover_without_reply_emails_the_agent_then_escalates_once_each,
    the_agents_reply_in_time_sends_nothing,
    after_an_outage_an_overdue_timer_is_summarised_once,
    a_timer_rules_preview_and_dry_run_say_when_it_would_have_fired,
);
