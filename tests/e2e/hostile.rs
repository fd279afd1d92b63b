//! Hostile input against the real binary, on both backends: hundreds of
//! generated deliveries (every documented item with one value replaced by
//! the wrong type, a huge or empty value, NUL and control characters, deep
//! nesting, an out-of-range number or a duplicate key) and HTTP abuse
//! (partial, slow and oversized bodies, wrong Content-Length, chunked
//! bodies over the limit, huge headers, every token position right and
//! wrong). Whatever arrives: no 5xx, no panic in the server's log, ready at
//! the end, and every event answered 200 is stored.

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

/// Generated deliveries per backend (two backends: 320 in all).
const CASES: u32 = 160;

/// A value put in place of one of an item's values. `Raw` is written into
/// the body as it is (JSON that `serde_json::Value` cannot represent).
#[derive(Clone, Debug)]
enum Hostile {
    Json(Value),
    Raw(String),
}

fn hostile_value() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        // Wrong types and empty values.
        prop_oneof![
            Just(Value::Null),
            Just(Value::Bool(true)),
            Just(serde_json::json!(0)),
            Just(serde_json::json!(-1)),
            Just(serde_json::json!(1.5)),
            Just(serde_json::json!("")),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
            Just(serde_json::json!(u64::MAX)),
            Just(serde_json::json!(i64::MIN)),
        ]
        .prop_map(Hostile::Json),
        // Huge strings, NUL and control characters, header injection.
        (1usize..200_000).prop_map(|n| Hostile::Json(Value::from("A".repeat(n)))),
        "[\\x00-\\x1f\\x7f\u{202e}\u{feff}]{1,20}".prop_map(|s| Hostile::Json(Value::from(s))),
        Just(Hostile::Json(Value::from(
            "x\r\nBcc: victim@example.net\r\n\r\nbody"
        ))),
        Just(Hostile::Json(Value::from("javascript:alert(1)"))),
        Just(Hostile::Json(Value::from("9999-12-31 23:59:59"))),
        // Deep nesting (serde_json's limit is 128 levels).
        (1usize..100).prop_map(|depth| Hostile::Raw(format!(
            "{}1{}",
            "[".repeat(depth),
            "]".repeat(depth)
        ))),
        // Numbers no f64 or i64 holds.
        prop_oneof![
            Just("1e400"),
            Just("-1e400"),
            Just("1e-400"),
            Just("18446744073709551616"),
            Just("-9223372036854775809"),
            Just("123456789012345678901234567890"),
        ]
        .prop_map(|s| Hostile::Raw(s.to_owned())),
        // A duplicate key.
        Just(Hostile::Raw(
            "{\"type\": \"a\", \"type\": \"b\", \"email\": 1, \"email\": \"x@y.z\"}".to_owned()
        )),
    ]
}

