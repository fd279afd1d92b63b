//! What a timer email's template sees as `timer.*`.

use chrono::NaiveDateTime;
use hookline_storage::diesel::QueryResult;
use hookline_storage::timers::{self as store, Timer};
use hookline_storage::DbConnection;
use serde_json::Value;

/// The `timer` value of a template context: what a timer email is about
/// (null in other emails).
pub fn template_facts(
    conn: &mut DbConnection,
    n: &hookline_storage::notifications::Notification,
) -> QueryResult<Value> {
    let Some(rule_id) = n.rule_id else {
        return Ok(Value::Null);
    };
    if let Some(key) = n.conversation_key.as_deref() {
        let fired = store::finished_at(conn, rule_id, store::FIRED, Some(key), n.created_at)?;
        return Ok(fired
            .first()
            .map_or(Value::Null, |timer| timer_value(timer, n.created_at, &[])));
    }
    let missed = store::finished_at(conn, rule_id, store::MISSED, None, n.created_at)?;
    match missed.first() {
        Some(first) => Ok(timer_value(first, n.created_at, &missed)),
        None => Ok(Value::Null),
    }
}

fn when(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `5m 0s`, `1h 20m`, `2d 3h`.
pub fn human(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn timer_value(timer: &Timer, at: NaiveDateTime, missed: &[Timer]) -> Value {
    let missed: Vec<Value> = missed
        .iter()
        .map(|t| {
            serde_json::json!({
                "conversation": t.conversation_key,
                "since": when(t.started_at),
                "due_at": when(t.due_at),
                "step": t.step + 1,
            })
        })
        .collect();
    serde_json::json!({
        "id": timer.id,
        "step": timer.step + 1,
        "escalation": timer.step > 0,
        "episode": timer.episode,
        "since": when(timer.started_at),
        "due_at": when(timer.due_at),
        "waited": human((at - timer.started_at).num_seconds()),
        "late": human((at - timer.due_at).num_seconds()),
        "recipients": timer.recipients,
        "missed": missed,
        "missed_count": missed.len(),
    })
}

/// The `timer` value of an email a preview says would have gone: step
/// `step` (1-based) of a wait started at `since`, due at `due_at`, sent
/// `at`.
pub fn preview_facts(
    step: usize,
    since: NaiveDateTime,
    due_at: NaiveDateTime,
    at: NaiveDateTime,
    recipients: &str,
) -> Value {
    serde_json::json!({
        "id": 0, "step": step, "escalation": step > 1, "episode": 1,
        "since": when(since), "due_at": when(due_at),
        "waited": human((at - since).num_seconds()),
        "late": human((at - due_at).num_seconds()),
        "recipients": recipients,
        "missed": [], "missed_count": 0,
    })
}

/// A `timer` value for template checks over the samples.
pub fn sample_facts() -> Value {
    serde_json::json!({
        "id": 1, "step": 1, "escalation": false, "episode": 1,
        "since": "2026-01-05 09:00:00 UTC", "due_at": "2026-01-05 09:05:00 UTC",
        "waited": "5m 0s", "late": "0s", "recipients": "lead@example.com",
        "missed": [], "missed_count": 0,
    })
}
