//! Writing and testing a rule from the README alone: one rule format
//! everywhere, list matching, rule changes in force at once.

use std::process::{Command, Output};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;
use hookline_storage::testing::TestDatabase;

fn hookline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(args)
        .env("HOOKLINE_LOG", "error")
        .output()
        .expect("run hookline")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "hookline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A logged-in admin session: (cookie, csrf token).
async fn ui_session(app: &TestApp) -> (String, String) {
    let response = no_redirects()
        .post(format!("{}/ui/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hookline_session=") && !v.starts_with("hookline_session=;"))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .expect("session cookie");
    let html = no_redirects()
        .get(format!("{}/ui/rules", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token in the page")
        .to_owned();
    (cookie, csrf)
}

/// Saves `text` in the Rules page editor; the response status and page.
async fn save_on_page(app: &TestApp, session: &(String, String), text: &str) -> (u16, String) {
    let response = no_redirects()
        .post(format!("{}/ui/rules", app.base))
        .header("cookie", &session.0)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={}&action=save&rule={}",
            urlencode(&session.1),
            urlencode(text)
        ))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn rule_id(app: &TestApp, name: &str) -> i64 {
    let (_, list) = app.api(Method::GET, "/api/v1/rules", None).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no rule {name}: {list}"))["id"]
        .as_i64()
        .unwrap()
}

/// GET output is PUT and preview input; an export pastes into the Rules
/// page; a saved rule previews by id.
async fn one_rule_format_round_trips_everywhere(db: TestDatabase) {
    let app = spawn_app(db);
    let id = rule_id(&app, "handover-to-agent").await;
    let (status, got) = app
        .api(Method::GET, &format!("/api/v1/rules/{id}"), None)
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["id"], id);

    // PUT of what GET returned: accepted, nothing changes.
    let (status, put) = app
        .api(
            Method::PUT,
            &format!("/api/v1/rules/{id}"),
            Some(got.clone()),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["all"], got["all"]);
    assert_eq!(put["throttle"], got["throttle"]);
    // Another rule's id is refused, saying why.
    let mut other = got.clone();
    other["id"] = json!(id + 1000);
    let (status, refused) = app
        .api(Method::PUT, &format!("/api/v1/rules/{id}"), Some(other))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("\"id\""),
        "{refused}"
    );

    // Preview of the GET output, and of the saved rule by id.
    app.post(fixture("24-assignee_change.json")).await;
    let (status, draft) = app
        .api(
            Method::POST,
            "/api/v1/rules/preview",
            Some(json!({ "rule": got })),
        )
        .await;
    assert_eq!(status, 200, "{draft}");
    let (status, saved) = app
        .api(Method::POST, &format!("/api/v1/rules/{id}/preview"), None)
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["rule"], "handover-to-agent");
    assert_eq!(saved["fired_count"], 1, "{saved}");
    assert_eq!(saved["fired_count"], draft["fired_count"]);
    let (status, _) = app
        .api(Method::POST, "/api/v1/rules/999999/preview", None)
        .await;
    assert_eq!(status, 404);

    // `rules export` output of one rule: the Rules page takes it as it is,
    // and so do the API and `rules check`.
    let exported = stdout(&hookline(&[
        "rules",
        "export",
        "--database-url",
        &app.db_url,
    ]));
    let one: String = exported
        .split("[[rule]]")
        .find(|part| part.contains("closed-by-someone-else"))
        .map(|part| format!("[[rule]]{part}"))
        .unwrap()
        .replace("closed-by-someone-else", "pasted-from-export");
    assert!(one.contains("[[rule.all]]"), "{one}");
    let session = ui_session(&app).await;
    let (status, page) = save_on_page(&app, &session, &one).await;
    assert_eq!(status, 303, "the page refused a pasted export: {page}");
    let pasted = rule_id(&app, "pasted-from-export").await;
    let (_, pasted) = app
        .api(Method::GET, &format!("/api/v1/rules/{pasted}"), None)
        .await;
    assert_eq!(pasted["all"].as_array().unwrap().len(), 4, "{pasted}");
    let (status, page) = save_on_page(&app, &session, &exported).await;
    assert_eq!(status, 200);
    assert!(page.contains("exactly one rule"), "{page}");
    let (status, created) = app
        .api(
            Method::POST,
            "/api/v1/rules",
            Some(json!({"rule": [{"name": "json-file-form", "on": ["note"], "to": ["a@example.com"], "template": "generic"}]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
}

on_both_backends!(one_rule_format_round_trips_everywhere);

/// A rule imported with `hookline rules import` while the server runs
/// fires on the very next event: no two-second gap with no row and no log.
async fn an_imported_rule_fires_on_the_next_event(db: TestDatabase) {
    let app = spawn_app(db);
    app.clear_rules().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    for round in 0..3 {
        std::fs::write(
            &file,
            format!(
                "[[rule]]\nname = \"note-{round}\"\non = [\"note\"]\nto = [\"lead@example.com\"]\ntemplate = \"generic\"\n"
            ),
        )
        .unwrap();
        stdout(&hookline(&[
            "rules",
            "import",
            file.to_str().unwrap(),
            "--database-url",
            &app.db_url,
        ]));
        let mut note = fixture_item("28-note.json");
        note["event"]["payload"]["note"] = json!(format!("note {round}"));
        let response = app.post(envelope(&[note])).await;
        assert_eq!(response.status(), 200);
        let rows = app.notifications().await;
        assert!(
            rows.iter().any(|n| n.rule_name == format!("note-{round}")),
            "round {round}: the rule imported just before did not fire: {rows:#?}"
        );
    }
}

on_both_backends!(an_imported_rule_fires_on_the_next_event);

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn dry_run(args: &[&str]) -> Value {
    let mut all = vec!["rules", "test"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&stdout(&hookline(&all))).unwrap()
}

/// The outcome of rule `name` for event `index` (1-based) of a dry run.
fn outcome<'a>(run: &'a Value, index: usize, name: &str) -> &'a Value {
    run.as_array().unwrap()[index - 1]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == name)
        .unwrap_or_else(|| panic!("no outcome for {name} in {run:#}"))
}

