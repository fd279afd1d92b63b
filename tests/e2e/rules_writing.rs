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
