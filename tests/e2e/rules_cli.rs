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
    // A recipient with quiet hours: the shipped example calendar.
    let (status, body) = app
        .api(
            Method::PUT,
            "/api/v1/recipients/lead@example.com",
            Some(json!({"quiet_hours": "support-hours"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
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
    // The two default rules, the two disabled timer examples (one naming
    // the shipped calendar), vip-closed; the calendar and the recipient.
    assert!(
        exported.contains("[rule.timer]")
            && exported.contains("calendar = \"support-hours\"")
            && exported.contains("[[calendar]]")
            && exported.contains("[[recipient]]"),
        "{exported}"
    );
    let checked = stdout(&hookline_cli(&["rules", "check", file]));
    assert!(
        checked.contains("5 rule(s), 1 calendar(s), 1 recipient(s), all valid"),
        "{checked}"
    );

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
    assert!(
        imported.contains("1 calendar(s) and 1 recipient(s) stored"),
        "{imported}"
    );
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

    // A rule naming a calendar the file does not define: the likely name.
    std::fs::write(
        file,
        "[[calendar]]\nname = \"office\"\ntime_zone = \"UTC\"\nhours = { mon = [\"09:00-17:00\"] }\n\n\
         [[rule]]\nname = \"w\"\nto = [\"lead@example.com\"]\ntemplate = \"waiting\"\n\
         [rule.timer]\nafter = \"5m\"\nclock = \"business\"\ncalendar = \"ofice\"\nstart = { on = [\"message\"] }\n",
    )
    .unwrap();
    let message =
        String::from_utf8_lossy(&hookline_cli(&["rules", "check", file]).stderr).into_owned();
    assert!(
        message.contains("unknown calendar \"ofice\": did you mean `office`?"),
        "{message}"
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

/// `hookline ARGS` with these environment variables (and no token
/// settings of the caller's).
fn hookline_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"));
    command
        .args(args)
        .env("HOOKLINE_LOG", "error")
        .env_remove("HOOKLINE_DATABASE_URL")
        .env_remove("HOOKLINE_CONFIG")
        .env_remove("HOOKLINE_ADMIN_TOKEN")
        .env_remove("HOOKLINE_WEBHOOK_TOKEN");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[test]
fn every_database_command_takes_the_config_file_and_environment_like_serve() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-config.db");
    let url = format!("sqlite://{}", db.display());
    let config = dir.path().join("hookline.toml");
    std::fs::write(&config, format!("database_url = \"{url}\"\n")).unwrap();
    let config = config.to_str().unwrap();
    let ok = |args: &[&str], env: &[(&str, &str)]| {
        let output = hookline_env(args, env);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let migrated = ok(&["migrate", "--config", config], &[]);
    assert!(migrated.contains(&url), "{migrated}");
    assert!(db.exists());
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"from-config\"\non = [\"note\"]\nto = [\"lead@example.com\"]\ntemplate = \"generic\"\n",
    )
    .unwrap();
    let imported = ok(
        &[
            "rules",
            "import",
            rules.to_str().unwrap(),
            "--config",
            config,
        ],
        &[],
    );
    assert!(imported.contains("1 rule(s) created"), "{imported}");
    // The same database through the file, HOOKLINE_CONFIG, and
    // HOOKLINE_DATABASE_URL: the imported rule, not an empty new database.
    for (args, env) in [
        (vec!["rules", "export", "--config", config], vec![]),
        (vec!["rules", "export"], vec![("HOOKLINE_CONFIG", config)]),
        (
            vec!["rules", "export"],
            vec![("HOOKLINE_DATABASE_URL", url.as_str())],
        ),
    ] {
        let exported = ok(&args, &env);
        assert!(
            exported.contains("name = \"from-config\""),
            "{args:?} {env:?}: {exported}"
        );
    }
    let purged = ok(
        &["purge", "--before", "2020-01-01", "--config", config],
        &[],
    );
    assert!(purged.contains("0 events"), "{purged}");
    let erased = ok(&["erase", "--visitor", "nobody", "--config", config], &[]);
    assert!(
        erased.contains("visitor nobody: deleted 0 events"),
        "{erased}"
    );
    let token = ok(&["reset-admin-token", "--config", config], &[]);
    assert!(!token.trim().is_empty());
    // A flag beats the file: a database that is not there is refused,
    // and not created.
    let elsewhere = dir.path().join("elsewhere.db");
    let flag_url = format!("sqlite://{}", elsewhere.display());
    let output = hookline_env(
        &[
            "rules",
            "export",
            "--config",
            config,
            "--database-url",
            &flag_url,
        ],
        &[],
    );
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("no database at"), "{said}");
    assert!(!elsewhere.exists());
    // A setting out of range is named with where it came from, for any
    // command that uses it; a command ignores the settings it does not use.
    std::fs::write(dir.path().join("bad.toml"), "recipient_hourly_cap = -1\n").unwrap();
    let bad = dir.path().join("bad.toml");
    let bad = bad.to_str().unwrap();
    let output = hookline_env(
        &["rules", "check", "--config", bad, "/nonexistent.toml"],
        &[],
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("recipient_hourly_cap (--recipient-hourly-cap / HOOKLINE_RECIPIENT_HOURLY_CAP) in the config file"),
        "{said}"
    );
    ok(
        &["rules", "export", "--config", bad, "--database-url", &url],
        &[],
    );
}

#[test]
fn rules_check_reports_every_error_at_once_and_warns_with_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        r#"
[[rule]]
name = "misspelt-type"
on = ["assigne_change"]
to = ["lead@example.com"]
template = "generic"

[[rule]]
name = "misspelt-field"
on = ["assignee_change"]
all = [{ field = "payload.to.typ", op = "eq", value = "user" }]
to = ["lead@example.com"]
template = "generic"

[[rule]]
name = "bad-operator"
on = ["status"]
all = [{ field = "payload.status", op = "equals", value = "Close" }]
to = ["lead@example.com"]
template = "generic"

[[rule]]
name = "unknown-key"
onn = ["note"]
to = ["lead@example.com"]
template = "generic"

[[rule]]
name = "misspelt-type"
on = ["note"]
to = ["lead@example.com"]
template = "nope"
"#,
    )
    .unwrap();
    let output = hookline_cli(&["rules", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let errors = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "3 of 5 rule(s) invalid",
        "rule 4 (\"unknown-key\"): unknown field `onn`",
        "rule \"bad-operator\": all[0]: unknown operator \"equals\"",
        "rule \"misspelt-type\": unknown template \"nope\"",
    ] {
        assert_eq!(errors.matches(expected).count(), 1, "{expected}: {errors}");
    }
    let warnings = String::from_utf8_lossy(&output.stdout);
    assert!(
        warnings.contains("warning: rule \"misspelt-type\": on: unknown event type \"assigne_change\": did you mean `assignee_change`?"),
        "{warnings}"
    );
    assert!(
        warnings.contains("warning: rule \"misspelt-field\": all[0]: no assignee_change event hookline knows has the field payload.to.typ: did you mean `payload.to.type`?"),
        "{warnings}"
    );
    // Without the bad rules: valid, with the warnings, exit 0.
    let text = std::fs::read_to_string(&file).unwrap();
    let good: String = text
        .split("[[rule]]")
        .take(3)
        .collect::<Vec<_>>()
        .join("[[rule]]");
    std::fs::write(&file, good).unwrap();
    let output = hookline_cli(&["rules", "check", file.to_str().unwrap()]);
    let said = stdout(&output);
    assert!(said.contains("2 rule(s), all valid"), "{said}");
    assert_eq!(said.matches("did you mean").count(), 2, "{said}");
}

#[test]
fn a_bad_postgres_url_is_reported_once() {
    for url in [
        "postgres://nobody@127.0.0.1:notaport/nothing",
        "postgres://nobody@127.0.0.1:1/nothing",
    ] {
        let output = hookline_env(
            &["rules", "export", "--database-url", url],
            &[("HOOKLINE_LOG", "info")],
        );
        assert!(!output.status.success());
        let said = String::from_utf8_lossy(&output.stderr);
        // One error (libpq's own text may take two lines), said once.
        assert!(said.starts_with("hookline: "), "{said}");
        assert_eq!(said.matches("hookline").count(), 1, "{url}: {said}");
        let cause = if url.contains("notaport") {
            "invalid integer value \"notaport\""
        } else {
            "Connection refused"
        };
        assert_eq!(said.matches(cause).count(), 1, "{url}: {said}");
    }
}

#[test]
fn send_test_email_without_smtp_says_which_file_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let output = hookline_env(
        &[
            "send-test-email",
            "--to",
            "ops@example.com",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let said = stdout(&output);
    assert!(!said.contains("via no SMTP"), "{said}");
    let file = said
        .trim()
        .rsplit(" was written to ")
        .next()
        .unwrap_or_default();
    assert!(
        said.starts_with("no SMTP server is set (smtp_url / --smtp-url / HOOKLINE_SMTP_URL), so the email to ops@example.com was written to "),
        "{said}"
    );
    let eml = std::fs::read_to_string(file).unwrap();
    assert!(eml.contains("Subject: hookline test email"), "{eml}");
}
