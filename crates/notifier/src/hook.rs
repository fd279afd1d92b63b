//! Rules evaluated in the ingest transaction: the notifications an event
//! causes are written with it (a transactional outbox), so an acknowledged
//! event that should notify always does, and a duplicate never does twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hookline_storage::diesel::QueryResult;
use hookline_storage::notifications::{self, NewNotification};
use hookline_storage::{DbConnection, IngestHook, NewlyStored};
use tokio::sync::Notify;

use crate::context::{evaluation_context, EventFacts, ItemSource};
use crate::engine::CompiledRule;
use crate::outbox::{rule_failed, GroupOutbox};
use crate::policy::RecipientPolicy;
use crate::rules_store::Rules;

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct HookStats {
    pub evaluations: AtomicU64,
    pub matches: AtomicU64,
    pub queued: AtomicU64,
    /// Emails held for their recipient's quiet hours.
    pub held: AtomicU64,
    pub suppressed: AtomicU64,
    pub skipped: AtomicU64,
    /// Rules that failed on an event (a panic or a database error of their
    /// own), recorded as `error` notifications.
    pub errors: AtomicU64,
}

thread_local! {
    /// Whether this writer thread's open transaction queued an email: each
    /// writer thread runs its transaction and then `committed` in turn, so
    /// one thread cannot consume another's wake-up before that one commits.
    static QUEUED_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The ingest hook: evaluates rules and queues notifications.
pub struct NotifierHook {
    rules: Arc<Rules>,
    wake: Arc<Notify>,
    policy: RecipientPolicy,
    pub stats: Arc<HookStats>,
}

impl NotifierHook {
    pub fn new(rules: Arc<Rules>, wake: Arc<Notify>, policy: RecipientPolicy) -> NotifierHook {
        NotifierHook {
            rules,
            wake,
            policy,
            stats: Arc::new(HookStats::default()),
        }
    }
}

impl IngestHook for NotifierHook {
    fn in_transaction(
        &self,
        conn: &mut DbConnection,
        stored: &[NewlyStored<'_>],
    ) -> QueryResult<()> {
        self.rules.refresh(conn)?;
        let set = self.rules.current();
        if set.is_empty() {
            return Ok(());
        }
        let now = hookline_storage::now();
        let directory = self.rules.directory();
        crate::timers::apply(conn, stored, &set)?;
        // The group's emails, written together after its last rule.
        let mut outbox = GroupOutbox::default();
        for new in stored {
            let event = &new.item.event;
            if !set.listens_to(&event.event_type) {
                continue;
            }
            // The conversation as of this event (the group's later events
            // are not folded in yet).
            let conversation = new.conversation.as_ref();
            let facts = EventFacts {
                id: Some(new.id),
                event_type: &event.event_type,
                message_type: event.message_type.as_deref(),
                summary: &event.summary,
                occurred_at: event.occurred_at,
                actor_type: event.actor_type.as_deref(),
                actor_email: event.actor_email.as_deref(),
                item: ItemSource::Typed(new.item.item.as_ref()),
            };
            let context = evaluation_context(&facts, conversation);
            let mut lookups = set.lookups(&context);
            for rule in set.for_type(&event.event_type) {
                self.stats.evaluations.fetch_add(1, Ordering::Relaxed);
                let key = event.conversation_key.as_deref();
                // A rule never stops ingest: a panic while evaluating it, or
                // the database refusing its rows, is recorded as an `error`
                // notification and the event is stored all the same.
                let evaluated = contained(|| {
                    rule.matches_in(&mut lookups)
                        .then(|| rule.recipients(&context))
                });
                let start = outbox.mark();
                let recipients = match evaluated {
                    Ok(None) => continue,
                    Ok(Some(recipients)) => recipients,
                    Err(panic) => {
                        outbox.push(rule_failed(
                            &self.stats,
                            rule,
                            new.id,
                            key,
                            &format!("evaluating it panicked: {panic}"),
                            now,
                        ));
                        outbox.close(start, rule, new.id, key, true);
                        continue;
                    }
                };
                self.stats.matches.fetch_add(1, Ordering::Relaxed);
                queue(
                    self,
                    conn,
                    &mut outbox,
                    &directory,
                    rule,
                    new.id,
                    key,
                    recipients,
                    now,
                )?;
                outbox.close(start, rule, new.id, key, false);
            }
        }
        // A rule whose rows the database refuses gets an `error` row
        // instead (see `GroupOutbox::write`).
        outbox.write(conn, &self.stats, now)
    }

    fn committed(&self) {
        if QUEUED_HERE.with(|queued| queued.replace(false)) {
            self.wake.notify_one();
        }
    }
}

/// Runs `f`, turning a panic into an error with its message.
fn contained<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned())
    })
}

