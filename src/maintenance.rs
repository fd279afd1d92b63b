//! `hookline purge`, `hookline erase`, and the retention task of `serve`.

use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{NaiveDate, NaiveDateTime};
use hookline_storage::{retention, Database};
use tokio::sync::watch;

use crate::serve::open_existing_database;
use crate::settings::Settings;

/// `2024-01-31` (midnight UTC) or an RFC 3339 time.
fn parse_cutoff(text: &str) -> anyhow::Result<NaiveDateTime> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.naive_utc());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default());
    }
    bail!("--before {text:?} is not a date (2024-01-31) or an RFC 3339 time")
}

pub fn purge(before: &str, settings: &Settings) -> anyhow::Result<()> {
    let cutoff = parse_cutoff(before)?;
    let (db, _) = open_existing_database(settings)?;
    let mut conn = db.dedicated_connection()?;
    let deleted = retention::purge_before(&mut conn, cutoff).context("purge failed")?;
    println!(
        "deleted before {cutoff} UTC: {} events, {} conversations, {} notifications",
        deleted.events, deleted.conversations, deleted.notifications
    );
    Ok(())
}

pub fn erase(visitor: &str, settings: &Settings) -> anyhow::Result<()> {
    let (db, _) = open_existing_database(settings)?;
    let mut conn = db.dedicated_connection()?;
    let erased =
        hookline_notifier::erase::erase_visitor(&mut conn, visitor).context("erase failed")?;
    let deleted = erased.rows;
    println!(
        "visitor {visitor}: deleted {} events, {} conversations, {} notifications, {} email files",
        deleted.events, deleted.conversations, deleted.notifications, erased.email_files
    );
    Ok(())
}

/// Deletes data older than `days` every `every`, in bounded batches; on
/// PostgreSQL one process at a time runs it.
pub async fn retention_task(
    db: Database,
    days: u32,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let db = db.clone();
        let result = tokio::task::spawn_blocking(move || {
            let cutoff = hookline_storage::now() - chrono::Duration::days(i64::from(days));
            let mut conn = db.dedicated_connection()?;
            Ok::<_, hookline_storage::StorageError>(retention::purge_exclusive(&mut conn, cutoff)?)
        })
        .await;
        match result {
            Ok(Ok(Some(deleted))) => tracing::info!(
                events = deleted.events,
                conversations = deleted.conversations,
                notifications = deleted.notifications,
                days,
                "retention: deleted old data"
            ),
            Ok(Ok(None)) => tracing::debug!("retention: another process is running it"),
            Ok(Err(error)) => tracing::warn!(%error, "retention failed; will retry"),
            Err(error) => tracing::warn!(%error, "retention task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_parse_dates_and_times() {
        assert_eq!(
            parse_cutoff("2024-01-31").unwrap().to_string(),
            "2024-01-31 00:00:00"
        );
        assert_eq!(
            parse_cutoff("2024-01-31T10:00:00+02:00")
                .unwrap()
                .to_string(),
            "2024-01-31 08:00:00"
        );
        assert!(parse_cutoff("last week").is_err());
    }
}