const HANDOVER_RULES: &str = r#"
[[rule]]
name = "handover"
on = ["assignee_change"]
all = [{ field = "payload.to.type", op = "eq", value = "user" }]
to = ["{{payload.to.email}}", "lead@example.com"]
template = "handover"
throttle = "10m"

[[rule]]
name = "any-handover"
on = ["assignee_change"]
to = ["{{payload.to.email}}"]
template = "generic"

[[rule]]
name = "closes"
on = ["status"]
to = ["lead@example.com"]
template = "generic"
"#;

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
    assert!(stdout(&hookline(&["rules", "check", &bare])).contains("1 rule(s), all valid"));
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
    let text = stdout(&hookline(&["rules", "test", &rules, "--event", &events]));
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
    stdout(&hookline(&[
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

/// A template that fails to render at send time (strict mode: `{{bot.id}}`
/// is not in the email context) is `dead` at the first attempt with the
/// reason, not retried for a day.
async fn a_template_error_at_send_time_is_permanent(db: TestDatabase) {
    let templates = tempfile::tempdir().unwrap();
    write(&templates, "broken.subject.hbs", "note");
    // Renders the samples; fails only for this recipient.
    write(
        &templates,
        "broken.text.hbs",
        "{{#if (eq recipient \"boom@example.com\")}}bot {{bot.id}}{{/if}}",
    );
    write(&templates, "broken.html.hbs", "<p>bot</p>");
    let app = spawn_app_with(
        Some(db),
        Options {
            extra_args: vec![
                "--templates-dir".into(),
                templates.path().to_str().unwrap().into(),
            ],
            ..Options::default()
        },
    );
    app.clear_rules().await;
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/rules",
            Some(json!({"name": "broken", "on": ["note"], "to": ["boom@example.com"], "template": "broken"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.post(fixture("28-note.json")).await;
    let rows = app
        .wait_for_notifications(10, "a dead notification", |rows| {
            rows.iter().any(|n| n.status == "dead")
        })
        .await;
    assert_eq!(rows[0].attempts, 1, "{rows:#?}");
    let error = rows[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("broken.text"), "{error}");
    assert!(rows[0].next_attempt_at.is_none());
}

on_both_backends!(a_template_error_at_send_time_is_permanent);

/// "1 message", not "1 messages"; the banner warns when links would point
/// to the listen address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_count_right_and_the_banner_warns_without_a_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(&dir, "rules.toml", HANDOVER_RULES);
    let one = write(
        &dir,
        "one.json",
        &envelope(&[
            fixture_item("02-message-text.json"),
            fixture_item("24-assignee_change.json"),
        ]),
    );
    let run = dry_run(&[&rules, "--event", &one]);
    let text = outcome(&run, 2, "handover")["emails"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("open, 1 message\n"), "{text}");

    let app = spawn_app(TestDatabase::sqlite());
    let banner = app.banner.join("\n");
    assert!(
        banner.contains("HOOKLINE_PUBLIC_URL is not set"),
        "{banner}"
    );
    let app = spawn_app_with(
        Some(TestDatabase::sqlite()),
        Options {
            extra_args: vec!["--public-url".into(), "https://hookline.example.com".into()],
            ..Options::default()
        },
    );
    let banner = app.banner.join("\n");
    assert!(
        !banner.contains("HOOKLINE_PUBLIC_URL is not set"),
        "{banner}"
    );
}

/// The field browser shows the paths rules use, with values: payload,
/// conversation, derived, and `[*]` paths for list items; and every path
/// it shows works in a rule (checked through the dry run).
async fn the_field_browser_shows_what_rules_see(db: TestDatabase) {
    let app = spawn_app(db);
    app.post(fixture("01-conversation_create.json")).await;
    let mut labels = fixture_item("27-conversation_labels.json");
    labels["event"]["payload"]["labels"] = json!([{"id": 7}, {"id": 42}]);
    app.post(envelope(&[labels.clone()])).await;
    let (_, list) = app
        .api(Method::GET, "/api/v1/events?type=conversation_labels", None)
        .await;
    let id = list["items"][0]["id"].as_i64().unwrap();
    let (status, body) = app
        .api(Method::GET, &format!("/api/v1/events/{id}/fields"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let fields = body["fields"].as_array().unwrap();
    let value = |path: &str| {
        fields
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("no {path} in {body:#}"))
            .clone()
    };
    assert_eq!(value("payload.labels[1].id")["value"], 42);
    assert_eq!(
        value("payload.labels[1].id")["any_item"],
        "payload.labels[*].id"
    );
    assert_eq!(value("bot.id")["value"], 8861);
    assert_eq!(value("type")["value"], "conversation_labels");
    assert_eq!(value("conversation.bot_id")["value"], 8861);
    assert!(value("conversation.url")["value"].is_string());
    assert_eq!(
        value("payload.action_performed_by.email")["value"],
        "himanshu@swiftsell.biz"
    );
    // Every scalar the browser shows is a condition that holds.
    let conditions: Vec<String> = fields
        .iter()
        .filter(|f| f["value"].is_string() || f["value"].is_number() || f["value"].is_boolean())
        .filter(|f| {
            !f["path"].as_str().unwrap().starts_with("conversation.")
                && !f["path"].as_str().unwrap().starts_with("event.")
        })
        .map(|f| {
            format!(
                "{{ field = \"{}\", op = \"eq\", value = {} }}",
                f["path"].as_str().unwrap(),
                f["value"]
            )
        })
        .collect();
    assert!(conditions.len() > 8, "{conditions:?}");
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        &dir,
        "rules.toml",
        &format!(
            "[[rule]]\nname = \"all-fields\"\non = [\"conversation_labels\"]\nall = [{}]\nto = [\"a@example.com\"]\ntemplate = \"generic\"\n",
            conditions.join(",\n")
        ),
    );
    let events = write(&dir, "labels.json", &envelope(&[labels]));
    let run = dry_run(&[&rules, "--event", &events]);
    assert_eq!(outcome(&run, 1, "all-fields")["fires"], true, "{run:#}");
    // The event page shows the same.
    let session = ui_session(&app).await;
    let page = no_redirects()
        .get(format!("{}/ui/events/{id}", app.base))
        .header("cookie", &session.0)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Fields rules see"), "{page}");
    assert!(page.contains("payload.labels[*].id"), "{page}");
}

on_both_backends!(the_field_browser_shows_what_rules_see);

/// The preview decides throttles and the hourly cap in arrival order, as
/// live does: its counts of emails sent and suppressed equal the live ones.
async fn the_preview_counts_throttled_and_capped_emails_as_live(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            extra_args: vec!["--recipient-hourly-cap".into(), "2".into()],
            ..Options::default()
        },
    );
    app.clear_rules().await;
    for rule in [
        json!({"name": "throttled-notes", "on": ["note"], "to": ["lead@example.com"], "template": "generic", "throttle": "1h"}),
        json!({"name": "capped-notes", "on": ["note"], "to": ["cap@example.com"], "template": "generic"}),
    ] {
        let (status, body) = app.api(Method::POST, "/api/v1/rules", Some(rule)).await;
        assert_eq!(status, 201, "{body}");
    }
    for (i, conversation) in ["x", "x", "x", "y"].iter().enumerate() {
        let mut note = fixture_item("28-note.json");
        note["event"]["payload"]["note"] = json!(format!("note {i}"));
        note["conversation"]["key"] = json!(format!("conversation-{conversation}"));
        assert_eq!(app.post(envelope(&[note])).await.status(), 200);
    }
    let live = app.notifications().await;
    for rule in ["throttled-notes", "capped-notes"] {
        let count = |status: &str| {
            live.iter()
                .filter(|n| n.rule_name == rule && n.status == status)
                .count()
        };
        let queued = live
            .iter()
            .filter(|n| n.rule_name == rule && n.status != "suppressed" && n.status != "skipped")
            .count();
        assert_eq!((queued, count("suppressed")), (2, 2), "{rule}: {live:#?}");
        let id = rule_id(&app, rule).await;
        let (status, preview) = app
            .api(Method::POST, &format!("/api/v1/rules/{id}/preview"), None)
            .await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["fired_count"], 4, "{preview:#}");
        assert_eq!(preview["emails"]["send"], 2, "{rule}: {preview:#}");
        assert_eq!(preview["emails"]["suppressed"], 2, "{rule}: {preview:#}");
        let reasons: Vec<String> = preview["fired"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["emails"][0]["reason"].as_str().map(str::to_owned))
            .collect();
        let word = if rule == "throttled-notes" {
            "throttled"
        } else {
            "recipient cap"
        };
        assert!(
            reasons.iter().all(|r| r.contains(word)) && reasons.len() == 2,
            "{reasons:?}"
        );
    }
}

on_both_backends!(the_preview_counts_throttled_and_capped_emails_as_live);

/// A template that cannot render the samples stops `rules check` and the
/// server's start, naming the template and the sample.
#[test]
fn a_broken_template_is_refused_before_use() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "broken.subject.hbs", "s");
    write(&dir, "broken.text.hbs", "bot {{bot.id}}");
    write(&dir, "broken.html.hbs", "h");
    let rules = write(&dir, "rules.toml", HANDOVER_RULES);
    let templates = dir.path().to_str().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    for args in [
        vec!["rules", "check", &rules, "--templates-dir", templates],
        vec![
            "serve",
            "--database-url",
            &db,
            "--listen",
            "127.0.0.1:0",
            "--templates-dir",
            templates,
        ],
    ] {
        let output = hookline(&args);
        assert!(
            !output.status.success(),
            "{args:?} accepted a broken template"
        );
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("broken.text") && said.contains("on sample 01-conversation_create.json"),
            "{args:?}: {said}"
        );
    }
}

