//! Rule preview: what a rule (a draft or a saved one) would have done over
//! stored history. An event rule: the events it fires on, to whom, with
//! which subject, and for the others the condition that failed. A timer
//! rule: its waits replayed ([`crate::timers::backtest`]): when it would
//! have emailed, which waits were answered in time, which still run.
//!
//! Bounded in rows (at most [`MAX_SCAN`] events) and in time
//! ([`TIME_BUDGET`]); the answer says when it stopped early and why.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use hookline_storage::conversations::{self, Conversation};
use hookline_storage::diesel::result::Error as DbError;
use hookline_storage::events::{self, EventFilter, StoredEvent};
use hookline_storage::notifications::Notification;
use hookline_storage::DbConnection;
use serde_json::Value;

use crate::context::{evaluation_context, EventFacts};
use crate::dry_run::Limits;
use crate::engine::CompiledRule;
use crate::policy::RecipientPolicy;
use crate::render::template_context;
use crate::rule::{RuleDef, RuleError};
use crate::rules_store::Rules;
use crate::timers::backtest::{self, Backtest, Replay, Seen};
use crate::timers::CompiledTimer;

/// Events scanned by default, and at most.
pub const DEFAULT_SCAN: i64 = 1_000;
pub const MAX_SCAN: i64 = 10_000;

/// The longest a preview runs before it answers with what it has. An
/// operator waits for the answer; and on SQLite a long read holds back the
/// write-ahead log's reset, which slows every ingest commit meanwhile
/// (issue 16: ingest p99 8.6x beside heavy reads). Two seconds evaluate
/// well over the 10,000 rows at the measured speed on a quiet machine.
pub const TIME_BUDGET: Duration = Duration::from_secs(2);

/// Items listed per outcome.
pub const LISTED: usize = 100;

/// Events read per query while scanning (the time budget is checked
/// between them).
const SCAN_PAGE: i64 = 500;

/// What to preview over.
#[derive(Clone, Debug)]
pub struct Range {
    /// `occurred_at >= since`.
    pub since: Option<NaiveDateTime>,
    /// `occurred_at < until`.
    pub until: Option<NaiveDateTime>,
    /// Events to scan, newest first: 1 to [`MAX_SCAN`].
    pub limit: i64,
}

/// Why a preview could not run.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("\"limit\": {0} is not from 1 to {MAX_SCAN}")]
    Limit(i64),
    #[error(transparent)]
    Invalid(#[from] RuleError),
    #[error("database: {0}")]
    Database(#[from] DbError),
}

/// One recipient's fate.
#[derive(Clone, Debug)]
pub struct Email {
    /// The address, or the recipient as written when it gave none.
    pub recipient: String,
    /// `send`, `suppressed` or `skipped`.
    pub decision: &'static str,
    pub reason: Option<String>,
}

/// A timer step that would have fired, in a fired item.
#[derive(Clone, Debug)]
pub struct Step {
    pub conversation: String,
    /// 1-based, as emails and pages count them.
    pub step: usize,
    pub steps: usize,
    pub started_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    /// When it would have gone (after quiet hours).
    pub at: NaiveDateTime,
}

/// An email the rule would have sent: its event (a timer's start event),
/// recipients and subject.
#[derive(Clone, Debug)]
pub struct Fired {
    pub event: StoredEvent,
    pub emails: Vec<Email>,
    pub subject: Result<String, String>,
    pub timer: Option<Step>,
}

/// An event the rule did not fire on (a timer: a wait answered in time),
/// and why.
#[derive(Clone, Debug)]
pub struct NotFired {
    pub event: StoredEvent,
    pub failed: String,
}

/// A timer rule's replay, summed up.
#[derive(Clone, Debug)]
pub struct TimerSummary {
    /// "would have fired 12 times, at ...".
    pub sentence: String,
    pub answered: usize,
    pub waiting: usize,
}

/// A preview's answer.
#[derive(Clone, Debug)]
pub struct Preview {
    pub rule: String,
    /// Events evaluated.
    pub scanned: usize,
    pub scan_limit: i64,
    pub fired_count: usize,
    pub send: usize,
    pub suppressed: usize,
    pub skipped: usize,
    pub not_fired_count: usize,
    /// The first [`LISTED`] of each.
    pub fired: Vec<Fired>,
    pub not_fired: Vec<NotFired>,
    /// Why it stopped before the end of the range (the time budget ran
    /// out); `None` when it covered it.
    pub stopped_early: Option<String>,
    pub timer: Option<TimerSummary>,
}

/// What a preview needs beside the rule and the range.
pub struct Previewer<'a> {
    pub rules: &'a Rules,
    pub policy: &'a RecipientPolicy,
    pub public_url: Option<&'a str>,
    /// [`TIME_BUDGET`], but in tests.
    pub time_budget: Duration,
}

