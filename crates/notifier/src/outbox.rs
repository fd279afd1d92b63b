//! The outbox rows one ingest group causes: kept in memory while the
//! group's rules run, and written together at the end (one multi-row
//! statement on PostgreSQL instead of one per email), with what the limits
//! (throttle, recipient cap) need to know about them meanwhile.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::Ordering;

use chrono::NaiveDateTime;
use hookline_storage::diesel::{Connection, QueryResult};
use hookline_storage::notifications::{self, NewNotification};
use hookline_storage::DbConnection;

use crate::engine::CompiledRule;
use crate::hook::HookStats;

/// Statuses the throttle counts: emails that went or will go out (held
/// ones too: they go when the recipient's quiet hours end).
const THROTTLED_BY: [&str; 5] = [
    notifications::QUEUED,
    notifications::HELD,
    notifications::SENDING,
    notifications::SENT,
    notifications::FAILED,
];

/// Statuses the recipient cap counts.
const CAPPED_BY: [&str; 6] = [
    notifications::QUEUED,
    notifications::HELD,
    notifications::SENDING,
    notifications::SENT,
    notifications::FAILED,
    notifications::DEAD,
];

/// (rule name, conversation key, recipient): what a throttle is about.
type ThrottleKey = (String, Option<String>, String);

/// The rows one rule wrote for one event.
struct Unit<'r> {
    rule: &'r CompiledRule,
    event_id: i64,
    conversation_key: Option<String>,
    rows: Range<usize>,
    /// An `error` row (the rule failed while evaluating): written as is.
    failed: bool,
}

/// A group's outbox rows, in the order the rules produced them.
#[derive(Default)]
pub(crate) struct GroupOutbox<'r> {
    rows: Vec<NewNotification>,
    units: Vec<Unit<'r>>,
    /// Emails the cap counts, stored before this group, by recipient:
    /// read once per recipient and group (the group's own rows are added
    /// from `pending_to`).
    stored_to: HashMap<String, i64>,
    /// This group's rows the cap counts, by recipient.
    pending_to: HashMap<String, i64>,
    /// The throttle's answer from the stored rows, read once per key.
    stored_throttled: HashMap<ThrottleKey, bool>,
    /// This group's rows the throttle counts.
    pending_throttled: HashSet<ThrottleKey>,
}

impl<'r> GroupOutbox<'r> {
    /// Whether (rule, conversation, recipient) has an email that went or
    /// will go out since `since`, stored or in this group.
    pub(crate) fn recently_notified(
        &mut self,
        conn: &mut DbConnection,
        rule_name: &str,
        conversation_key: Option<&str>,
        recipient: &str,
        since: NaiveDateTime,
    ) -> QueryResult<bool> {
        let key: ThrottleKey = (
            rule_name.to_owned(),
            conversation_key.map(str::to_owned),
            recipient.to_owned(),
        );
        // The group's rows are all stamped with its time, later than any
        // `since`.
        if self.pending_throttled.contains(&key) {
            return Ok(true);
        }
        if let Some(&stored) = self.stored_throttled.get(&key) {
            return Ok(stored);
        }
        let stored =
            notifications::recently_notified(conn, rule_name, conversation_key, recipient, since)?;
        self.stored_throttled.insert(key, stored);
        Ok(stored)
    }

    /// Emails to `recipient` the cap counts since `since` (one hour before
    /// the group's time), stored or in this group.
    pub(crate) fn count_to_recipient_since(
        &mut self,
        conn: &mut DbConnection,
        recipient: &str,
        since: NaiveDateTime,
    ) -> QueryResult<i64> {
        let stored = match self.stored_to.get(recipient) {
            Some(&n) => n,
            None => {
                let n = notifications::count_to_recipient_since(conn, recipient, since)?;
                self.stored_to.insert(recipient.to_owned(), n);
                n
            }
        };
        Ok(stored + self.pending_to.get(recipient).copied().unwrap_or(0))
    }

    /// Where the next unit's rows start.
    pub(crate) fn mark(&self) -> usize {
        self.rows.len()
    }

