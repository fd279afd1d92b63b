//! The verification handshake and the token, in every position.

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

/// How a request carries the token.
#[derive(Clone, Copy, Debug)]
enum Position {
    Bearer,
    SwiftsellHeader,
    TokenHeader,
    Query,
    Body,
}

const POSITIONS: [Position; 5] = [
    Position::Bearer,
    Position::SwiftsellHeader,
    Position::TokenHeader,
    Position::Query,
    Position::Body,
];

async fn send(app: &TestApp, position: Position, token: &str, body: &str) -> reqwest::Response {
    let url = match position {
        Position::Query => format!("{}?token={token}", app.webhook_url()),
        _ => app.webhook_url(),
    };
    let mut request = app.client.post(url);
    let mut body = body.to_owned();
    match position {
        Position::Bearer => request = request.bearer_auth(token),
        Position::SwiftsellHeader => request = request.header("X-Swiftsell-Token", token),
        Position::TokenHeader => request = request.header("Token", token),
        Position::Query => {}
        Position::Body => {
            let mut value: serde_json::Value = if body.trim().is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_str(&body).unwrap()
            };
            value["token"] = serde_json::json!(token);
            body = value.to_string();
        }
    }
    request.body(body).send().await.unwrap()
}

async fn handshake_answers_the_token_in_every_position(db: TestDatabase) {
    let app = spawn_app(db);
    for position in POSITIONS {
        for body in ["", "{}", "  \n"] {
            let response = send(&app, position, &app.token, body).await;
            assert_eq!(response.status(), 200, "{position:?} with body {body:?}");
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(content_type.starts_with("text/plain"), "{content_type}");
            assert_eq!(response.text().await.unwrap(), app.token, "{position:?}");
        }
    }
    assert_eq!(app.event_count().await, 0, "a handshake stores nothing");
}

async fn events_are_accepted_with_the_token_in_every_position(db: TestDatabase) {
    let app = spawn_app(db);
    for (index, position) in POSITIONS.into_iter().enumerate() {
        let mut item = fixture_item("02-message-text.json");
        item["event"]["payload"]["message"]["text"] = serde_json::json!(format!("hello {index}"));
        let response = send(&app, position, &app.token, &envelope(&[item])).await;
        assert_eq!(response.status(), 200, "{position:?}");
        assert_eq!(header_number(&response, "Hookline-Stored"), 1);
        assert_eq!(response.text().await.unwrap(), app.token);
    }
    assert_eq!(app.event_count().await, 5);
}

async fn wrong_and_missing_tokens_are_refused_and_nothing_is_stored(db: TestDatabase) {
    let app = spawn_app(db);
    let body = String::from_utf8(fixture("02-message-text.json")).unwrap();
    for position in POSITIONS {
        let response = send(&app, position, "not-the-token", &body).await;
        assert_eq!(response.status(), 401, "{position:?}");
        let error = error_body(response).await;
        assert_eq!(error["error"], "unauthorized");
        assert!(error["message"].as_str().unwrap().contains("not valid"));
    }
    let response = app
        .client
        .post(app.webhook_url())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error = error_body(response).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no webhook token"),
        "{error}"
    );
    // A handshake with a wrong token does not echo anything.
    let response = send(&app, Position::Bearer, "nope", "").await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.event_count().await, 0);
}

async fn every_rotated_token_is_accepted(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            tokens: Some(
                "old-token-0123456789abcdef0123456789,new-token-0123456789abcdef0123456789".into(),
            ),
            ..Options::default()
        },
    );
    for token in [
        "old-token-0123456789abcdef0123456789",
        "new-token-0123456789abcdef0123456789",
    ] {
        let response = send(&app, Position::Bearer, token, "").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.text().await.unwrap(),
            token,
            "the caller's token comes back"
        );
    }
    let response = send(
        &app,
        Position::Bearer,
        "old-token-0123456789abcdef0123456789,new-token-0123456789abcdef0123456789",
        "",
    )
    .await;
    assert_eq!(response.status(), 401);
}

on_both_backends!(
    handshake_answers_the_token_in_every_position,
    events_are_accepted_with_the_token_in_every_position,
    wrong_and_missing_tokens_are_refused_and_nothing_is_stored,
    every_rotated_token_is_accepted,
);