/// The time budget, counted from the start.
struct Clock {
    started: Instant,
    budget: Duration,
}

impl Clock {
    fn out(&self) -> bool {
        self.started.elapsed() >= self.budget
    }

    fn why(&self, done: usize, of: usize) -> String {
        format!(
            "stopped after {:.1} s (the preview's time limit is {} s): {done} of {of} events evaluated; narrow since/until or lower limit to see all",
            self.started.elapsed().as_secs_f64(),
            self.budget.as_secs()
        )
    }
}

impl Previewer<'_> {
    /// Previews `def` over `range`.
    pub fn preview(
        &self,
        conn: &mut DbConnection,
        def: RuleDef,
        range: &Range,
    ) -> Result<Preview, PreviewError> {
        if !(1..=MAX_SCAN).contains(&range.limit) {
            return Err(PreviewError::Limit(range.limit));
        }
        let clock = Clock {
            started: Instant::now(),
            budget: self.time_budget,
        };
        let rule = self.rules.compile(def, None)?;
        let types = match &rule.timer {
            Some(timer) => timer_types(timer),
            None => rule.def.on.clone(),
        };
        let (scanned, complete) = scan(conn, &types, range, &clock)?;
        let mut preview = match &rule.timer {
            Some(timer) => self.replay(conn, &rule, timer, scanned, range, &clock)?,
            None => self.evaluate(conn, &rule, scanned, &clock)?,
        };
        if !complete && preview.stopped_early.is_none() {
            preview.stopped_early = Some(format!(
                "stopped reading after {:.1} s (the preview's time limit is {} s): {} events read; narrow since/until or lower limit to see all",
                clock.started.elapsed().as_secs_f64(),
                clock.budget.as_secs(),
                preview.scanned
            ));
        }
        preview.scan_limit = range.limit;
        Ok(preview)
    }

    /// An event rule over the scanned events, in the order they arrived,
    /// so that the throttle and the hourly cap decide as they did live.
    fn evaluate(
        &self,
        conn: &mut DbConnection,
        rule: &CompiledRule,
        scanned: Vec<StoredEvent>,
        clock: &Clock,
    ) -> Result<Preview, PreviewError> {
        let mut scanned = scanned;
        scanned.sort_by_key(|e| (e.received_at, e.id));
        let mut conversations = Conversations::default();
        let mut limits = Limits::default();
        let mut preview = empty(rule);
        let total = scanned.len();
        for (done, event) in scanned.into_iter().enumerate() {
            if clock.out() {
                preview.stopped_early = Some(clock.why(done, total));
                break;
            }
            preview.scanned += 1;
            let conversation = conversations.get(conn, event.conversation_key.as_deref())?;
            let context = evaluation_context(&EventFacts::stored(&event), conversation);
            match rule.check(&context) {
                Ok(()) => {
                    let emails =
                        self.decide(rule, &context, &event, event.received_at, &mut limits);
                    preview.fired_count += 1;
                    count(&mut preview, &emails);
                    if preview.fired.len() < LISTED {
                        let subject = self.subject(conn, rule, &event, &emails, None)?;
                        preview.fired.push(Fired {
                            event,
                            emails,
                            subject,
                            timer: None,
                        });
                    }
                }
                Err(failed) => {
                    preview.not_fired_count += 1;
                    if preview.not_fired.len() < LISTED {
                        preview.not_fired.push(NotFired { event, failed });
                    }
                }
            }
        }
        Ok(preview)
    }

    /// A timer rule's waits replayed over the scanned events, oldest
    /// first, up to the end of the range (or now).
    fn replay(
        &self,
        conn: &mut DbConnection,
        rule: &CompiledRule,
        timer: &CompiledTimer,
        scanned: Vec<StoredEvent>,
        range: &Range,
        clock: &Clock,
    ) -> Result<Preview, PreviewError> {
        let mut scanned = scanned;
        scanned.sort_by_key(|e| (e.occurred_at, e.id));
        let now = hookline_storage::db_now(conn)?;
        let mut horizon = range.until.map_or(now, |until| until.min(now));
        let mut conversations = Conversations::default();
        let mut contexts: Vec<Value> = Vec::with_capacity(scanned.len());
        let mut replay = Replay::new(timer);
        let mut preview = empty(rule);
        let total = scanned.len();
        for (index, event) in scanned.iter().enumerate() {
            if clock.out() {
                preview.stopped_early = Some(clock.why(index, total));
                // Nothing after the last event seen is known.
                horizon = horizon.min(event.occurred_at);
                break;
            }
            preview.scanned += 1;
            let Some(key) = event.conversation_key.as_deref() else {
                contexts.push(Value::Null);
                continue;
            };
            let conversation = conversations.get(conn, Some(key))?;
            let context = evaluation_context(&EventFacts::stored(event), conversation);
            replay.see(&Seen {
                event: index,
                conversation: key,
                event_type: &event.event_type,
                at: event.occurred_at,
                context: &context,
            });
            contexts.push(context);
        }
        let result: Backtest = replay.finish(horizon);
        let mut limits = Limits::default();
        for firing in &result.fired {
            let (Some(step), Some(start)) = (
                timer.steps.get(firing.step),
                scanned.get(firing.start_event),
            ) else {
                continue;
            };
            let context = contexts.get(firing.start_event).unwrap_or(&Value::Null);
            let emails = self.decide(&step.rule, context, start, firing.at, &mut limits);
            preview.fired_count += 1;
            count(&mut preview, &emails);
            if preview.fired.len() < LISTED {
                let shown = Step {
                    conversation: firing.conversation.clone(),
                    step: firing.step + 1,
                    steps: timer.steps.len(),
                    started_at: firing.started_at,
                    due_at: firing.due_at,
                    at: firing.at,
                };
                let subject = self.subject(conn, &step.rule, start, &emails, Some(&shown))?;
                preview.fired.push(Fired {
                    event: start.clone(),
                    emails,
                    subject,
                    timer: Some(shown),
                });
            }
        }
        for answered in result.answered.iter().filter(|a| !a.restarted) {
            preview.not_fired_count += 1;
            if preview.not_fired.len() >= LISTED {
                continue;
            }
            let (Some(start), Some(stop)) = (
                scanned.get(answered.start_event),
                scanned.get(answered.stop_event),
            ) else {
                continue;
            };
            let next = answered.fired_steps + 1;
            preview.not_fired.push(NotFired {
                event: start.clone(),
                failed: format!(
                    "answered in time: stopped by event #{} ({}) at {}, {} after the start, before step {next} of {} was due",
                    stop.id,
                    stop.event_type,
                    stop.occurred_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    crate::timers::human((answered.stopped_at - answered.started_at).num_seconds()),
                    timer.steps.len()
                ),
            });
        }
        preview.timer = Some(TimerSummary {
            sentence: backtest::sentence(&result),
            answered: result.answered.iter().filter(|a| !a.restarted).count(),
            waiting: result.waiting.len(),
        });
        Ok(preview)
    }

    /// Each recipient of `rule` for `context`, with the recipient policy,
    /// throttle and hourly cap decided as at `at`.
    fn decide(
        &self,
        rule: &CompiledRule,
        context: &Value,
        event: &StoredEvent,
        at: NaiveDateTime,
        limits: &mut Limits,
    ) -> Vec<Email> {
        rule.recipients(context)
            .into_iter()
            .map(|recipient| match recipient {
                Ok(address) => {
                    let (decision, reason) = limits.decide(
                        rule,
                        self.policy,
                        event.conversation_key.as_deref(),
                        &address,
                        at,
                    );
                    Email {
                        recipient: address,
                        decision,
                        reason,
                    }
                }
                Err((written, reason)) => Email {
                    recipient: written,
                    decision: "skipped",
                    reason: Some(reason),
                },
            })
            .collect()
    }

    /// The subject the email would have had (or why it cannot render).
    fn subject(
        &self,
        conn: &mut DbConnection,
        rule: &CompiledRule,
        event: &StoredEvent,
        emails: &[Email],
        step: Option<&Step>,
    ) -> Result<Result<String, String>, PreviewError> {
        let at = step.map_or(event.received_at, |s| s.at);
        let draft = Notification {
            id: 0,
            rule_id: None,
            rule_name: rule.name().to_owned(),
            event_id: Some(event.id),
            conversation_key: event.conversation_key.clone(),
            recipient: emails
                .iter()
                .find(|e| e.decision != "skipped")
                .map(|e| e.recipient.clone())
                .unwrap_or_default(),
            template: rule.def.template.clone(),
            status: "preview".to_owned(),
            reason: None,
            attempts: 0,
            next_attempt_at: None,
            claimed_by: None,
            claimed_until: None,
            last_error: None,
            smtp_response: None,
            subject: None,
            created_at: at,
            updated_at: at,
            sent_at: None,
        };
        let mut context = template_context(conn, &draft, self.public_url)?;
        if let Some(step) = step {
            context["timer"] = crate::timers::preview_facts(
                step.step,
                step.started_at,
                step.due_at,
                step.at,
                &rule.def.to.join(", "),
            );
        }
        Ok(self
            .rules
            .templates()
            .render_subject(&rule.def.template, &context)
            .map_err(|error| error.to_string()))
    }
}