/// Adds one notification per recipient to the group's outbox: queued;
/// held (inside the recipient's quiet hours, until they end); skipped (no
/// valid recipient, or one outside the allowed domains); or suppressed (the
/// rule's throttle, or the recipient's hourly cap), each with the reason.
#[allow(clippy::too_many_arguments)]
fn queue(
    hook: &NotifierHook,
    conn: &mut DbConnection,
    outbox: &mut GroupOutbox<'_>,
    directory: &crate::directory::Directory,
    rule: &CompiledRule,
    event_id: i64,
    conversation_key: Option<&str>,
    recipients: Vec<Result<String, (String, crate::engine::Skipped)>>,
    now: chrono::NaiveDateTime,
) -> QueryResult<()> {
    for recipient in recipients {
        let mut next_attempt_at = now;
        let (recipient, status, reason) = match recipient {
            Err((recipient, reason)) => (recipient, notifications::SKIPPED, Some(reason)),
            Ok(address) => match decide(hook, conn, outbox, rule, conversation_key, &address, now)?
            {
                Ok(()) => match crate::directory::hold(conn, directory, &address)? {
                    Some((until, reason)) => {
                        next_attempt_at = until;
                        (address, notifications::HELD, Some(reason))
                    }
                    None => (address, notifications::QUEUED, None),
                },
                Err((status, reason)) => (address, status, Some(reason)),
            },
        };
        let counter = match status {
            notifications::QUEUED => {
                QUEUED_HERE.with(|queued| queued.set(true));
                &hook.stats.queued
            }
            notifications::HELD => &hook.stats.held,
            notifications::SUPPRESSED => &hook.stats.suppressed,
            _ => &hook.stats.skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let pending = status == notifications::QUEUED || status == notifications::HELD;
        outbox.push(NewNotification {
            rule_id: rule.id,
            rule_name: rule.name().to_owned(),
            event_id: Some(event_id),
            conversation_key: conversation_key.map(str::to_owned),
            recipient,
            template: rule.def.template.clone(),
            status: status.to_owned(),
            reason,
            next_attempt_at: pending.then_some(next_attempt_at),
            created_at: now,
            updated_at: now,
        });
    }
    Ok(())
}

/// Whether an email to `address` may be queued: `Err((status, reason))`
/// when the recipient policy skips it or a limit suppresses it. The limits
/// count the stored emails and the group's own.
fn decide(
    hook: &NotifierHook,
    conn: &mut DbConnection,
    outbox: &mut GroupOutbox<'_>,
    rule: &CompiledRule,
    conversation_key: Option<&str>,
    address: &str,
    now: chrono::NaiveDateTime,
) -> QueryResult<Result<(), (&'static str, String)>> {
    if let Err(reason) = hook.policy.check_domain(address) {
        return Ok(Err((notifications::SKIPPED, reason)));
    }
    if let Some(window) = rule.throttle {
        let since = chrono::Duration::from_std(window)
            .ok()
            .and_then(|window| now.checked_sub_signed(window))
            .unwrap_or(chrono::NaiveDateTime::MIN);
        if outbox.recently_notified(conn, rule.name(), conversation_key, address, since)? {
            let window = rule.def.throttle.clone().unwrap_or_default();
            return Ok(Err((
                notifications::SUPPRESSED,
                format!("throttled: {address} was already notified by this rule for this conversation within {window}"),
            )));
        }
    }
    let cap = hook.policy.hourly_cap;
    if cap > 0 {
        let since = now - chrono::Duration::hours(1);
        let sent = outbox.count_to_recipient_since(conn, address, since)?;
        if sent >= i64::from(cap) {
            return Ok(Err((
                notifications::SUPPRESSED,
                format!("recipient cap: {address} already has {sent} emails from hookline in the last hour (recipient_hourly_cap = {cap})"),
            )));
        }
    }
    Ok(Ok(()))
}
