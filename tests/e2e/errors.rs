//! Every error status, with its JSON body; nothing half-stored.

use crate::helpers::*;
use crate::on_both_backends;
use diesel::connection::SimpleConnection;
use hookline_testdb::TestDatabase;

async fn body_that_is_not_json_is_400_invalid_json_saying_where(db: TestDatabase) {
    let app = spawn_app(db);
    let response = app.post("{\"events\": [\n  {\"event\": }]}").await;
    assert_eq!(response.status(), 400);
    let error = error_body(response).await;
    assert_eq!(error["error"], "invalid_json");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("line 2, column 13"), "{message}");
    assert_eq!(app.event_count().await, 0);
}

async fn json_without_an_events_array_is_400_invalid_envelope(db: TestDatabase) {
    let app = spawn_app(db);
    for (body, says) in [
        (r#"{"events": {"a": 1}}"#, "\"events\" is an object"),
        (r#"{"events": null}"#, "\"events\" is null"),
        ("[1, 2]", "body is JSON an array"),
        ("\"text\"", "body is JSON a string"),
    ] {
        let response = app.post(body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = error_body(response).await;
        assert_eq!(error["error"], "invalid_envelope", "{body}");
        assert!(error["message"].as_str().unwrap().contains(says), "{error}");
    }
    assert_eq!(app.event_count().await, 0);
}

async fn body_over_the_limit_is_413(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            max_body_bytes: Some(2_000),
            ..Options::default()
        },
    );
    let item = fixture_item("02-message-text.json");
    let big = envelope(&vec![item; 10]);
    assert!(big.len() > 2_000);
    let response = app.post(big).await;
    assert_eq!(response.status(), 413);
    let error = error_body(response).await;
    assert_eq!(error["error"], "payload_too_large");
    assert!(error["message"].as_str().unwrap().contains("2000 bytes"));
    // Under the limit still works.
    let response = app.post(fixture("02-message-text.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.event_count().await, 1);
}

async fn other_methods_are_405_and_unknown_paths_404(db: TestDatabase) {
    let app = spawn_app(db);
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .client
            .request(method.clone(), app.webhook_url())
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
        assert_eq!(error_body(response).await["error"], "method_not_allowed");
    }
    let response = app
        .client
        .get(format!("{}/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_body(response).await["error"], "not_found");
}

async fn write_failure_is_503_with_retry_after_and_nothing_half_stored(db: TestDatabase) {
    let app = spawn_app(db);
    let first = fixture_item("02-message-text.json");
    let second = fixture_item("28-note.json");
    // Break the conversations table: the first item's event insert works,
    // its conversation update fails, so the whole batch must roll back.
    app.with_db(|c| {
        c.batch_execute("ALTER TABLE conversations RENAME TO conversations_away")
            .unwrap()
    })
    .await;
    let response = app.post(envelope(&[first.clone(), second.clone()])).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(error_body(response).await["error"], "storage_unavailable");
    assert_eq!(app.event_count().await, 0, "nothing half-stored");
    // Repaired, the platform's retry is stored.
    app.with_db(|c| {
        c.batch_execute("ALTER TABLE conversations_away RENAME TO conversations")
            .unwrap()
    })
    .await;
    let response = app.post(envelope(&[first, second])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_number(&response, "Hookline-Stored"), 2);
    assert_eq!(app.event_count().await, 2);
}

on_both_backends!(
    body_that_is_not_json_is_400_invalid_json_saying_where,
    json_without_an_events_array_is_400_invalid_envelope,
    body_over_the_limit_is_413,
    other_methods_are_405_and_unknown_paths_404,
    write_failure_is_503_with_retry_after_and_nothing_half_stored,
);