    /// Adds one row of the unit being built.
    pub(crate) fn push(&mut self, row: NewNotification) {
        self.count(&row);
        self.rows.push(row);
    }

    fn count(&mut self, row: &NewNotification) {
        if CAPPED_BY.contains(&row.status.as_str()) {
            *self.pending_to.entry(row.recipient.clone()).or_default() += 1;
        }
        if THROTTLED_BY.contains(&row.status.as_str()) {
            self.pending_throttled.insert((
                row.rule_name.clone(),
                row.conversation_key.clone(),
                row.recipient.clone(),
            ));
        }
    }

    /// Closes the unit whose rows start at `start`: `rule`'s rows for
    /// `event_id`; `failed` when it is the rule's `error` row.
    pub(crate) fn close(
        &mut self,
        start: usize,
        rule: &'r CompiledRule,
        event_id: i64,
        conversation_key: Option<&str>,
        failed: bool,
    ) {
        if start == self.rows.len() {
            return;
        }
        self.units.push(Unit {
            rule,
            event_id,
            conversation_key: conversation_key.map(str::to_owned),
            rows: start..self.rows.len(),
            failed,
        });
    }

    /// Writes the group's rows in one go. When that fails on a rule's own
    /// row (a constraint or trigger refuses it), writes them rule by rule
    /// instead, each in a savepoint: a rule whose rows fail gets an `error`
    /// row instead, and the others' rows are written as usual. Fails only
    /// when the database itself fails (the group then fails).
    pub(crate) fn write(
        self,
        conn: &mut DbConnection,
        stats: &HookStats,
        now: NaiveDateTime,
    ) -> QueryResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let all = conn.transaction(|conn| {
            notifications::insert_all(conn, &self.rows).map_err(Savepoint::Own)
        });
        match all {
            Ok(()) => return Ok(()),
            Err(Savepoint::Transaction(error)) => return Err(error),
            Err(Savepoint::Own(_)) => {}
        }
        for unit in &self.units {
            let rows = &self.rows[unit.rows.clone()];
            if unit.failed {
                notifications::insert_all(conn, rows)?;
                continue;
            }
            let written = conn
                .transaction(|conn| notifications::insert_all(conn, rows).map_err(Savepoint::Own));
            match written {
                Ok(()) => {}
                Err(Savepoint::Own(error)) => {
                    let row = rule_failed(
                        stats,
                        unit.rule,
                        unit.event_id,
                        unit.conversation_key.as_deref(),
                        &format!("queueing its emails failed: {error}"),
                        now,
                    );
                    notifications::insert(conn, &row)?;
                }
                Err(Savepoint::Transaction(error)) => return Err(error),
            }
        }
        Ok(())
    }
}

/// Why a savepoint failed: an error of the work inside it, or of the
/// savepoint (the transaction around it).
enum Savepoint {
    Own(hookline_storage::diesel::result::Error),
    Transaction(hookline_storage::diesel::result::Error),
}

impl From<hookline_storage::diesel::result::Error> for Savepoint {
    fn from(error: hookline_storage::diesel::result::Error) -> Savepoint {
        Savepoint::Transaction(error)
    }
}

/// Records that `rule` failed on event `event_id` (a log line and a
/// metric) and returns the notification with status `error` that says so.
pub(crate) fn rule_failed(
    stats: &HookStats,
    rule: &CompiledRule,
    event_id: i64,
    conversation_key: Option<&str>,
    problem: &str,
    now: NaiveDateTime,
) -> NewNotification {
    stats.errors.fetch_add(1, Ordering::Relaxed);
    tracing::error!(rule = rule.name(), event_id, %problem, "a rule failed; the event is stored");
    let reason: String = format!("rule failed: {problem}")
        .chars()
        .take(2_000)
        .collect();
    NewNotification {
        rule_id: rule.id,
        rule_name: rule.name().to_owned(),
        event_id: Some(event_id),
        conversation_key: conversation_key.map(str::to_owned),
        recipient: String::new(),
        template: rule.def.template.clone(),
        status: notifications::ERROR.to_owned(),
        reason: Some(reason),
        next_attempt_at: None,
        created_at: now,
        updated_at: now,
    }
}
