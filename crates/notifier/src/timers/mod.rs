//! Time-based alerts: a rule with a `timer` section emails when something
//! does *not* happen in time ("a handed-over chat has no agent reply within
//! 5 minutes"), then escalates.
//!
//! - [`TimerDef`]: the section as operators write it; [`CompiledTimer`]:
//!   validated.
//! - [`apply`]: in the ingest transaction, start events open an episode and
//!   arm one timer row per step; stop events end it and cancel what has not
//!   fired. Only newly stored events get here, so a duplicate delivery arms
//!   nothing; the unique (rule, conversation, episode, step) key makes sure
//!   of it.
//! - [`reconcile`]: after a rule change, armed timers of deleted or
//!   disabled rules are cancelled and those of edited rules re-computed.
//! - [`worker::TimerWorker`]: claims due rows (database clock, lease) and
//!   fires each in one transaction with its outbox rows.

pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use hookline_storage::diesel::QueryResult;
use hookline_storage::timers::{self as store, Episode, NewTimer, Timer};
use hookline_storage::{DbConnection, NewlyStored};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calendar::{Calendar, CalendarDef};
use crate::condition::Condition;
use crate::context::{evaluation_context, EventFacts};
use crate::duration::parse_duration;
use crate::engine::{CompiledRule, RuleSet};
use crate::rule::{ConditionDef, RuleDef, RuleError};
use crate::templates::Templates;

pub use worker::{TimerSettings, TimerStats, TimerWorker};

/// The longest `after` or escalation `at`.
pub const MAX_AFTER: Duration = Duration::from_secs(30 * 86_400);

/// The most escalation steps a timer rule may have.
pub const MAX_STEPS: usize = 10;

/// A rule's `timer` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerDef {
    /// The event that opens an episode.
    pub start: TriggerDef,
    /// Events that end it (none: only the rule's own steps end it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<TriggerDef>,
    /// How long after the start the first email goes (`30s`, `5m`, `2h`,
    /// `1d`).
    pub after: String,
    /// `wall` (the default): plain elapsed time; `business`: only the
    /// hours of `calendar` count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<String>,
    /// The business calendar `clock = "business"` counts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<CalendarDef>,
    /// Hours in which no email goes out: one due then is held (status
    /// `held`) and sent when they end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<CalendarDef>,
    /// `keep_first` (the default: the clock runs from the first start
    /// event of the episode, e.g. the oldest unanswered message) or
    /// `restart` (each start event begins a new episode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rearm: Option<String>,
    /// Further emails while the episode stays open, each at its time from
    /// the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalate: Vec<StepDef>,
}

/// Event types and conditions, as in an event rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    pub on: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<ConditionDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<ConditionDef>,
}

/// An escalation step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// When, from the start of the episode (after `after`).
    pub at: String,
    pub to: Vec<String>,
    /// The rule's template when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// How a start event inside an open episode counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rearm {
    KeepFirst,
    Restart,
}

/// A compiled trigger.
#[derive(Clone, Debug)]
pub struct Trigger {
    on: Vec<String>,
    all: Vec<Condition>,
    any: Vec<Condition>,
}

