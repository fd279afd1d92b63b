//! The dry run, and the five rules of the issue written from the README.

use reqwest::Method;
use serde_json::{json, Value};

use super::*;
use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

/// `hookline rules test` and `POST /rules/test`: fires or the failed
/// condition, recipients after the policy (allowed domains, a visitor as
/// recipient), throttle decisions in event order, subject and text; and
/// nothing stored or sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_tells_what_each_rule_would_do_without_storing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(&dir, "rules.toml", HANDOVER_RULES);
    let mut first = fixture_item("24-assignee_change.json");
    let mut again = first.clone();
    again["timestamp"] = json!("2023-09-01 14:18:32.000000");
    let mut later = first.clone();
    later["timestamp"] = json!("2023-09-01 14:30:00.000000");
    let mut to_visitor = first.clone();
    to_visitor["timestamp"] = json!("2023-09-01 14:31:00.000000");
    to_visitor["event"]["payload"]["to"] =
        json!({"email": "visitor@example.net", "type": "visitor"});
    first["event"]["payload"]["to"]["email"] = json!("agent@example.com");
    again["event"]["payload"]["to"]["email"] = json!("agent@example.com");
    later["event"]["payload"]["to"]["email"] = json!("agent@example.com");
    let events = write(
        &dir,
        "events.json",
        &envelope(&[first, again, later, to_visitor]),
    );
    let run = dry_run(&[
        &rules,
        "--event",
        &events,
        "--allowed-recipient-domains",
        "example.com",
    ]);
    let handover = outcome(&run, 1, "handover");
    assert_eq!(handover["fires"], true, "{handover:#}");
    let emails = handover["emails"].as_array().unwrap();
    assert_eq!(emails[0]["recipient"], "agent@example.com");
    assert_eq!(emails[0]["decision"], "send");
    assert!(emails[0]["subject"].as_str().unwrap().contains("Handover"));
    assert!(emails[0]["text"]
        .as_str()
        .unwrap()
        .contains("agent@example.com"));
    assert_eq!(emails[1]["recipient"], "lead@example.com");
    // Five minutes later: throttled; twenty minutes later: sent again.
    let again = &outcome(&run, 2, "handover")["emails"][0];
    assert_eq!(again["decision"], "suppressed", "{again:#}");
    assert!(again["reason"].as_str().unwrap().contains("throttled"));
    assert_eq!(
        outcome(&run, 3, "handover")["emails"][0]["decision"],
        "send"
    );
    // A handover to the visitor: the condition that failed, and a rule
    // without it does not email the visitor.
    let refused = outcome(&run, 4, "handover");
    assert_eq!(refused["fires"], false);
    assert!(
        refused["failed"]
            .as_str()
            .unwrap()
            .contains("payload.to.type eq \"user\""),
        "{refused:#}"
    );
    let visitor = &outcome(&run, 4, "any-handover")["emails"][0];
    assert_eq!(visitor["decision"], "skipped");
    assert!(
        visitor["reason"]
            .as_str()
            .unwrap()
            .contains("is the visitor"),
        "{visitor:#}"
    );
    let other = outcome(&run, 1, "closes");
    assert_eq!(other["fires"], false);
    assert!(other["failed"]
        .as_str()
        .unwrap()
        .contains("listens to status"));
    // The allowed domains apply.
    let run = dry_run(&[
        &rules,
        "--event",
        &events,
        "--allowed-recipient-domains",
        "example.org",
    ]);
    let skipped = &outcome(&run, 1, "handover")["emails"][0];
    assert_eq!(skipped["decision"], "skipped");
    assert!(skipped["reason"]
        .as_str()
        .unwrap()
        .contains("allowed_recipient_domains"));
    // A shipped sample by number, and a one-rule file with bare keys (as
    // the Rules page shows a rule) are taken too.
    let bare = write(
        &dir,
        "bare.toml",
        "name = \"bare\"\non = [\"status\"]\nto = [\"lead@example.com\"]\ntemplate = \"generic\"\n",
    );
    assert!(stdout(&hookline_cli(&["rules", "check", &bare])).contains("1 rule(s), all valid"));
    let run = dry_run(&[&bare, "--sample", "23"]);
    assert_eq!(outcome(&run, 1, "bare")["fires"], true, "{run:#}");
    // --conversation-state overrides conversation.* fields.
    let assigned = write(
        &dir,
        "assigned.toml",
        "name = \"assigned\"\non = [\"status\"]\nall = [{ field = \"conversation.assignee.email\", op = \"eq\", value = \"lead@example.com\" }]\nto = [\"{{conversation.assignee.email}}\"]\ntemplate = \"status_change\"\n",
    );
    let run = dry_run(&[&assigned, "--sample", "23"]);
    assert_eq!(outcome(&run, 1, "assigned")["fires"], false, "{run:#}");
    let state = write(
        &dir,
        "state.json",
        r#"{"assignee": {"type": "user", "email": "lead@example.com"}}"#,
    );
    let run = dry_run(&[&assigned, "--sample", "23", "--conversation-state", &state]);
    let fired = outcome(&run, 1, "assigned");
    assert_eq!(fired["fires"], true, "{run:#}");
    assert_eq!(fired["emails"][0]["recipient"], "lead@example.com");
    // Text output for people.
    let text = stdout(&hookline_cli(&[
        "rules", "test", &rules, "--event", &events,
    ]));
    assert!(text.contains("handover: FIRES"), "{text}");
    assert!(text.contains("closes: does not fire"), "{text}");

    // The API, with the saved rules: nothing stored, nothing queued.
    let app = spawn_app(TestDatabase::sqlite());
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/rules/test",
            Some(json!({"event": serde_json::from_slice::<Value>(&fixture("24-assignee_change.json")).unwrap()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let saved = outcome(&body["events"], 1, "handover-to-agent");
    assert_eq!(saved["fires"], true, "{body:#}");
    assert_eq!(saved["emails"][0]["recipient"], "himanshu@swiftsell.biz");
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/rules/test",
            Some(json!({"rule": {"name": "bad", "on": ["note"], "to": ["x"], "template": "generic"}, "event": {}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(app.event_count().await, 0);
    assert!(app.notifications().await.is_empty());
}

/// The five rules of the issue, written from the README's vocabulary.
const FIVE_RULES: &str = r#"
[[rule]]
name = "handover-to-agent"
on = ["assignee_change"]
all = [{ field = "payload.to.type", op = "eq", value = "user" }]
to = ["{{payload.to.email}}"]
template = "handover"

[[rule]]
name = "closed-by-visitor-or-bot-on-8861"
on = ["status"]
all = [
  { field = "payload.status", op = "starts_with", value = "close" },
  { field = "payload.closed_by.type", op = "in", value = ["visitor", "bot"] },
  { field = "bot.id", op = "eq", value = 8861 },
]
to = ["lead@example.com"]
template = "status_change"

[[rule]]
name = "refund-or-cancel"
on = ["message"]
all = [{ field = "payload.message_by.type", op = "eq", value = "visitor" }]
any = [
  { field = "payload.message.text", op = "contains", value = "refund" },
  { field = "payload.message.text", op = "contains", value = "cancel" },
]
to = ["support@example.com"]
template = "generic"
throttle = "1h"

[[rule]]
name = "label-42-added"
on = ["conversation_labels"]
all = [
  { field = "payload.action", op = "eq", value = "added" },
  { field = "payload.labels[*].id", op = "eq", value = 42 },
]
to = ["supervisor@example.com"]
template = "generic"

[[rule]]
name = "form-answer-with-email"
on = ["message"]
all = [
  { field = "payload.message.type", op = "eq", value = "form.response" },
  { field = "payload.message.payload.fields[*].type", op = "eq", value = "email" },
]
to = ["sales@example.com"]
template = "generic"
reply_to = "visitor"
"#;

/// The 28 samples and variants for the five rules, in the order posted:
/// (name, item, the rule it should fire, whether that email is sent or
/// throttled).
/// (sample name, item, the rule it should fire and the email's fate).
type Sample = (String, Value, Option<(&'static str, &'static str)>);

fn five_rule_samples() -> Vec<Sample> {
    let mut samples: Vec<Sample> = fixtures()
        .into_iter()
        .map(|(name, bytes)| {
            let item = serde_json::from_slice::<Value>(&bytes).unwrap()["events"][0].clone();
            let fires = match name.as_str() {
                "24-assignee_change.json" => Some(("handover-to-agent", "sent")),
                "20-message-form_response.json" => Some(("form-answer-with-email", "sent")),
                _ => None,
            };
            (name, item, fires)
        })
        .collect();
    let variant = |base: &str, at: &str, change: &dyn Fn(&mut Value)| {
        let mut item = fixture_item(base);
        item["timestamp"] = json!(at);
        change(&mut item);
        item
    };
    let mut add = |name: &str, item: Value, fires: Option<(&'static str, &'static str)>| {
        samples.push((name.to_owned(), item, fires))
    };
    add(
        "closed by the visitor",
        variant("23-status.json", "2023-09-01 15:00:00.000000", &|i| {
            i["event"]["payload"]["closed_by"] =
                json!({"email": null, "id": null, "type": "visitor"})
        }),
        Some(("closed-by-visitor-or-bot-on-8861", "sent")),
    );
    add(
        "closed by a bot on another bot",
        variant("23-status.json", "2023-09-01 15:01:00.000000", &|i| {
            i["event"]["payload"]["closed_by"] = json!({"email": "b@example.com", "type": "bot"});
            i["account"]["bot"]["id"] = json!(9999);
        }),
        None,
    );
    add(
        "visitor asks to cancel",
        variant("02-message-text.json", "2023-09-01 15:02:00.000000", &|i| {
            i["event"]["payload"]["message"]["text"] = json!("Can I Cancel?")
        }),
        Some(("refund-or-cancel", "sent")),
    );
    add(
        "visitor asks for a refund ten minutes later",
        variant("02-message-text.json", "2023-09-01 15:12:00.000000", &|i| {
            i["event"]["payload"]["message"]["text"] = json!("I want a REFUND")
        }),
        Some(("refund-or-cancel", "throttled")),
    );
    add(
        "an agent writes cancel",
        variant("02-message-text.json", "2023-09-01 15:13:00.000000", &|i| {
            i["event"]["payload"]["message"]["text"] = json!("you can cancel here");
            i["event"]["payload"]["message_by"] = json!({"email": "a@example.com", "type": "user"});
        }),
        None,
    );
    add(
        "labels 420 and 42 added",
        variant(
            "27-conversation_labels.json",
            "2023-09-01 15:14:00.000000",
            &|i| {
                i["event"]["payload"]["action"] = json!("added");
                i["event"]["payload"]["labels"] = json!([{"id": 420}, {"id": 42}]);
            },
        ),
        Some(("label-42-added", "sent")),
    );
    add(
        "label 420 added",
        variant(
            "27-conversation_labels.json",
            "2023-09-01 15:15:00.000000",
            &|i| {
                i["event"]["payload"]["action"] = json!("added");
                i["event"]["payload"]["labels"] = json!([{"id": 420}]);
            },
        ),
        None,
    );
    add(
        "label 42 deleted",
        variant(
            "27-conversation_labels.json",
            "2023-09-01 15:16:00.000000",
            &|i| {
                i["event"]["payload"]["labels"] = json!([{"id": 42}]);
            },
        ),
        None,
    );
    samples
}

/// Done when: five rules written from the README alone each fire on the
/// right sample and on no other, in the dry run and live with a real SMTP
/// server; the throttle, the rule-named subject and the visitor Reply-To
/// hold in both.
async fn five_rules_from_the_readme_fire_on_the_right_samples(db: TestDatabase) {
    let samples = five_rule_samples();
    let dir = tempfile::tempdir().unwrap();
    let rules = write(&dir, "rules.toml", FIVE_RULES);
    let items: Vec<Value> = samples.iter().map(|(_, item, _)| item.clone()).collect();
    let events = write(&dir, "events.json", &envelope(&items));

    // The dry run.
    let run = dry_run(&[&rules, "--event", &events]);
    for (index, (name, _, expected)) in samples.iter().enumerate() {
        let fired: Vec<(String, String)> = run[index]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["fires"] == true)
            .map(|r| {
                let decision = r["emails"][0]["decision"].as_str().unwrap_or("none");
                let decision = if decision == "send" {
                    "sent"
                } else if decision == "suppressed" {
                    "throttled"
                } else {
                    decision
                };
                (r["rule"].as_str().unwrap().to_owned(), decision.to_owned())
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(rule, decision)| (rule.to_string(), decision.to_string()))
            .collect();
        assert_eq!(fired, expected, "dry run, sample {name}: {:#}", run[index]);
    }
    let form = samples
        .iter()
        .position(|(name, _, _)| name == "20-message-form_response.json")
        .unwrap();
    let email = &outcome(&run, form + 1, "form-answer-with-email")["emails"][0];
    assert_eq!(email["reply_to"], "abc@gmail.com", "{email:#}");
    let cancel = samples
        .iter()
        .position(|(name, _, _)| name == "visitor asks to cancel")
        .unwrap();
    let subject = outcome(&run, cancel + 1, "refund-or-cancel")["emails"][0]["subject"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        subject.starts_with("[hookline] refund-or-cancel: "),
        "{subject}"
    );

    // Live, with a real SMTP server.
    let smtp = crate::smtp::SmtpServer::start().await;
    let app = spawn_app_with(
        Some(db),
        Options {
            smtp_port: Some(smtp.port),
            ..Options::default()
        },
    );
    app.clear_rules().await;
    stdout(&hookline_cli(&[
        "rules",
        "import",
        &rules,
        "--database-url",
        &app.db_url,
    ]));
    for (name, item, _) in &samples {
        let response = app.post(envelope(std::slice::from_ref(item))).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let sent_count = samples
        .iter()
        .filter(|(_, _, e)| matches!(e, Some((_, "sent"))))
        .count();
    let rows = app
        .wait_for_notifications(20, "the five rules' emails", |rows| {
            rows.iter().filter(|n| n.status == "sent").count() == sent_count
        })
        .await;
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|n| {
            let status = if n.status == "suppressed" {
                "throttled"
            } else {
                n.status.as_str()
            };
            (n.rule_name.clone(), status.to_owned())
        })
        .collect();
    got.sort();
    let mut expected: Vec<(String, String)> = samples
        .iter()
        .filter_map(|(_, _, e)| e.map(|(rule, status)| (rule.to_owned(), status.to_owned())))
        .collect();
    expected.sort();
    assert_eq!(got, expected, "{rows:#?}");
    let received = smtp.wait_for(sent_count, 10).await;
    assert_eq!(received.len(), sent_count);
    let form_mail = received
        .iter()
        .find(|m| m.to.iter().any(|t| t.contains("sales@example.com")))
        .expect("the form email");
    assert!(
        form_mail.data.contains("Reply-To: abc@gmail.com"),
        "{}",
        form_mail.data
    );
    let cancel_mail = received
        .iter()
        .find(|m| m.to.iter().any(|t| t.contains("support@example.com")))
        .expect("the refund-or-cancel email");
    assert!(
        cancel_mail
            .subject()
            .starts_with("[hookline] refund-or-cancel: "),
        "{}",
        cancel_mail.subject()
    );
}

on_both_backends!(five_rules_from_the_readme_fire_on_the_right_samples);
