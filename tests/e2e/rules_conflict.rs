//! Concurrent admin writes to rules: a name taken by a concurrent request
//! is a conflict (409), not a storage failure (503).

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

async fn concurrent_creates_of_one_rule_name_conflict(db: TestDatabase) {
    let app = spawn_app(db);
    for round in 0..5 {
        let name = format!("race-{round}");
        let requests: Vec<_> = (0..6)
            .map(|_| {
                let rule = json!({"name": name, "on": ["note"], "to": ["lead@example.com"], "template": "generic"});
                let request = app
                    .client
                    .post(format!("{}/api/v1/rules", app.base))
                    .bearer_auth(ADMIN_TOKEN)
                    .header("content-type", "application/json")
                    .body(rule.to_string());
                tokio::spawn(async move {
                    let response = request.send().await.expect("create rule");
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for request in requests {
            statuses.push(request.await.expect("request task"));
        }
        let created = statuses.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(created, 1, "{name}: {statuses:?}");
        for (status, body) in &statuses {
            assert!(
                *status == 201 || *status == 409,
                "{name}: a concurrent create answered {status}: {body}"
            );
        }
    }
    let (_, list) = app.api(Method::GET, "/api/v1/rules", None).await;
    let races = list["items"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with("race-")))
        .count();
    assert_eq!(races, 5);
}

on_both_backends!(concurrent_creates_of_one_rule_name_conflict);