impl Trigger {
    fn compile(def: &TriggerDef, case_sensitive: bool, place: &str) -> Result<Trigger, String> {
        if def.on.is_empty() {
            return Err(format!(
                "{place}.on is empty: list the event types (e.g. [\"message\"])"
            ));
        }
        if let Some(bad) = def.on.iter().find(|t| t.trim().is_empty()) {
            return Err(format!("{place}.on has an empty event type {bad:?}"));
        }
        let compile = |defs: &[ConditionDef], list: &str| {
            defs.iter()
                .enumerate()
                .map(|(i, c)| {
                    Condition::compile(c, case_sensitive)
                        .map_err(|problem| format!("{place}.{list}[{i}]: {problem}"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Trigger {
            on: def.on.iter().map(|t| t.trim().to_owned()).collect(),
            all: compile(&def.all, "all")?,
            any: compile(&def.any, "any")?,
        })
    }

    /// Whether it listens to `event_type` at all.
    pub fn listens_to(&self, event_type: &str) -> bool {
        self.on.iter().any(|t| t == "*" || t == event_type)
    }

    /// Whether an event of `event_type` with `context` matches.
    pub fn matches(&self, event_type: &str, context: &Value) -> bool {
        self.listens_to(event_type)
            && self.all.iter().all(|c| c.holds(context))
            && (self.any.is_empty() || self.any.iter().any(|c| c.holds(context)))
    }
}

/// One step: when (from the start) and the rule that says to whom and
/// with which template.
#[derive(Clone, Debug)]
pub struct Step {
    pub at: Duration,
    pub written_at: String,
    /// The step's recipients and template, compiled as an event rule's.
    pub rule: CompiledRule,
}

/// A validated `timer` section.
#[derive(Clone, Debug)]
pub struct CompiledTimer {
    pub start: Trigger,
    pub stop: Vec<Trigger>,
    pub rearm: Rearm,
    /// Step 0 is the first email (`after`), then the escalations.
    pub steps: Vec<Step>,
    /// The business calendar steps count in (`clock = "business"`).
    pub calendar: Option<Calendar>,
    /// When emails are held.
    pub quiet: Option<Calendar>,
    /// Changes whenever what the armed rows depend on changes (steps,
    /// recipients, templates, clock).
    pub fingerprint: String,
}

impl CompiledTimer {
    /// Validates `def.timer` (present) of a rule being compiled.
    pub fn compile(
        def: &RuleDef,
        timer: &TimerDef,
        templates: &Templates,
    ) -> Result<CompiledTimer, RuleError> {
        let fail = |problem: String| RuleError::new(&def.name, problem);
        if !def.on.is_empty() || !def.all.is_empty() || !def.any.is_empty() {
            return Err(fail(
                "a timer rule listens through timer.start and timer.stop: leave \"on\", \"all\" and \"any\" out (put them in timer.start)".to_owned(),
            ));
        }
        if def.throttle.is_some() {
            return Err(fail(
                "a timer rule sends at most one email per conversation, episode and step: \"throttle\" does not apply, leave it out".to_owned(),
            ));
        }
        let start =
            Trigger::compile(&timer.start, def.case_sensitive, "timer.start").map_err(fail)?;
        let stop = timer
            .stop
            .iter()
            .enumerate()
            .map(|(i, t)| Trigger::compile(t, def.case_sensitive, &format!("timer.stop[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let rearm = match timer.rearm.as_deref().map(str::trim) {
            None | Some("keep_first") => Rearm::KeepFirst,
            Some("restart") => Rearm::Restart,
            Some(other) => {
                return Err(fail(format!(
                    "timer.rearm {other:?}: use \"keep_first\" (the clock runs from the first start event) or \"restart\" (each start event starts the clock again)"
                )))
            }
        };
        let calendar = match (timer.clock.as_deref().map(str::trim), &timer.calendar) {
            (None | Some("wall"), None) => None,
            (None | Some("wall"), Some(_)) => {
                return Err(fail(
                    "timer.calendar is given but timer.clock is not \"business\": say clock = \"business\" to count only its hours, or leave the calendar out".to_owned(),
                ))
            }
            (Some("business"), Some(def)) => Some(
                Calendar::compile(def).map_err(|p| fail(format!("timer.calendar: {p}")))?,
            ),
            (Some("business"), None) => {
                return Err(fail(
                    "timer.clock \"business\" needs timer.calendar (time_zone, hours, holidays)"
                        .to_owned(),
                ))
            }
            (Some(other), _) => {
                return Err(fail(format!(
                    "timer.clock {other:?}: use \"wall\" (elapsed time) or \"business\" (the hours of timer.calendar)"
                )))
            }
        };
        let quiet = timer
            .quiet_hours
            .as_ref()
            .map(|def| Calendar::compile(def).map_err(|p| fail(format!("timer.quiet_hours: {p}"))))
            .transpose()?;
        let parse = |written: &str, place: &str| -> Result<Duration, RuleError> {
            let at = parse_duration(written).map_err(|p| fail(format!("{place}: {p}")))?;
            if at.is_zero() {
                return Err(fail(format!(
                    "{place}: {written:?} is zero; give a positive duration such as 30s or 5m"
                )));
            }
            if at > MAX_AFTER {
                return Err(fail(format!(
                    "{place}: {written:?} is longer than the longest allowed, 30 days"
                )));
            }
            Ok(at)
        };
        let first = parse(&timer.after, "timer.after")?;
        if timer.escalate.len() > MAX_STEPS {
            return Err(fail(format!(
                "timer.escalate has {} steps; at most {MAX_STEPS} are allowed",
                timer.escalate.len()
            )));
        }
        let step_rule = |to: Vec<String>, template: String, place: &str| {
            let step = RuleDef {
                on: vec!["*".to_owned()],
                all: Vec::new(),
                any: Vec::new(),
                to,
                template,
                throttle: None,
                timer: None,
                ..def.clone()
            };
            CompiledRule::compile(step, None, templates)
                .map_err(|e| RuleError::new(&def.name, format!("{place}: {}", e.problem)))
        };
        let mut steps = vec![Step {
            at: first,
            written_at: timer.after.trim().to_owned(),
            rule: step_rule(def.to.clone(), def.template.clone(), "the first step")?,
        }];
        for (i, step) in timer.escalate.iter().enumerate() {
            let place = format!("timer.escalate[{i}]");
            let at = parse(&step.at, &format!("{place}.at"))?;
            let previous = steps.last().map_or(Duration::ZERO, |s| s.at);
            if at <= previous {
                return Err(fail(format!(
                    "{place}.at {:?} must come after the previous step ({}): steps are times from the start, in order",
                    step.at,
                    steps.last().map(|s| s.written_at.as_str()).unwrap_or_default()
                )));
            }
            let template = step
                .template
                .clone()
                .unwrap_or_else(|| def.template.clone());
            steps.push(Step {
                at,
                written_at: step.at.trim().to_owned(),
                rule: step_rule(step.to.clone(), template, &place)?,
            });
        }
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let material = serde_json::json!({
                "timer": timer, "to": def.to, "template": def.template,
                "case_sensitive": def.case_sensitive,
                "allow_visitor_recipients": def.allow_visitor_recipients,
            });
            let digest = Sha256::digest(material.to_string().as_bytes());
            digest[..12].iter().map(|b| format!("{b:02x}")).collect()
        };
        Ok(CompiledTimer {
            start,
            stop,
            rearm,
            steps,
            calendar,
            quiet,
            fingerprint,
        })
    }

    /// When step `index` is due for an episode started at `started_at`.
    pub fn due(&self, index: usize, started_at: NaiveDateTime) -> Option<NaiveDateTime> {
        let step = self.steps.get(index)?;
        if let Some(calendar) = &self.calendar {
            return calendar.add(started_at, step.at);
        }
        let by = chrono::Duration::from_std(step.at).ok()?;
        started_at.checked_add_signed(by)
    }

    /// Whether any trigger listens to `event_type`.
    pub fn listens_to(&self, event_type: &str) -> bool {
        self.start.listens_to(event_type) || self.stop.iter().any(|t| t.listens_to(event_type))
    }
}

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

/// A `timer` value for template checks over the samples.
pub fn sample_facts() -> Value {
    serde_json::json!({
        "id": 1, "step": 1, "escalation": false, "episode": 1,
        "since": "2026-01-05 09:00:00 UTC", "due_at": "2026-01-05 09:05:00 UTC",
        "waited": "5m 0s", "late": "0s", "recipients": "lead@example.com",
        "missed": [], "missed_count": 0,
    })
}