/// The event types a timer rule listens to (start and stop).
fn timer_types(timer: &CompiledTimer) -> Vec<String> {
    let mut types: Vec<String> = timer
        .start
        .types()
        .iter()
        .chain(timer.stop.iter().flat_map(|t| t.types().iter()))
        .cloned()
        .collect();
    types.sort();
    types.dedup();
    types
}

fn empty(rule: &CompiledRule) -> Preview {
    Preview {
        rule: rule.name().to_owned(),
        scanned: 0,
        scan_limit: 0,
        fired_count: 0,
        send: 0,
        suppressed: 0,
        skipped: 0,
        not_fired_count: 0,
        fired: Vec::new(),
        not_fired: Vec::new(),
        stopped_early: None,
        timer: None,
    }
}

fn count(preview: &mut Preview, emails: &[Email]) {
    for email in emails {
        match email.decision {
            "send" => preview.send += 1,
            "suppressed" => preview.suppressed += 1,
            _ => preview.skipped += 1,
        }
    }
}

/// Conversations as they are now, each loaded once.
#[derive(Default)]
struct Conversations(HashMap<String, Option<Conversation>>);

impl Conversations {
    fn get(
        &mut self,
        conn: &mut DbConnection,
        key: Option<&str>,
    ) -> Result<Option<&Conversation>, DbError> {
        let Some(key) = key else {
            return Ok(None);
        };
        if !self.0.contains_key(key) {
            let loaded = conversations::get(conn, key)?;
            self.0.insert(key.to_owned(), loaded);
        }
        Ok(self.0.get(key).and_then(Option::as_ref))
    }
}

