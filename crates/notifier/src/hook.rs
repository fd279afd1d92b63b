//! Rules evaluated in the ingest transaction: the notifications an event
//! causes are written with it (a transactional outbox), so an acknowledged
//! event that should notify always does, and a duplicate never does twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hookline_storage::diesel::QueryResult;
use hookline_storage::notifications::{self, NewNotification};
use hookline_storage::{DbConnection, IngestHook, NewlyStored};
use tokio::sync::Notify;

use crate::context::{evaluation_context, EventFacts};
use crate::engine::CompiledRule;
use crate::policy::RecipientPolicy;
use crate::rules_store::Rules;

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct HookStats {
    pub evaluations: AtomicU64,
    pub matches: AtomicU64,
    pub queued: AtomicU64,
    pub suppressed: AtomicU64,
    pub skipped: AtomicU64,
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
                raw: &event.raw,
            };
            let context = evaluation_context(&facts, conversation);
            for rule in set.for_type(&event.event_type) {
                self.stats.evaluations.fetch_add(1, Ordering::Relaxed);
                if rule.check(&context).is_err() {
                    continue;
                }
                self.stats.matches.fetch_add(1, Ordering::Relaxed);
                queue(
                    self,
                    conn,
                    rule,
                    new.id,
                    event.conversation_key.as_deref(),
                    &context,
                    now,
                )?;
            }
        }
        Ok(())
    }

    fn committed(&self) {
        if QUEUED_HERE.with(|queued| queued.replace(false)) {
            self.wake.notify_one();
        }
    }
}

/// Writes one notification per recipient: queued; skipped (no valid
/// recipient, or one outside the allowed domains); or suppressed (the
/// rule's throttle, or the recipient's hourly cap), each with the reason.
fn queue(
    hook: &NotifierHook,
    conn: &mut DbConnection,
    rule: &CompiledRule,
    event_id: i64,
    conversation_key: Option<&str>,
    context: &serde_json::Value,
    now: chrono::NaiveDateTime,
) -> QueryResult<()> {
    for recipient in rule.recipients(context) {
        let (recipient, status, reason) = match recipient {
            Err((recipient, reason)) => (recipient, notifications::SKIPPED, Some(reason)),
            Ok(address) => match decide(hook, conn, rule, conversation_key, &address, now)? {
                Ok(()) => (address, notifications::QUEUED, None),
                Err((status, reason)) => (address, status, Some(reason)),
            },
        };
        let counter = match status {
            notifications::QUEUED => {
                QUEUED_HERE.with(|queued| queued.set(true));
                &hook.stats.queued
            }
            notifications::SUPPRESSED => &hook.stats.suppressed,
            _ => &hook.stats.skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let queued = status == notifications::QUEUED;
        notifications::insert(
            conn,
            &NewNotification {
                rule_id: rule.id,
                rule_name: rule.name().to_owned(),
                event_id: Some(event_id),
                conversation_key: conversation_key.map(str::to_owned),
                recipient,
                template: rule.def.template.clone(),
                status: status.to_owned(),
                reason,
                next_attempt_at: queued.then_some(now),
                created_at: now,
                updated_at: now,
            },
        )?;
    }
    Ok(())
}

/// Whether an email to `address` may be queued: `Err((status, reason))`
/// when the recipient policy skips it or a limit suppresses it.
fn decide(
    hook: &NotifierHook,
    conn: &mut DbConnection,
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
        if notifications::recently_notified(conn, rule.name(), conversation_key, address, since)? {
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
