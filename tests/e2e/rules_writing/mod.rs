//! Writing and testing a rule from the README alone: one rule format
//! everywhere, list matching, rule changes in force at once, a dry run,
//! templates checked before use.

mod dry_run;
mod format;
mod templates;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

/// A logged-in admin session: (cookie, csrf token).
async fn ui_session(app: &TestApp) -> (String, String) {
    let cookie = login(app, ADMIN_TOKEN).await.expect("session cookie");
    let csrf = csrf_in(&page(app, "/ui/rules", &cookie).await);
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

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `rules test ... --json`: `{"events": [...], "timers": [...]}`.
fn dry_run_report(args: &[&str]) -> Value {
    let mut all = vec!["rules", "test"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&stdout(&hookline_cli(&all))).unwrap()
}

/// The events of a dry run.
fn dry_run(args: &[&str]) -> Value {
    dry_run_report(args)["events"].clone()
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
