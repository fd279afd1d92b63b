//! hookline as an attacker would try it: mail to anyone, links, login,
//! tokens, exports, files on disk, metrics. Each finding of the security
//! review has a test here against the real binary.

mod access;
mod recipients;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp::SmtpServer;

fn with_smtp(smtp: &SmtpServer) -> Options {
    Options {
        smtp_port: Some(smtp.port),
        ..Options::default()
    }
}

/// The handover fixture, to `to_email`, in conversation `key`, at `ts`.
fn handover(key: &str, to_email: &str, ts: &str) -> Value {
    let mut item = fixture_item("24-assignee_change.json");
    item["conversation"]["key"] = json!(key);
    item["event"]["payload"]["to"]["email"] = json!(to_email);
    item["timestamp"] = json!(ts);
    item
}

async fn notifications_settled(
    app: &TestApp,
    n: usize,
) -> Vec<hookline_storage::notifications::Notification> {
    app.wait_for_notifications(15, "notifications to settle", |rows| {
        rows.len() == n
            && rows
                .iter()
                .all(|r| !["queued", "sending"].contains(&r.status.as_str()))
    })
    .await
}
