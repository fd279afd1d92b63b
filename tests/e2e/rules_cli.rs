//! `hookline rules check|import|export` on real databases.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

const BAD_RULES: &str = r#"
[[rule]]
name = "fine"
on = ["note"]
to = ["lead@example.com"]
template = "generic"

[[rule]]
name = "bad"
on = ["status"]
all = [{ field = "payload.status", op = "equals", value = "Close" }]
to = ["lead@example.com"]
template = "generic"
"#;

async fn export_then_import_reproduces_the_rules(db: TestDatabase) {
    let app = spawn_app(db);
    let custom = json!({
        "name": "vip-closed", "on": ["status", "note"], "enabled": false,
        "all": [{"field": "bot.id", "op": "in", "value": [8861, 4395]}],
        "any": [{"field": "payload.status", "op": "matches", "value": "^clos"}, {"field": "payload.note", "op": "exists"}],
        "to": ["team@example.com", "{{conversation.assignee.email}}"],
        "template": "status_change", "throttle": "1h30m", "case_sensitive": true
    });
    let (status, body) = app.api(Method::POST, "/api/v1/rules", Some(custom)).await;
    assert_eq!(status, 201, "{body}");
    let exported = stdout(&hookline_cli(&[
        "rules",
        "export",
        "--database-url",
        &app.db_url,
    ]));
    assert!(exported.contains("name = \"vip-closed\""), "{exported}");
    assert!(
        exported.contains("name = \"handover-to-agent\""),
        "{exported}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, &exported).unwrap();
    let file = file.to_str().unwrap();
    // The two default rules, the two disabled timer examples, vip-closed.
    assert!(
        exported.contains("[rule.timer]") && exported.contains("[rule.timer.calendar]"),
        "{exported}"
    );
    assert!(stdout(&hookline_cli(&["rules", "check", file])).contains("5 rule(s), all valid"));

    let other = TestDatabase::sqlite();
    stdout(&hookline_cli(&["migrate", "--database-url", &other.url]));
    let imported = stdout(&hookline_cli(&[
        "rules",
        "import",
        file,
        "--database-url",
        &other.url,
    ]));
    assert!(imported.contains("5 rule(s) created"), "{imported}");
    let again = stdout(&hookline_cli(&[
        "rules",
        "export",
        "--database-url",
        &other.url,
    ]));
    assert_eq!(again, exported);
    // Importing again replaces by name: nothing new.
    let replaced = stdout(&hookline_cli(&[
        "rules",
        "import",
        file,
        "--database-url",
        &other.url,
    ]));
    assert!(
        replaced.contains("0 rule(s) created, 5 replaced"),
        "{replaced}"
    );
}

async fn a_bad_rules_file_is_rejected_precisely_and_changes_nothing(db: TestDatabase) {
    let app = spawn_app(db);
    let before = stdout(&hookline_cli(&[
        "rules",
        "export",
        "--database-url",
        &app.db_url,
    ]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, BAD_RULES).unwrap();
    let file = file.to_str().unwrap();

    let check = hookline_cli(&["rules", "check", file]);
    assert!(!check.status.success());
    let message = String::from_utf8_lossy(&check.stderr);
    assert!(
        message.contains("rule \"bad\": all[0]: unknown operator \"equals\""),
        "{message}"
    );

    let import = hookline_cli(&["rules", "import", file, "--database-url", &app.db_url]);
    assert!(!import.status.success());
    let message = String::from_utf8_lossy(&import.stderr);
    assert!(
        message.contains("unknown operator \"equals\"") && message.contains("nothing was changed"),
        "{message}"
    );
    let after = stdout(&hookline_cli(&[
        "rules",
        "export",
        "--database-url",
        &app.db_url,
    ]));
    assert_eq!(
        before, after,
        "the good rule of the bad file was not imported either"
    );

    // A TOML syntax error names the line; an unknown key names the key.
    std::fs::write(file, "[[rule]]\nname = \"x\"\nonn = [\"note\"]\n").unwrap();
    let message =
        String::from_utf8_lossy(&hookline_cli(&["rules", "check", file]).stderr).into_owned();
    assert!(message.contains("unknown field `onn`"), "{message}");
}

async fn the_rules_api_validates_like_the_file(db: TestDatabase) {
    let app = spawn_app(db);
    let cases = [
        (
            json!({"name": "x", "on": ["note"], "to": ["a@b.io"], "template": "nope"}),
            "unknown template \"nope\"",
        ),
        (
            json!({"name": "x", "on": ["note"], "to": ["a@b.io"], "template": "generic",
                "all": [{"field": "payload.note", "op": "matches", "value": "(unclosed"}]}),
            "bad regular expression",
        ),
        (
            json!({"name": "x", "on": ["note"], "to": ["a@b.io"], "template": "generic",
                "all": [{"field": "payloads.note", "op": "exists"}]}),
            "unknown field \"payloads.note\"",
        ),
        (
            json!({"name": "x", "on": ["note"], "to": ["{{#if}}"], "template": "generic"}),
            "template syntax error",
        ),
        (
            json!({"name": "x", "on": ["note"], "to": ["not-an-address"], "template": "generic"}),
            "not an email address",
        ),
        (
            json!({"name": "x", "on": [], "to": ["a@b.io"], "template": "generic"}),
            "\"on\" is empty",
        ),
        (
            json!({"name": "x", "on": ["note"], "to": ["a@b.io"], "template": "generic", "throttle": "soon"}),
            "throttle",
        ),
    ];
    for (rule, says) in cases {
        let (status, error) = app
            .api(Method::POST, "/api/v1/rules", Some(rule.clone()))
            .await;
        assert_eq!(status, 422, "{rule} -> {error}");
        assert_eq!(error["error"], "invalid_rule");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with("rule \"x\": ") && message.contains(says),
            "{message}"
        );
    }
    let (status, error) = app
        .api(Method::POST, "/api/v1/rules", Some(json!({"name": "handover-to-agent", "on": ["note"], "to": ["a@b.io"], "template": "generic"})))
        .await;
    assert_eq!(status, 409, "{error}");
    let (status, _) = app.api(Method::GET, "/api/v1/rules/9999", None).await;
    assert_eq!(status, 404);
    let (status, error) = app.api(Method::GET, "/api/v1/rules/abc", None).await;
    assert_eq!(status, 400, "{error}");
    // Disable a default rule with PUT, and it no longer fires.
    let (_, list) = app.api(Method::GET, "/api/v1/rules", None).await;
    let handover = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "handover-to-agent")
        .unwrap()
        .clone();
    let mut disabled = handover.clone();
    for key in ["id", "created_at", "updated_at"] {
        disabled.as_object_mut().unwrap().remove(key);
    }
    disabled["enabled"] = json!(false);
    let id = handover["id"].as_i64().unwrap();
    let (status, body) = app
        .api(Method::PUT, &format!("/api/v1/rules/{id}"), Some(disabled))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], false);
    assert_eq!(
        app.post(fixture("24-assignee_change.json")).await.status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.notifications().await.is_empty());
}

