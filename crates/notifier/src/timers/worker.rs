//! The timer worker: claims due timers with a lease (database clock) and
//! fires each in one transaction: the episode re-checked, the emails
//! queued in the outbox (the recipient policy applies), the row marked
//! fired. A worker killed after claiming leaves rows whose lease runs out;
//! another worker takes them, and since firing commits the outbox rows and
//! the `fired` mark together, a step is fired once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use hookline_storage::diesel::QueryResult;
use hookline_storage::health::Component;
use hookline_storage::notifications::{self, NewNotification};
use hookline_storage::timers::{self as store, Timer};
use hookline_storage::StorageError;
use hookline_storage::{conversations, events, write_transaction, Database, DbConnection};
use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::context::{evaluation_context, EventFacts};
use crate::engine::CompiledRule;
use crate::policy::RecipientPolicy;
use crate::rules_store::Rules;

use super::{counters, human, recompute};

/// The default [`TimerSettings::max_lateness`]: a timer overdue by more
/// than this (hookline was down) is summarised instead of fired.
pub const DEFAULT_MAX_LATENESS: Duration = Duration::from_secs(3_600);

#[derive(Clone, Debug)]
pub struct TimerSettings {
    /// How often to look for due timers.
    pub poll: Duration,
    /// How long a claim holds before another worker may take the row.
    pub lease: Duration,
    /// Rows claimed at a time.
    pub batch: i32,
    /// Overdue by more than this: one summary email per rule instead.
    pub max_lateness: Duration,
}

impl Default for TimerSettings {
    fn default() -> TimerSettings {
        TimerSettings {
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            batch: 50,
            max_lateness: DEFAULT_MAX_LATENESS,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct TimerStats {
    pub fired: AtomicU64,
    pub missed: AtomicU64,
    /// Found ended (or their rule gone) when their time came.
    pub cancelled: AtomicU64,
    pub summaries: AtomicU64,
    /// Sum and largest of (fire time - due time), in milliseconds, over
    /// the fired timers.
    pub latency_ms_sum: AtomicU64,
    pub latency_ms_max: AtomicU64,
}

/// What became of one claimed timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fired {
    /// Its emails were queued (how many rows, queued or not).
    Fired(usize),
    /// The episode ended, or the rule went: cancelled.
    Cancelled(String),
    /// The rule was edited: re-computed, armed again.
    Recomputed,
    /// Overdue past `max_lateness`: kept for the summary.
    Missed,
    /// Due inside the rule's quiet hours: held until they end.
    Held(NaiveDateTime),
    /// The claim was no longer ours (another worker took it, or a stop
    /// event cancelled it meanwhile).
    Lost,
}

pub struct TimerWorker {
    db: Database,
    rules: Arc<Rules>,
    policy: RecipientPolicy,
    /// Wakes the outbox worker when emails were queued.
    wake: Arc<Notify>,
    settings: TimerSettings,
    id: String,
    pub stats: Arc<TimerStats>,
    pub health: Arc<Component>,
}

/// No round finished for this long: stalled.
const TIMER_STALL: Duration = Duration::from_secs(120);

impl TimerWorker {
    pub fn new(
        db: Database,
        rules: Arc<Rules>,
        policy: RecipientPolicy,
        wake: Arc<Notify>,
        settings: TimerSettings,
    ) -> TimerWorker {
        TimerWorker {
            db,
            rules,
            policy,
            wake,
            settings,
            id: crate::worker::claimer_id("timers-"),
            stats: Arc::new(TimerStats::default()),
            health: Component::new("timer worker", 1, TIMER_STALL),
        }
    }

    /// This worker's name in claims.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs the worker, restarted after a panic, until `stop` turns true.
    pub async fn supervise(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let health = Arc::clone(&self.health);
        crate::worker::supervise_task(&health, || Arc::clone(&self).run(stop.clone())).await;
    }

    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        self.health.pending(1);
        loop {
            if *stop.borrow() {
                break;
            }
            let round = self.run_once().await;
            self.health.progressed();
            match round {
                Ok(n) if n >= self.settings.batch.max(1) as usize => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "timers: cannot claim due timers; will retry"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = stop.changed() => {}
            }
        }
        self.health.pending(-1);
        tracing::info!("timer worker stopped");
    }

    /// Claims one batch of due timers, fires each, then summarises the
    /// missed ones; how many were claimed.
    pub async fn run_once(&self) -> Result<usize, StorageError> {
        let claimed = self.claim().await?;
        let count = claimed.len();
        let mut queued = false;
        for timer in claimed {
            let id = timer.id;
            match self.fire(timer).await {
                Ok(Fired::Fired(n)) => queued |= n > 0,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(id, %error, "timers: could not fire a timer; it is retried");
                    let worker = self.id.clone();
                    let _ = self
                        .blocking(move |conn| {
                            let now = store::db_now(conn)?;
                            store::release(conn, id, &worker, now)?;
                            Ok(())
                        })
                        .await;
                }
            }
        }
        queued |= self.summarise().await? > 0;
        if queued {
            self.wake.notify_one();
        }
        Ok(count)
    }

