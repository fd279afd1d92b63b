//! Fixtures stored, duplicates stored once, conversation state, odd items.

use crate::helpers::*;
use crate::on_both_backends;
use hookline_storage::{conversations, events};
use hookline_testdb::TestDatabase;
use serde_json::{json, Value};

const EXPECTED_TYPES: [(&str, Option<&str>); 28] = [
    ("conversation_create", None),
    ("message", Some("text")),
    ("message", Some("image")),
    ("message", Some("form")),
    ("message", Some("file_upload")),
    ("message", Some("calendar")),
    ("message", Some("audio")),
    ("message", Some("calendly.response")),
    ("message", Some("video")),
    ("message", Some("list")),
    ("message", Some("javascript")),
    ("message", Some("button")),
    ("message", Some("document")),
    ("message", Some("carousel")),
    ("message", Some("javascript.response")),
    ("message", Some("slider.response")),
    ("message", Some("slider")),
    ("message", Some("appointment_booking.response")),
    ("message", Some("button.response")),
    ("message", Some("form.response")),
    ("message", Some("file_upload.response")),
    ("message", Some("appointment_booking")),
    ("status", None),
    ("assignee_change", None),
    ("variables", None),
    ("variables", None),
    ("conversation_labels", None),
    ("note", None),
];

async fn check_all_fixtures_stored(app: &TestApp) {
    let stored = app.with_db(|c| events::all(c).unwrap()).await;
    assert_eq!(stored.len(), 28);
    for ((row, (name, body)), (event_type, message_type)) in
        stored.iter().zip(fixtures()).zip(EXPECTED_TYPES)
    {
        assert_eq!(row.event_type, event_type, "{name}");
        assert_eq!(row.message_type.as_deref(), message_type, "{name}");
        let original: Value = serde_json::from_slice(&body).unwrap();
        let raw: Value = serde_json::from_str(&row.raw).unwrap();
        assert_eq!(raw, original["events"][0], "{name}: raw JSON as received");
        assert!(!row.summary.is_empty(), "{name}");
    }
}

async fn all_fixtures_posted_one_per_request_are_stored(db: TestDatabase) {
    let app = spawn_app(db);
    for (name, body) in fixtures() {
        let response = app.post(body).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(header_number(&response, "Hookline-Stored"), 1, "{name}");
        assert_eq!(header_number(&response, "Hookline-Duplicates"), 0, "{name}");
    }
    check_all_fixtures_stored(&app).await;
}

async fn all_fixtures_posted_in_one_batch_are_stored(db: TestDatabase) {
    let app = spawn_app(db);
    let items: Vec<Value> = fixtures()
        .into_iter()
        .map(|(_, body)| serde_json::from_slice::<Value>(&body).unwrap()["events"][0].clone())
        .collect();
    let response = app.post(envelope(&items)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_number(&response, "Hookline-Stored"), 28);
    check_all_fixtures_stored(&app).await;
    let conversation = app
        .with_db(|c| conversations::get(c, CONVERSATION).unwrap().unwrap())
        .await;
    assert_eq!(
        conversation.message_count, 20,
        "20 of the fixtures are messages in this conversation"
    );
    assert_eq!(conversation.status, "closed");
}

async fn a_duplicate_delivery_is_stored_once(db: TestDatabase) {
    let app = spawn_app(db);
    let body = fixture("24-assignee_change.json");
    let first = app.post(body.clone()).await;
    assert_eq!(header_number(&first, "Hookline-Stored"), 1);
    let again = app.post(body.clone()).await;
    assert_eq!(again.status(), 200);
    assert_eq!(header_number(&again, "Hookline-Stored"), 0);
    assert_eq!(header_number(&again, "Hookline-Duplicates"), 1);
    // The same event with other spacing and key order.
    let value: Value = serde_json::from_slice(&body).unwrap();
    let spaced = serde_json::to_string_pretty(&value).unwrap();
    let respaced = app.post(spaced).await;
    assert_eq!(header_number(&respaced, "Hookline-Duplicates"), 1);
    assert_eq!(app.event_count().await, 1);
}