on_both_backends!(
    export_then_import_reproduces_the_rules,
    a_bad_rules_file_is_rejected_precisely_and_changes_nothing,
    the_rules_api_validates_like_the_file,
);

#[test]
fn commands_on_a_missing_database_say_so_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-here.db");
    let url = format!("sqlite://{}", path.display());
    for args in [
        vec!["rules", "export", "--database-url", &url],
        vec!["webhook-token", "show", "--database-url", &url],
        vec!["erase", "--visitor", "v", "--database-url", &url],
        vec!["purge", "--before", "2024-01-01", "--database-url", &url],
        vec!["reset-admin-token", "--database-url", &url],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(&args)
            .env("HOOKLINE_LOG", "error")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} succeeded");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("no database at"), "{args:?}: {said}");
        assert_eq!(
            said.matches("no database at").count(),
            1,
            "said once: {said}"
        );
        assert!(!path.exists(), "{args:?} created the database");
    }
}

#[test]
fn an_unreachable_database_is_reported_once() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args([
            "rules",
            "export",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/nothing",
        ])
        .env("HOOKLINE_LOG", "info")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(said.matches("Connection refused").count(), 1, "{said}");
    assert!(
        said.contains("postgres://nobody@127.0.0.1:1/nothing"),
        "{said}"
    );
}
