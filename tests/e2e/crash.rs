//! A server killed with SIGKILL while clients send loses no event it
//! answered 200.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;
use crate::on_both_backends;
use hookline_storage::events;
use hookline_testdb::TestDatabase;

async fn sigkill_under_load_loses_no_acknowledged_event(db: TestDatabase) {
    let mut app = spawn_app(db);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let url = app.webhook_url();
    let mut clients = Vec::new();
    for client_index in 0..6 {
        let acknowledged = Arc::clone(&acknowledged);
        let client = app.client.clone();
        let url = url.clone();
        let token = app.token.clone();
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                let text = format!("crash-test client {client_index} message {n}");
                let mut item = fixture_item("02-message-text.json");
                item["event"]["payload"]["message"]["text"] = serde_json::json!(text);
                let sent = client
                    .post(&url)
                    .bearer_auth(&token)
                    .body(envelope(&[item]))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.lock().unwrap().push(text);
                    }
                    // Refused, reset or cut off: not acknowledged.
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.kill();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "the load was too light to mean anything: {}",
        acknowledged.len()
    );
    let stored = app.with_db(|c| events::all(c).unwrap()).await;
    let stored_texts: std::collections::HashSet<String> = stored
        .iter()
        .filter_map(|e| {
            let raw: serde_json::Value = serde_json::from_str(&e.raw).ok()?;
            raw["event"]["payload"]["message"]["text"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|t| !stored_texts.contains(*t))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );
    println!(
        "acknowledged {}, stored {}",
        acknowledged.len(),
        stored.len()
    );
}

on_both_backends!(sigkill_under_load_loses_no_acknowledged_event);