/// `hookline templates list|show|render|variables`.
#[test]
fn templates_can_be_listed_shown_and_rendered_against_a_sample() {
    let list = stdout(&hookline(&["templates", "list"]));
    for name in ["generic", "handover", "status_change"] {
        assert!(list.contains(name), "{list}");
    }
    let shown = stdout(&hookline(&["templates", "show", "generic"]));
    assert!(shown.contains("--- generic.subject (built-in)"), "{shown}");
    assert!(shown.contains("{{rule.name}}"), "{shown}");
    let rendered = stdout(&hookline(&[
        "templates",
        "render",
        "handover",
        "--sample",
        "24",
    ]));
    assert!(rendered.starts_with("Subject: Handover"), "{rendered}");
    assert!(rendered.contains("himanshu@swiftsell.biz"), "{rendered}");
    let dir = tempfile::tempdir().unwrap();
    let events = write(
        &dir,
        "events.json",
        &envelope(&[
            fixture_item("02-message-text.json"),
            fixture_item("24-assignee_change.json"),
        ]),
    );
    let rendered = stdout(&hookline(&[
        "templates",
        "render",
        "handover",
        "--event",
        &events,
    ]));
    assert!(rendered.contains("1 message"), "{rendered}");
    assert!(rendered.contains("Hiiiii"), "the transcript: {rendered}");
    let variables = stdout(&hookline(&["templates", "variables"]));
    assert!(variables.contains("transcript[*].summary"), "{variables}");
    let unknown = hookline(&["templates", "show", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown template \"nope\""));
}

