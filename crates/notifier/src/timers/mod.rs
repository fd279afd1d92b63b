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

mod arm;
pub mod backtest;
pub mod dry_run;
mod facts;
pub mod worker;

pub use arm::{apply, counters, recompute, reconcile, Counters};
pub use facts::{human, preview_facts, sample_facts, template_facts};

use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calendar::{Calendar, CalendarRef};
use crate::condition::Condition;
use crate::directory::Directory;
use crate::duration::parse_duration;
use crate::engine::CompiledRule;
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
    /// The business calendar `clock = "business"` counts in: a shared
    /// calendar's name or a table of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<CalendarRef>,
    /// Hours in which no email goes out: one due then is held (status
    /// `held`) and sent when they end. A shared calendar's name or a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<CalendarRef>,
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

    /// The event types it listens to (`*`: any).
    pub fn types(&self) -> &[String] {
        &self.on
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
        directory: &Directory,
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
            (Some("business"), Some(def)) => Some(resolve(def, directory, "timer.calendar").map_err(fail)?),
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
            .map(|def| resolve(def, directory, "timer.quiet_hours").map_err(fail))
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
            // A shared calendar by its content: editing it re-computes the
            // armed timers of every rule that uses it.
            let shared = |r: &Option<CalendarRef>| {
                r.as_ref()
                    .and_then(CalendarRef::name)
                    .and_then(|n| directory.calendar(n))
                    .map(|(def, _)| def.clone())
            };
            let mut material = serde_json::json!({
                "timer": timer, "to": def.to, "template": def.template,
                "case_sensitive": def.case_sensitive,
                "allow_visitor_recipients": def.allow_visitor_recipients,
            });
            // Only when there are any: the fingerprint of a rule with
            // calendars of its own stays what it was before named ones
            // existed, so an upgrade re-computes no armed timer.
            let (calendar, quiet) = (shared(&timer.calendar), shared(&timer.quiet_hours));
            if calendar.is_some() || quiet.is_some() {
                material["shared"] =
                    serde_json::json!({"calendar": calendar, "quiet_hours": quiet});
            }
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

    /// The shared calendars it names (`calendar`, `quiet_hours`).
    pub fn calendar_names(timer: &TimerDef) -> Vec<&str> {
        [&timer.calendar, &timer.quiet_hours]
            .into_iter()
            .filter_map(|r| r.as_ref().and_then(CalendarRef::name))
            .collect()
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

/// A calendar as written: a shared calendar's name, looked up, or a table,
/// compiled; the error names `place`.
fn resolve(r: &CalendarRef, directory: &Directory, place: &str) -> Result<Calendar, String> {
    match r {
        CalendarRef::Named(name) => directory
            .calendar(name)
            .map(|(_, calendar)| calendar.clone())
            .ok_or_else(|| format!("{place}: {}", directory.unknown(name.trim()))),
        CalendarRef::Inline(def) => Calendar::compile(def).map_err(|p| format!("{place}: {p}")),
    }
}