/// Every path to a value inside `value`.
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                prefix.push(key.clone());
                paths(inner, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                prefix.push(index.to_string());
                paths(inner, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

const PLACEHOLDER: &str = "__hostile_value__";

/// The body of a delivery whose item is fixture `which` with the value at
/// path number `at` replaced by `value`.
fn hostile_body(items: &[Value], which: usize, at: prop::sample::Index, value: &Hostile) -> String {
    let mut item = items[which].clone();
    let mut all = Vec::new();
    paths(&item, &mut Vec::new(), &mut all);
    let path = at.get(&all).clone();
    let replacement = match value {
        Hostile::Json(v) => v.clone(),
        Hostile::Raw(_) => Value::from(PLACEHOLDER),
    };
    let mut target = &mut item;
    for segment in &path {
        target = match target {
            Value::Object(map) => map.entry(segment.clone()).or_insert(Value::Null),
            Value::Array(list) => &mut list[segment.parse::<usize>().unwrap_or(0)],
            _ => break,
        };
    }
    *target = replacement;
    let body = envelope(&[item]);
    match value {
        Hostile::Raw(raw) => body.replacen(&format!("\"{PLACEHOLDER}\""), raw, 1),
        Hostile::Json(_) => body,
    }
}

/// Sends raw bytes and returns the status line's code, if an answer came
/// within `wait`.
async fn raw(app: &TestApp, bytes: &[u8], wait: Duration) -> Option<u16> {
    let address = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.ok()?;
    let _ = stream.write_all(bytes).await;
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(wait, stream.read(&mut answer))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&answer[..n])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Checks an answer: never a 5xx, and counts what was acknowledged.
fn acknowledged(status: u16, stored: usize, what: &str) -> usize {
    assert!(status < 500, "{what}: answered {status}");
    if status == 200 {
        stored
    } else {
        0
    }
}

async fn hostile_requests_never_stop_ingest(db: TestDatabase) {
    let app = spawn_app_with(
        Some(db),
        Options {
            log_to_file: true,
            extra_args: vec!["--body-timeout-seconds".into(), "2".into()],
            ..Options::default()
        },
    );
    let items: Vec<Value> = fixtures()
        .iter()
        .map(|(_, body)| serde_json::from_slice::<Value>(body).unwrap()["events"][0].clone())
        .collect();
    let mut stored_total = 0;

    // Generated deliveries.
    let strategy = (
        0..items.len(),
        any::<prop::sample::Index>(),
        hostile_value(),
    );
    let mut runner = TestRunner::default();
    for case in 0..CASES {
        let (which, at, value) = strategy.new_tree(&mut runner).unwrap().current();
        let body = hostile_body(&items, which, at, &value);
        let response = app.post(body.clone()).await;
        let status = response.status().as_u16();
        let stored = response
            .headers()
            .get("Hookline-Stored")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let shown: String = body.chars().take(300).collect();
        stored_total += acknowledged(status, stored, &format!("case {case}: {shown}"));
        assert!(
            status == 200 || status == 413,
            "case {case}: a delivery of a documented item with one odd value is stored, got {status}: {shown}"
        );
    }

    // HTTP abuse.
    let token = app.token.clone();
    let note = envelope(&[fixture_item("28-note.json")]);
    let head = |length: usize, extra: &str| {
        format!(
            "POST /webhooks/swiftsell HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n"
        )
    };
    // A body cut short (the client goes away) and one that never ends.
    let mut partial = head(note.len(), "").into_bytes();
    partial.extend_from_slice(&note.as_bytes()[..note.len() / 2]);
    assert_eq!(raw(&app, &partial, Duration::from_secs(6)).await, Some(408));
    // Content-Length smaller than the body: the rest is a broken next request.
    let mut short = head(note.len() / 2, "").into_bytes();
    short.extend_from_slice(note.as_bytes());
    let status = raw(&app, &short, Duration::from_secs(6))
        .await
        .unwrap_or(400);
    assert!(status < 500, "short Content-Length: {status}");
    // A declared length over the limit.
    assert_eq!(
        raw(
            &app,
            head(50 * 1024 * 1024, "").as_bytes(),
            Duration::from_secs(5)
        )
        .await,
        Some(413)
    );
    // A chunked body over the limit.
    let mut chunked = format!(
        "POST /webhooks/swiftsell HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b' '; 256 * 1024];
    for _ in 0..6 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(
        raw(&app, &chunked, Duration::from_secs(10)).await,
        Some(413)
    );
    // A slow body that arrives within the deadline is stored.
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let mut slow_note = fixture_item("28-note.json");
    slow_note["timestamp"] = Value::from("2023-09-02 10:00:00");
    let slow = envelope(&[slow_note]);
    stream
        .write_all(head(slow.len(), "").as_bytes())
        .await
        .unwrap();
    for piece in slow.as_bytes().chunks(slow.len() / 4 + 1) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    stored_total += 1;
    // Huge headers.
    let huge = head(2, &format!("X-Huge: {}\r\n", "h".repeat(200_000)));
    let status = raw(
        &app,
        format!("{huge}{{}}").as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(status.is_none_or(|s| s < 500), "huge header: {status:?}");
    // Every token position, right and wrong.
    for right in [true, false] {
        let token = if right {
            app.token.clone()
        } else {
            "wrong-token".to_owned()
        };
        let positions = [
            app.client
                .post(app.webhook_url())
                .bearer_auth(&token)
                .body(note.clone()),
            app.client
                .post(app.webhook_url())
                .header("X-Swiftsell-Token", &token)
                .body(note.clone()),
            app.client
                .post(app.webhook_url())
                .header("Token", &token)
                .body(note.clone()),
            app.client
                .post(format!("{}?token={token}", app.webhook_url()))
                .body(note.clone()),
            app.client.post(app.webhook_url()).body(
                serde_json::json!({"token": token, "events": [fixture_item("28-note.json")]})
                    .to_string(),
            ),
        ];
        for (position, request) in positions.into_iter().enumerate() {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            assert_eq!(
                status,
                if right { 200 } else { 401 },
                "position {position}, right={right}"
            );
            let stored = response
                .headers()
                .get("Hookline-Stored")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            stored_total += acknowledged(status, stored, "token positions");
        }
    }

    // Everything acknowledged is stored; the server is ready and never
    // panicked.
    assert_eq!(app.event_count().await, stored_total as i64);
    assert_eq!(app.readyz().await, 200);
    let log = std::fs::read_to_string(app.data_dir.path().join("server.log")).unwrap();
    assert!(!log.contains("panicked"), "{log}");
}

on_both_backends!(hostile_requests_never_stop_ingest);
