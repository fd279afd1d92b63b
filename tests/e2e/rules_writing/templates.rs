//! Templates checked before use, template errors permanent, emails
//! people act on.

use reqwest::Method;
use serde_json::json;

use super::*;
use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

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
        let output = hookline_cli(&args);
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
    let list = stdout(&hookline_cli(&["templates", "list"]));
    for name in ["generic", "handover", "status_change"] {
        assert!(list.contains(name), "{list}");
    }
    let shown = stdout(&hookline_cli(&["templates", "show", "generic"]));
    assert!(shown.contains("--- generic.subject (built-in)"), "{shown}");
    assert!(shown.contains("{{rule.name}}"), "{shown}");
    let rendered = stdout(&hookline_cli(&[
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
    let rendered = stdout(&hookline_cli(&[
        "templates",
        "render",
        "handover",
        "--event",
        &events,
    ]));
    assert!(rendered.contains("1 message"), "{rendered}");
    assert!(rendered.contains("Hiiiii"), "the transcript: {rendered}");
    let variables = stdout(&hookline_cli(&["templates", "variables"]));
    assert!(variables.contains("transcript[*].summary"), "{variables}");
    let unknown = hookline_cli(&["templates", "show", "nope"]);
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
    // Removing a template a rule in force uses is refused too: the rule
    // keeps rendering with the template it had.
    for part in ["subject", "text", "html"] {
        std::fs::remove_file(templates.path().join(format!("mine.{part}.hbs"))).unwrap();
    }
    write(&templates, "other.subject.hbs", "x");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(preview_subject(&app).await, "second note");
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