async fn concurrent_duplicates_are_stored_once(db: TestDatabase) {
    let app = spawn_app(db);
    let body = fixture("23-status.json");
    let requests = (0..24).map(|_| {
        let request = app
            .client
            .post(app.webhook_url())
            .bearer_auth(&app.token)
            .body(body.clone());
        async move { request.send().await.unwrap() }
    });
    let responses = futures_join_all(requests).await;
    let mut stored = 0;
    let mut duplicates = 0;
    for response in &responses {
        assert_eq!(response.status(), 200);
        stored += header_number(response, "Hookline-Stored");
        duplicates += header_number(response, "Hookline-Duplicates");
    }
    assert_eq!((stored, duplicates), (1, 23));
    assert_eq!(app.event_count().await, 1);
}

/// Awaits every future concurrently (a tiny `join_all`).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

async fn out_of_order_events_leave_the_newest_state(db: TestDatabase) {
    let app = spawn_app(db);
    let at = |name: &str, ts: &str| {
        let mut item = fixture_item(name);
        item["timestamp"] = json!(ts);
        envelope(&[item])
    };
    // Close at 14:30 arrives first; the handover (14:20), then the create (14:00).
    for body in [
        at("23-status.json", "2023-09-01 14:30:00.000001"),
        at("24-assignee_change.json", "2023-09-01 14:20:00"),
        at("02-message-text.json", "2023-09-01 14:25:00"),
        at("01-conversation_create.json", "2023-09-01 14:00:00"),
    ] {
        assert_eq!(app.post(body).await.status(), 200);
    }
    let c = app
        .with_db(|c| conversations::get(c, CONVERSATION).unwrap().unwrap())
        .await;
    assert_eq!(c.status, "closed");
    assert_eq!(
        c.closed_at.unwrap().to_string(),
        "2023-09-01 14:30:00.000001"
    );
    assert_eq!(c.assignee_email.as_deref(), Some("himanshu@swiftsell.biz"));
    assert_eq!(c.assignee_type.as_deref(), Some("user"));
    assert_eq!(c.title.as_deref(), Some("Visitor - A27187"));
    assert_eq!(c.visitor_name.as_deref(), Some("nik"));
    assert_eq!(
        c.created_at.unwrap().to_string(),
        "2023-08-29 04:27:48.236411"
    );
    assert_eq!(c.last_event_at.to_string(), "2023-09-01 14:30:00.000001");
    assert_eq!(c.message_count, 1);
    // Events come back oldest first by occurrence.
    let timeline = app
        .with_db(|c| events::for_conversation(c, CONVERSATION, None, 10_000).unwrap())
        .await;
    let types: Vec<&str> = timeline.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "conversation_create",
            "assignee_change",
            "message",
            "status"
        ]
    );
}

async fn unknown_and_unrecognized_items_are_stored_whole(db: TestDatabase) {
    let app = spawn_app(db);
    let mut unknown = fixture_item("28-note.json");
    unknown["event"] = json!({"type": "rating", "payload": {"stars": 5}});
    let items = vec![
        unknown.clone(),
        json!([1, 2, 3]),
        json!({"no": "event"}),
        json!("text"),
    ];
    let response = app.post(envelope(&items)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_number(&response, "Hookline-Stored"), 4);
    let stored = app.with_db(|c| events::all(c).unwrap()).await;
    let types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["rating", "unrecognized", "unrecognized", "unrecognized"]
    );
    for (row, item) in stored.iter().zip(&items) {
        assert_eq!(&serde_json::from_str::<Value>(&row.raw).unwrap(), item);
    }
    assert_eq!(stored[0].conversation_key.as_deref(), Some(CONVERSATION));
}

async fn an_empty_batch_is_acknowledged(db: TestDatabase) {
    let app = spawn_app(db);
    let response = app.post(r#"{"events": []}"#).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_number(&response, "Hookline-Stored"), 0);
    assert_eq!(response.text().await.unwrap(), app.token);
}

on_both_backends!(
    all_fixtures_posted_one_per_request_are_stored,
    all_fixtures_posted_in_one_batch_are_stored,
    a_duplicate_delivery_is_stored_once,
    concurrent_duplicates_are_stored_once,
    out_of_order_events_leave_the_newest_state,
    unknown_and_unrecognized_items_are_stored_whole,
    an_empty_batch_is_acknowledged,
);
