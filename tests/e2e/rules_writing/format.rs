//! One rule format everywhere, rule changes in force at once, the field
//! browser, and a preview that counts throttles as live.

use reqwest::Method;
use serde_json::json;

use super::*;
use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

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
    let exported = stdout(&hookline_cli(&[
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
        stdout(&hookline_cli(&[
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
