//! The timer rules' part of `/metrics`: timers armed, fired, cancelled and
//! missed (counters of this process), timers by status and how overdue the
//! oldest due timer is (from the database, by its clock).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use actix_web::web;
use hookline_storage::timers;

use crate::AppState;

pub async fn render(out: &mut String, state: &web::Data<AppState>) {
    let armed = hookline_notifier::timers::counters();
    let _ = writeln!(out, "# HELP hookline_timers_armed_total Timer steps armed by start events (and rule edits).\n# TYPE hookline_timers_armed_total counter");
    let _ = writeln!(
        out,
        "hookline_timers_armed_total {}",
        armed.armed.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# HELP hookline_timers_cancelled_total Timer steps cancelled before firing (stop events, rule changes, ended episodes).\n# TYPE hookline_timers_cancelled_total counter");
    let _ = writeln!(
        out,
        "hookline_timers_cancelled_total {}",
        armed.cancelled.load(Ordering::Relaxed)
    );
    if let Some(stats) = &state.stats.timers {
        let _ = writeln!(out, "# HELP hookline_timers_fired_total Timer steps fired (their emails queued).\n# TYPE hookline_timers_fired_total counter");
        let _ = writeln!(
            out,
            "hookline_timers_fired_total {}",
            stats.fired.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP hookline_timers_missed_total Timer steps overdue past max_lateness, summarised instead.\n# TYPE hookline_timers_missed_total counter");
        let _ = writeln!(
            out,
            "hookline_timers_missed_total {}",
            stats.missed.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP hookline_timers_fire_lateness_seconds_sum Time from due to fired, summed over fired timers.\n# TYPE hookline_timers_fire_lateness_seconds_sum counter");
        let _ = writeln!(
            out,
            "hookline_timers_fire_lateness_seconds_sum {}",
            stats.latency_ms_sum.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(out, "# HELP hookline_timers_fire_lateness_seconds_max The longest time from due to fired.\n# TYPE hookline_timers_fire_lateness_seconds_max gauge");
        let _ = writeln!(
            out,
            "hookline_timers_fire_lateness_seconds_max {}",
            stats.latency_ms_max.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }
    let db = state.db.clone();
    let stored = web::block(move || {
        let mut conn = db.conn().ok()?;
        let counts = timers::count_by_status(&mut conn).ok()?;
        let now = timers::db_now(&mut conn).ok()?;
        let oldest = timers::oldest_overdue(&mut conn, now).ok()?;
        Some((counts, oldest.map(|due| now - due)))
    })
    .await
    .ok()
    .flatten();
    if let Some((counts, overdue)) = stored {
        let _ = writeln!(
            out,
            "# HELP hookline_timers Timer steps by status.\n# TYPE hookline_timers gauge"
        );
        for status in timers::STATUSES {
            let n = counts
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "hookline_timers{{status=\"{status}\"}} {n}");
        }
        let seconds = overdue.map_or(0.0, |d| d.num_milliseconds().max(0) as f64 / 1000.0);
        let _ = writeln!(out, "# HELP hookline_timers_oldest_overdue_seconds How long the oldest due timer not fired yet has been due (database clock).\n# TYPE hookline_timers_oldest_overdue_seconds gauge");
        let _ = writeln!(out, "hookline_timers_oldest_overdue_seconds {seconds}");
    }
}