    /// Claims due rows (due by the database's clock) for a lease.
    pub async fn claim(&self) -> Result<Vec<Timer>, StorageError> {
        let (worker, lease, batch) = (self.id.clone(), self.settings.lease, self.settings.batch);
        self.blocking(move |conn| {
            let now = store::db_now(conn)?;
            // A read first: the claim's UPDATE takes the write lock (on
            // SQLite, the ingest writer's), so only when something is due.
            if !store::any_due(conn, now)? {
                return Ok(Vec::new());
            }
            Ok(store::claim_due(
                conn,
                &worker,
                now,
                crate::worker::later(now, lease),
                batch,
            )?)
        })
        .await
    }

    /// Fires one claimed timer in one transaction.
    pub async fn fire(&self, timer: Timer) -> Result<Fired, StorageError> {
        let rules = Arc::clone(&self.rules);
        let policy = self.policy.clone();
        let worker = self.id.clone();
        let max_lateness = self.settings.max_lateness;
        let outcome = self
            .blocking(move |conn| {
                Ok(write_transaction(conn, |conn| {
                    fire_in(conn, &rules, &policy, &worker, max_lateness, &timer)
                })?)
            })
            .await?;
        match &outcome {
            (Fired::Fired(_), latency_ms) => {
                self.stats.fired.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .latency_ms_sum
                    .fetch_add(*latency_ms, Ordering::Relaxed);
                self.stats
                    .latency_ms_max
                    .fetch_max(*latency_ms, Ordering::Relaxed);
            }
            (Fired::Missed, _) => {
                self.stats.missed.fetch_add(1, Ordering::Relaxed);
            }
            (Fired::Cancelled(_), _) => {
                self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                counters().cancelled.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(outcome.0)
    }

    /// Queues one "missed while hookline was down" email per rule (to the
    /// rule's first-step recipients) for the timers overdue past
    /// `max_lateness`; how many emails.
    pub async fn summarise(&self) -> Result<usize, StorageError> {
        let rules = Arc::clone(&self.rules);
        let policy = self.policy.clone();
        let queued = self
            .blocking(move |conn| {
                // A read first: the write lock only when there is work.
                if !store::has_unsummarised(conn)? {
                    return Ok(0);
                }
                Ok(write_transaction(conn, |conn| {
                    summarise_in(conn, &rules, &policy)
                })?)
            })
            .await?;
        self.stats
            .summaries
            .fetch_add(queued as u64, Ordering::Relaxed);
        Ok(queued)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| StorageError::WriterGone)?
    }
}

/// The timer rule `rule_id` in force, if any.
fn rule_in_force(rules: &Rules, rule_id: i64) -> Option<Arc<CompiledRule>> {
    rules
        .current()
        .timer_rules()
        .find(|r| r.id == Some(rule_id))
        .cloned()
}

/// The evaluation context a timer's recipients are rendered over: its
/// start event and the conversation as it is now.
fn context_of(conn: &mut DbConnection, timer: &Timer) -> QueryResult<Value> {
    let conversation = conversations::get(conn, &timer.conversation_key)?;
    let event = match timer.event_id {
        Some(id) => events::get(conn, id)?,
        None => None,
    };
    let context = match &event {
        Some(e) => evaluation_context(
            &EventFacts {
                id: Some(e.id),
                event_type: &e.event_type,
                message_type: e.message_type.as_deref(),
                summary: &e.summary,
                occurred_at: e.occurred_at,
                actor_type: e.actor_type.as_deref(),
                actor_email: e.actor_email.as_deref(),
                item: crate::context::ItemSource::Raw(&e.raw),
            },
            conversation.as_ref(),
        ),
        // The start event was erased or deleted by retention: the
        // conversation alone.
        None => evaluation_context(
            &EventFacts {
                id: None,
                event_type: "timer",
                message_type: None,
                summary: "",
                occurred_at: timer.started_at,
                actor_type: None,
                actor_email: None,
                item: crate::context::ItemSource::Raw("{}"),
            },
            conversation.as_ref(),
        ),
    };
    Ok(context)
}

/// Whether an email to `address` may be queued now: the recipient policy
/// (allowed domains, hourly cap), as for event rules.
fn decide(
    conn: &mut DbConnection,
    policy: &RecipientPolicy,
    address: &str,
    now: NaiveDateTime,
) -> QueryResult<Result<(), (&'static str, String)>> {
    if let Err(reason) = policy.check_domain(address) {
        return Ok(Err((notifications::SKIPPED, reason)));
    }
    let cap = policy.hourly_cap;
    if cap > 0 {
        let since = now - chrono::Duration::hours(1);
        let sent = notifications::count_to_recipient_since(conn, address, since)?;
        if sent >= i64::from(cap) {
            return Ok(Err((
                notifications::SUPPRESSED,
                format!("recipient cap: {address} already has {sent} emails from hookline in the last hour (recipient_hourly_cap = {cap})"),
            )));
        }
    }
    Ok(Ok(()))
}

/// Writes the outbox rows for `recipients`; how many were queued (or held
/// for quiet hours: they go when those end).
#[allow(clippy::too_many_arguments)]
fn queue(
    conn: &mut DbConnection,
    policy: &RecipientPolicy,
    directory: &crate::directory::Directory,
    rule: &CompiledRule,
    rule_id: i64,
    template: &str,
    event_id: Option<i64>,
    key: Option<&str>,
    recipients: Vec<Result<String, (String, String)>>,
    note: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let mut queued = 0;
    for recipient in recipients {
        let mut next_attempt_at = now;
        let (recipient, status, reason) = match recipient {
            Err((recipient, reason)) => (recipient, notifications::SKIPPED, reason),
            Ok(address) => match decide(conn, policy, &address, now)? {
                Ok(()) => match crate::directory::hold(conn, directory, &address)? {
                    Some((until, held)) => {
                        next_attempt_at = until;
                        (address, notifications::HELD, format!("{note}; {held}"))
                    }
                    None => (address, notifications::QUEUED, note.to_owned()),
                },
                Err((status, reason)) => (address, status, format!("{note}; {reason}")),
            },
        };
        let is_queued = status == notifications::QUEUED || status == notifications::HELD;
        queued += usize::from(is_queued);
        notifications::insert(
            conn,
            &NewNotification {
                rule_id: Some(rule_id),
                rule_name: rule.name().to_owned(),
                event_id,
                conversation_key: key.map(str::to_owned),
                recipient,
                template: template.to_owned(),
                status: status.to_owned(),
                reason: Some(reason),
                next_attempt_at: is_queued.then_some(next_attempt_at),
                created_at: now,
                updated_at: now,
            },
        )?;
    }
    Ok(queued)
}

/// The transaction of [`TimerWorker::fire`]; the outcome and, when it
/// fired, how late (ms after its due time).
fn fire_in(
    conn: &mut DbConnection,
    rules: &Rules,
    policy: &RecipientPolicy,
    worker: &str,
    max_lateness: Duration,
    claimed: &Timer,
) -> QueryResult<(Fired, u64)> {
    let now = store::db_now(conn)?;
    // The episode's lock first: a stop event being stored waits for this
    // transaction, or this one sees what it did.
    let episode = store::episode_locked(conn, claimed.rule_id, &claimed.conversation_key)?;
    let Some(timer) = store::claimed_by(conn, claimed.id, worker)? else {
        return Ok((Fired::Lost, 0));
    };
    rules.refresh(conn)?;
    let Some(rule) = rule_in_force(rules, timer.rule_id) else {
        let reason = "the rule was deleted, disabled or is no longer a timer rule";
        store::cancel(conn, timer.id, reason, now)?;
        return Ok((Fired::Cancelled(reason.to_owned()), 0));
    };
    let Some(compiled) = rule.timer.as_ref() else {
        return Ok((Fired::Lost, 0));
    };
    let episode = match episode {
        Some(e) if e.is_open && e.episode == timer.episode => e,
        _ => {
            let reason = "its episode had ended (a stop event)";
            store::cancel(conn, timer.id, reason, now)?;
            return Ok((Fired::Cancelled(reason.to_owned()), 0));
        }
    };
    if timer.fingerprint != compiled.fingerprint {
        recompute(conn, &rule, compiled, &episode, now)?;
        return Ok((Fired::Recomputed, 0));
    }
    let late = now - timer.due_at;
    let late_ms = u64::try_from(late.num_milliseconds()).unwrap_or(0);
    let max = chrono::Duration::from_std(max_lateness).unwrap_or(chrono::Duration::MAX);
    if late > max {
        let reason = format!(
            "missed: due at {} and overdue by {} when hookline came to it (max_lateness {}); in the summary email",
            timer.due_at.format("%Y-%m-%d %H:%M:%S UTC"),
            human(late.num_seconds()),
            human(max.num_seconds()),
        );
        store::finish_missed(conn, timer.id, worker, &reason, now)?;
        return Ok((Fired::Missed, 0));
    }
    if let Some(until) = compiled.quiet.as_ref().and_then(|q| q.open_until(now)) {
        let reason = format!(
            "held: due inside the rule's quiet hours; goes at {}",
            until.format("%Y-%m-%d %H:%M:%S UTC")
        );
        store::reschedule(
            conn,
            timer.id,
            &store::Rearm {
                status: store::HELD,
                started_at: timer.started_at,
                due_at: until,
                recipients: &timer.recipients,
                template: &timer.template,
                fingerprint: &timer.fingerprint,
                reason: Some(&reason),
            },
            now,
        )?;
        return Ok((Fired::Held(until), 0));
    }
    let index = usize::try_from(timer.step).unwrap_or(usize::MAX);
    let Some(step) = compiled.steps.get(index) else {
        let reason = "the rule no longer has this step";
        store::cancel(conn, timer.id, reason, now)?;
        return Ok((Fired::Cancelled(reason.to_owned()), 0));
    };
    let context = context_of(conn, &timer)?;
    let recipients = step.rule.recipients(&context);
    let steps = compiled.steps.len();
    let note = format!(
        "timer #{}: step {} of {steps}, no stop event {} after the start at {}",
        timer.id,
        timer.step + 1,
        step.written_at,
        timer.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    let rows = recipients.len();
    let queued = queue(
        conn,
        policy,
        &rules.directory(),
        &rule,
        timer.rule_id,
        &step.rule.def.template,
        timer.event_id,
        Some(&timer.conversation_key),
        recipients,
        &note,
        now,
    )?;
    store::finish(
        conn,
        timer.id,
        worker,
        store::FIRED,
        &format!(
            "fired {} late; {queued} of {rows} email(s) queued",
            human(late.num_seconds())
        ),
        now,
    )?;
    Ok((Fired::Fired(queued), late_ms))
}

/// The transaction of [`TimerWorker::summarise`].
fn summarise_in(
    conn: &mut DbConnection,
    rules: &Rules,
    policy: &RecipientPolicy,
) -> QueryResult<usize> {
    let missed = store::unsummarised_locked(conn, 500)?;
    if missed.is_empty() {
        return Ok(0);
    }
    let now = store::db_now(conn)?;
    let mut by_rule: BTreeMap<i64, Vec<Timer>> = BTreeMap::new();
    for timer in missed {
        by_rule.entry(timer.rule_id).or_default().push(timer);
    }
    let mut queued = 0;
    for (rule_id, timers) in by_rule {
        let ids: Vec<i64> = timers.iter().map(|t| t.id).collect();
        store::mark_summarised(conn, &ids, now)?;
        let Some(rule) = rule_in_force(rules, rule_id) else {
            continue;
        };
        let Some(first) = rule.timer.as_ref().and_then(|t| t.steps.first()) else {
            continue;
        };
        // Each address once, over the conversations' recipients.
        let mut recipients: Vec<Result<String, (String, String)>> = Vec::new();
        for timer in &timers {
            let context = context_of(conn, timer)?;
            for recipient in first.rule.recipients(&context) {
                if !recipients.contains(&recipient) {
                    recipients.push(recipient);
                }
            }
        }
        let note = format!(
            "summary of {} timer(s) missed while hookline was not running",
            timers.len()
        );
        queued += queue(
            conn,
            policy,
            &rules.directory(),
            &rule,
            rule_id,
            &first.rule.def.template,
            None,
            None,
            recipients,
            &note,
            now,
        )?;
    }
    Ok(queued)
}