/// A change in the templates folder is in force without a restart; a
/// change that breaks a template is refused and the old one stays.
async fn a_changed_template_folder_is_reloaded_without_restart(db: TestDatabase) {
    let templates = tempfile::tempdir().unwrap();
    write(&templates, "mine.subject.hbs", "first {{event.type}}");
    write(&templates, "mine.text.hbs", "t");
    write(&templates, "mine.html.hbs", "h");
    let app = spawn_app_with(
        Some(db),
        Options {
            extra_args: vec![
                "--templates-dir".into(),
                templates.path().to_str().unwrap().into(),
            ],
            ..Options::default()
        },
    );
    app.clear_rules().await;
    let rule =
        json!({"name": "mine", "on": ["note"], "to": ["lead@example.com"], "template": "mine"});
    assert_eq!(
        app.api(Method::POST, "/api/v1/rules", Some(rule)).await.0,
        201
    );
    app.post(fixture("28-note.json")).await;
    assert_eq!(preview_subject(&app).await, "first note");
    // A broken change is refused (the old template stays), a good one is
    // taken within the reload interval.
    write(&templates, "mine.text.hbs", "{{bot.id}}");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(preview_subject(&app).await, "first note");
    write(&templates, "mine.text.hbs", "t2");
    write(&templates, "mine.subject.hbs", "second {{event.type}}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    loop {
        let subject = preview_subject(&app).await;
        if subject == "second note" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not reloaded: {subject}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

on_both_backends!(a_changed_template_folder_is_reloaded_without_restart);

/// The subject the saved rule `mine` previews for the newest event.
async fn preview_subject(app: &TestApp) -> String {
    let id = rule_id(app, "mine").await;
    let (_, preview) = app
        .api(Method::POST, &format!("/api/v1/rules/{id}/preview"), None)
        .await;
    preview["fired"][0]["subject"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
