//! Arming, re-arming and cancelling timers: in the ingest transaction
//! ([`apply`]) and after a rule change ([`reconcile`], [`recompute`]).

use std::sync::Arc;

use chrono::NaiveDateTime;
use hookline_storage::diesel::QueryResult;
use hookline_storage::timers::{self as store, Episode, NewTimer, Timer};
use hookline_storage::{DbConnection, NewlyStored};

use super::*;
use crate::context::{evaluation_context, EventFacts};
use crate::engine::{CompiledRule, RuleSet};

/// Counters for metrics (shared by ingest and the worker).
#[derive(Debug, Default)]
pub struct Counters {
    pub armed: std::sync::atomic::AtomicU64,
    pub cancelled: std::sync::atomic::AtomicU64,
}

/// The process-wide counters.
pub fn counters() -> &'static Counters {
    static COUNTERS: std::sync::OnceLock<Counters> = std::sync::OnceLock::new();
    COUNTERS.get_or_init(Counters::default)
}

fn count(counter: &std::sync::atomic::AtomicU64, n: usize) {
    counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
}

/// The rows an episode's steps become.
fn rows_for(
    rule: &CompiledRule,
    timer: &CompiledTimer,
    key: &str,
    episode: &Episode,
    now: NaiveDateTime,
) -> Vec<NewTimer> {
    let Some(rule_id) = rule.id else {
        return Vec::new();
    };
    (0..timer.steps.len())
        .filter_map(|index| {
            let step = &timer.steps[index];
            Some(NewTimer {
                rule_id,
                rule_name: rule.name().to_owned(),
                conversation_key: key.to_owned(),
                episode: episode.episode,
                step: i32::try_from(index).ok()?,
                status: store::ARMED.to_owned(),
                started_at: episode.started_at,
                due_at: timer.due(index, episode.started_at)?,
                event_id: episode.start_event_id,
                recipients: step.rule.def.to.join(", "),
                template: step.rule.def.template.clone(),
                fingerprint: timer.fingerprint.clone(),
                created_at: now,
                updated_at: now,
            })
        })
        .collect()
}