/// The newest `range.limit` events of `types` (`*`: any) in the range,
/// read a page at a time; whether the reading finished before the time
/// budget ran out.
fn scan(
    conn: &mut DbConnection,
    types: &[String],
    range: &Range,
    clock: &Clock,
) -> Result<(Vec<StoredEvent>, bool), DbError> {
    let types: Vec<Option<String>> = if types.iter().any(|t| t == "*") {
        vec![None]
    } else {
        types.iter().cloned().map(Some).collect()
    };
    let mut all = Vec::new();
    for event_type in types {
        let filter = EventFilter {
            event_type,
            since: range.since,
            until: range.until,
            ..EventFilter::default()
        };
        let mut cursor = None;
        let mut read = 0;
        while read < range.limit {
            if clock.out() {
                return Ok((newest(all, range.limit), false));
            }
            let asked = SCAN_PAGE.min(range.limit - read);
            let page = events::page(conn, &filter, cursor, asked)?;
            let Some(last) = page.last() else {
                break;
            };
            cursor = Some((last.occurred_at, last.id));
            let got = page.len() as i64;
            read += got;
            all.extend(page);
            if got < asked {
                break;
            }
        }
    }
    Ok((newest(all, range.limit), true))
}

fn newest(mut events: Vec<StoredEvent>, limit: i64) -> Vec<StoredEvent> {
    events.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
    events.truncate(usize::try_from(limit).unwrap_or(0));
    events
}
