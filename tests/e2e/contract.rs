//! The admin API against its own OpenAPI document, checked by Schemathesis
//! (from PyPI; `.ci/run` installs it in a virtualenv and sets
//! `HOOKLINE_TEST_SCHEMATHESIS` to its executable): every operation is
//! called with generated valid and invalid requests, and each answer must
//! be documented (status, content type, body schema), no answer a 5xx,
//! valid requests accepted and invalid ones refused. Skipped with a notice
//! when the variable is unset.

use std::process::Command;

use crate::helpers::*;
use crate::on_both_backends;
use hookline_testdb::TestDatabase;

/// Test cases per operation and phase: about 20 s per backend.
const EXAMPLES: &str = "25";
/// A fixed seed: a failure reproduces, and CI does not pass or fail by luck.
const SEED: &str = "20261130";

on_both_backends!(the_api_keeps_its_openapi_contract);

async fn the_api_keeps_its_openapi_contract(db: TestDatabase) {
    let Some(schemathesis) = std::env::var_os("HOOKLINE_TEST_SCHEMATHESIS") else {
        eprintln!("skipped: HOOKLINE_TEST_SCHEMATHESIS is unset (.ci/run installs Schemathesis and sets it)");
        return;
    };
    let app = spawn_app(db);
    // Stored events, conversations and emails: the list and detail answers
    // have items to check against their schemas.
    for (name, body) in fixtures() {
        assert_eq!(app.post(body).await.status(), 200, "{name}");
    }
    let (status, document) = app
        .api(reqwest::Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(status, 200);
    let operations: usize = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|p| p.as_object().map_or(0, |m| m.len()))
        .sum();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");
    let workdir = tempfile::tempdir().expect("work dir");
    let url = format!("{}/api/v1/openapi.json", app.base);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .current_dir(workdir.path())
            .args(["--config-file", config, "run", &url])
            .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
            .args(["--max-examples", EXAMPLES, "--seed", SEED])
            // One worker: Hypothesis's lambda descriptions are not
            // thread-safe on CPython 3.11 (a spurious SystemError).
            .args(["--workers", "1", "--request-timeout", "10"])
            .args(["--generation-database", "none", "--no-color"])
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("schemathesis thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Schemathesis found problems:\n{stdout}\n{stderr}"
    );
    // It tested every operation and generated cases (not a silent no-op).
    assert!(
        stdout.contains(&format!("Tested: {operations}")),
        "{operations} operations: {stdout}"
    );
    assert!(stdout.contains(" passed"), "{stdout}");
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("generated,") || l.contains("Tested:"))
        .collect();
    println!("schemathesis: {}", summary.join("; "));
    // And the server is still up after all of it.
    assert_eq!(app.readyz().await, 200);
}

on_both_backends!(what_the_contract_excludes_is_refused_by_name);

/// The findings of Schemathesis, each pinned by a request of its own.
async fn what_the_contract_excludes_is_refused_by_name(db: TestDatabase) {
    let app = spawn_app(db);
    assert_eq!(
        app.post(fixture("01-conversation_create.json"))
            .await
            .status(),
        200
    );
    // A NUL character cannot be stored on PostgreSQL: a 400 naming the
    // parameter, not a 503.
    let (status, body) = app
        .api(reqwest::Method::GET, "/api/v1/events?q=a%00b", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("parameter \"q\": contains a NUL"));
    let (status, _) = app
        .api(reqwest::Method::GET, "/api/v1/conversations/a%00b", None)
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .api(
            reqwest::Method::POST,
            "/api/v1/erase",
            Some(serde_json::json!({"visitor": "a\u{0}b"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // A body must be a JSON object: serde would read an array field by field.
    let (status, body) = app
        .api(
            reqwest::Method::POST,
            "/api/v1/rules/1/preview",
            Some(serde_json::json!([null, null])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("not a JSON object"));
    // Another method on a known path is a JSON 405 with Allow.
    let response = app
        .client
        .delete(format!("{}/api/v1/events", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    assert_eq!(error_body(response).await["error"], "method_not_allowed");
}