/// Arms, re-arms and cancels timers for the events a group stored, in
/// the ingest transaction. Only newly stored events reach it (a duplicate
/// delivery is not here), and the unique key of a timer row makes arming
/// twice impossible anyway.
pub fn apply(
    conn: &mut DbConnection,
    stored: &[NewlyStored<'_>],
    set: &RuleSet,
) -> QueryResult<()> {
    let rules: Vec<&Arc<CompiledRule>> = set.timer_rules().collect();
    if rules.is_empty() {
        return Ok(());
    }
    let mut db_now: Option<NaiveDateTime> = None;
    for new in stored {
        let event = &new.item.event;
        let Some(key) = event.conversation_key.as_deref() else {
            continue;
        };
        let listening: Vec<&Arc<CompiledRule>> = rules
            .iter()
            .copied()
            .filter(|r| {
                r.timer
                    .as_ref()
                    .is_some_and(|t| t.listens_to(&event.event_type))
            })
            .collect();
        if listening.is_empty() {
            continue;
        }
        let facts = EventFacts {
            id: Some(new.id),
            event_type: &event.event_type,
            message_type: event.message_type.as_deref(),
            summary: &event.summary,
            occurred_at: event.occurred_at,
            actor_type: event.actor_type.as_deref(),
            actor_email: event.actor_email.as_deref(),
            item: crate::context::ItemSource::Typed(new.item.item.as_ref()),
        };
        let context = evaluation_context(&facts, new.conversation.as_ref());
        let now = match db_now {
            Some(now) => now,
            None => *db_now.insert(store::db_now(conn)?),
        };
        // An event from the future (a clock ahead) counts from now.
        let at = event.occurred_at.min(now);
        for rule in listening {
            let (Some(timer), Some(rule_id)) = (rule.timer.as_ref(), rule.id) else {
                continue;
            };
            let stops = timer
                .stop
                .iter()
                .any(|t| t.matches(&event.event_type, &context));
            let starts = timer.start.matches(&event.event_type, &context);
            if !stops && !starts {
                continue;
            }
            let mut episode = store::episode_locked(conn, rule_id, key)?;
            if stops && episode.is_none() {
                // No episode yet: remember the stop, so that an older start
                // arriving after it opens nothing.
                episode = Some(Episode {
                    rule_id,
                    conversation_key: key.to_owned(),
                    episode: 0,
                    is_open: false,
                    started_at: at,
                    start_event_id: None,
                    last_start_at: at,
                    last_stop_at: None,
                    updated_at: now,
                });
            }
            if stops {
                if let Some(current) = episode.as_mut() {
                    current.last_stop_at = Some(current.last_stop_at.map_or(at, |s| s.max(at)));
                    current.updated_at = now;
                    // A stop older than the episode's start (arriving late)
                    // belongs to an earlier episode.
                    if current.is_open && at >= current.started_at {
                        current.is_open = false;
                        let reason = format!(
                            "stopped by event #{} ({}): {}",
                            new.id,
                            event.event_type,
                            event.summary.chars().take(200).collect::<String>()
                        );
                        let n = store::cancel_episode(
                            conn,
                            rule_id,
                            key,
                            current.episode,
                            &reason,
                            now,
                        )?;
                        count(&counters().cancelled, n);
                    }
                    store::put_episode(conn, current)?;
                }
            }
            if starts {
                start(conn, rule, timer, key, episode, new.id, at, now)?;
            }
        }
    }
    Ok(())
}

/// A start event at `at` for (rule, conversation) with its `episode` row.
#[allow(clippy::too_many_arguments)]
fn start(
    conn: &mut DbConnection,
    rule: &CompiledRule,
    timer: &CompiledTimer,
    key: &str,
    episode: Option<Episode>,
    event_id: i64,
    at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let Some(rule_id) = rule.id else {
        return Ok(());
    };
    if let Some(current) = &episode {
        // A stop newer than this start was seen already (events out of
        // order): the wait it would start is over.
        if current.last_stop_at.is_some_and(|stop| stop >= at) {
            return Ok(());
        }
    }
    let next = match episode {
        Some(mut current) if current.is_open => {
            current.last_start_at = current.last_start_at.max(at);
            current.updated_at = now;
            match timer.rearm {
                Rearm::KeepFirst if at < current.started_at => {
                    // An older start arrived late: the clock runs from it.
                    current.started_at = at;
                    current.start_event_id = Some(event_id);
                    store::put_episode(conn, &current)?;
                    recompute(conn, rule, timer, &current, now)?;
                    return Ok(());
                }
                Rearm::KeepFirst => {
                    store::put_episode(conn, &current)?;
                    return Ok(());
                }
                Rearm::Restart if at <= current.started_at => {
                    store::put_episode(conn, &current)?;
                    return Ok(());
                }
                Rearm::Restart => {
                    let n = store::cancel_episode(
                        conn,
                        rule_id,
                        key,
                        current.episode,
                        &format!("restarted by event #{event_id} (rearm = \"restart\")"),
                        now,
                    )?;
                    count(&counters().cancelled, n);
                    Episode {
                        episode: current.episode.saturating_add(1),
                        is_open: true,
                        started_at: at,
                        start_event_id: Some(event_id),
                        ..current
                    }
                }
            }
        }
        Some(closed) => Episode {
            episode: closed.episode.saturating_add(1),
            is_open: true,
            started_at: at,
            start_event_id: Some(event_id),
            last_start_at: closed.last_start_at.max(at),
            updated_at: now,
            ..closed
        },
        None => Episode {
            rule_id,
            conversation_key: key.to_owned(),
            episode: 1,
            is_open: true,
            started_at: at,
            start_event_id: Some(event_id),
            last_start_at: at,
            last_stop_at: None,
            updated_at: now,
        },
    };
    store::put_episode(conn, &next)?;
    let rows = rows_for(rule, timer, key, &next, now);
    let armed = store::arm(conn, &rows)?;
    count(&counters().armed, armed);
    Ok(())
}

/// Brings the rows of an open episode in line with the rule as it is now
/// (edited: other times, steps, recipients; or its clock moved): rows not
/// fired yet get their new due time, rows of steps that no longer exist are
/// cancelled, new steps are armed.
pub fn recompute(
    conn: &mut DbConnection,
    rule: &CompiledRule,
    timer: &CompiledTimer,
    episode: &Episode,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let Some(rule_id) = rule.id else {
        return Ok(());
    };
    let existing = store::of_episode(conn, rule_id, &episode.conversation_key, episode.episode)?;
    for row in &existing {
        if ![store::ARMED, store::HELD, store::FIRING].contains(&row.status.as_str()) {
            continue;
        }
        let index = usize::try_from(row.step).unwrap_or(usize::MAX);
        match (timer.steps.get(index), timer.due(index, episode.started_at)) {
            (Some(step), Some(due_at)) => {
                store::reschedule(
                    conn,
                    row.id,
                    &store::Rearm {
                        status: store::ARMED,
                        started_at: episode.started_at,
                        due_at,
                        recipients: &step.rule.def.to.join(", "),
                        template: &step.rule.def.template,
                        fingerprint: &timer.fingerprint,
                        reason: None,
                    },
                    now,
                )?;
            }
            _ => {
                store::cancel(
                    conn,
                    row.id,
                    "the rule was edited and no longer has this step",
                    now,
                )?;
                count(&counters().cancelled, 1);
            }
        }
    }
    let missing: Vec<NewTimer> = rows_for(rule, timer, &episode.conversation_key, episode, now)
        .into_iter()
        .filter(|new| !existing.iter().any(|row| row.step == new.step))
        .collect();
    let armed = store::arm(conn, &missing)?;
    count(&counters().armed, armed);
    Ok(())
}

/// After rules changed: cancels the timers of rules no longer in force
/// (deleted or disabled) and closes their episodes; re-computes the armed
/// timers of timer rules whose definition changed. Returns how many rows
/// were cancelled or re-computed.
pub fn reconcile(conn: &mut DbConnection, set: &RuleSet) -> QueryResult<usize> {
    let now = store::db_now(conn)?;
    let in_force: Vec<i64> = set.timer_rules().filter_map(|r| r.id).collect();
    let cancelled = store::cancel_rules_except(
        conn,
        &in_force,
        "the rule was deleted, disabled or is no longer a timer rule",
        now,
    )?;
    count(&counters().cancelled, cancelled);
    store::close_episodes_except(conn, &in_force, now)?;
    let mut changed = cancelled;
    for rule in set.timer_rules() {
        let (Some(timer), Some(rule_id)) = (rule.timer.as_ref(), rule.id) else {
            continue;
        };
        let stale = store::stale_of_rule(conn, rule_id, &timer.fingerprint)?;
        if stale.is_empty() {
            continue;
        }
        changed += stale.len();
        for episode in store::open_episodes(conn, rule_id)? {
            if stale
                .iter()
                .any(|row: &Timer| row.conversation_key == episode.conversation_key)
            {
                recompute(conn, rule, timer, &episode, now)?;
            }
        }
        // Rows of episodes that are no longer open (should not happen:
        // ending an episode cancels them) are cancelled.
        for row in store::stale_of_rule(conn, rule_id, &timer.fingerprint)? {
            store::cancel(conn, row.id, "its episode ended", now)?;
        }
    }
    Ok(changed)
}
