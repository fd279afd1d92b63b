//! A dry run: what rules would do with some events, without storing or
//! sending anything. For each event and rule: whether it fires (or the
//! condition that failed), the recipients after the recipient policy, the
//! throttle and hourly-cap decision, and the rendered subject and text.
//!
//! Events are taken in order, as if each arrived when it occurred; the
//! conversation state is folded from them as ingest does (optionally
//! starting from a given state), and throttles and the cap count the
//! emails of this run only.

use std::collections::HashMap;

use chrono::{NaiveDateTime, Utc};
use hookline_storage::conversations::Conversation;
use hookline_storage::events::StoredEvent;
use hookline_storage::notifications::Notification;
use hookline_storage::prepare_value;
use serde::Serialize;
use serde_json::Value;

use crate::context::{evaluation_context, EventFacts};
use crate::engine::CompiledRule;
use crate::policy::RecipientPolicy;
use crate::render::{build_context, reply_to_of, History};
use crate::templates::Templates;

/// What a rule does with one event.
#[derive(Debug, Serialize)]
pub struct RuleOutcome {
    pub rule: String,
    pub fires: bool,
    /// Why it does not fire: another event type, or the failed condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    pub emails: Vec<EmailOutcome>,
}

/// One recipient of a firing rule.
#[derive(Debug, Serialize)]
pub struct EmailOutcome {
    /// The address, or the recipient as written when it gave none.
    pub recipient: String,
    /// `send`, `skipped` (recipient policy or no address) or `suppressed`
    /// (throttle or hourly cap): the status the notification would get
    /// (`queued` is shown as `send`).
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_error: Option<String>,
    /// The Reply-To (`reply_to = "visitor"` and the visitor's email known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

impl EmailOutcome {
    /// A recipient that gave no address (or one the rule may not use).
    pub fn skipped(recipient: String, reason: String) -> EmailOutcome {
        EmailOutcome {
            recipient,
            decision: "skipped",
            reason: Some(reason),
            subject: None,
            text: None,
            template_error: None,
            reply_to: None,
        }
    }
}

/// A whole run: each event, then each timer rule's replay.
#[derive(Debug, Serialize)]
pub struct Report {
    pub events: Vec<EventOutcome>,
    /// Timer rules email when no stop event follows a start in time, not
    /// on an event: their waits replayed over the events, until now.
    pub timers: Vec<crate::timers::dry_run::TimerOutcome>,
}

/// One event of the run.
#[derive(Debug, Serialize)]
pub struct EventOutcome {
    pub index: usize,
    #[serde(rename = "type")]
    pub event_type: String,
    pub summary: String,
    pub conversation: Option<String>,
    pub rules: Vec<RuleOutcome>,
}

/// The items of an event file: an envelope (`{"events": [...]}`, as
/// Swiftsell sends and the samples are), a list of items, or one item.
pub fn items_of(value: Value) -> Vec<Value> {
    match value {
        Value::Object(mut map) if map.get("events").is_some_and(Value::is_array) => {
            match map.remove("events") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            }
        }
        Value::Array(items) => items,
        other => vec![other],
    }
}

/// The throttle and the hourly cap, simulated over emails in the order
/// they would be queued.
#[derive(Default)]
pub struct Limits {
    /// (rule, conversation, recipient) -> when last queued.
    last_sent: HashMap<(String, Option<String>, String), NaiveDateTime>,
    /// recipient -> when queued.
    per_recipient: HashMap<String, Vec<NaiveDateTime>>,
}

impl Limits {
    /// What happens to an email from `rule` to `address` queued `at`: the
    /// status it would get (`send` for queued, `skipped`, `suppressed`)
    /// and why; a `send` is counted for the next decisions.
    pub fn decide(
        &mut self,
        rule: &CompiledRule,
        policy: &RecipientPolicy,
        conversation: Option<&str>,
        address: &str,
        at: NaiveDateTime,
    ) -> (&'static str, Option<String>) {
        if let Err(reason) = policy.check_domain(address) {
            return ("skipped", Some(reason));
        }
        let key = (
            rule.name().to_owned(),
            conversation.map(str::to_owned),
            address.to_owned(),
        );
        let window = rule
            .throttle
            .and_then(|window| chrono::Duration::from_std(window).ok());
        if let Some(previous) = window.and_then(|window| {
            self.last_sent
                .get(&key)
                .filter(|previous| at - **previous < window)
        }) {
            return (
                "suppressed",
                Some(format!(
                    "throttled: {address} was already notified by this rule for this conversation within {} (at {previous})",
                    rule.def.throttle.clone().unwrap_or_default()
                )),
            );
        }
        let cap = policy.hourly_cap;
        let sent = self.per_recipient.get(address).map_or(0, |times| {
            times
                .iter()
                .filter(|t| at - **t < chrono::Duration::hours(1))
                .count()
        });
        if cap > 0 && sent >= cap as usize {
            return (
                "suppressed",
                Some(format!(
                    "recipient cap: {address} already has {sent} emails from hookline in the last hour (recipient_hourly_cap = {cap})"
                )),
            );
        }
        self.last_sent.insert(key, at);
        self.per_recipient
            .entry(address.to_owned())
            .or_default()
            .push(at);
        ("send", None)
    }
}

/// What is fixed for a run.
pub struct DryRun<'a> {
    pub rules: &'a [CompiledRule],
    pub policy: &'a RecipientPolicy,
    pub templates: &'a Templates,
    pub public_url: Option<&'a str>,
    /// `conversation.*` values that override the state folded from the
    /// events (a JSON object as rules see it: `status`, `assignee.email`...).
    pub conversation_state: Option<&'a Value>,
}

impl DryRun<'_> {
    /// Runs every rule over `items`, in order.
    pub fn run(&self, items: &[Value]) -> Vec<EventOutcome> {
        self.report(items).events
    }

    /// Runs every rule over `items`, in order, then replays the timer
    /// rules' waits over them.
    pub fn report(&self, items: &[Value]) -> Report {
        let received = Utc::now();
        let mut replays = crate::timers::dry_run::Replays::new(self.rules);
        let mut conversations: HashMap<String, Conversation> = HashMap::new();
        let mut history: HashMap<String, Vec<StoredEvent>> = HashMap::new();
        let mut limits = Limits::default();
        let mut out = Vec::new();
        for (index, raw) in items.iter().enumerate() {
            let prepared = prepare_value(raw, received);
            let event = prepared.event;
            let key = event.conversation_key.clone();
            if let Some(obs) = &prepared.observation {
                conversations
                    .entry(obs.key.clone())
                    .and_modify(|c| c.apply(obs))
                    .or_insert_with(|| Conversation::new(obs));
            }
            let conversation = key.as_ref().and_then(|k| conversations.get(k));
            let stored = StoredEvent {
                id: index as i64 + 1,
                dedupe_key: event.dedupe_key.clone(),
                event_type: event.event_type.clone(),
                message_type: event.message_type.clone(),
                conversation_key: key.clone(),
                conversation_id: event.conversation_id,
                account_id: event.account_id,
                bot_id: event.bot_id,
                visitor_key: event.visitor_key.clone(),
                visitor_id: event.visitor_id,
                actor_type: event.actor_type.clone(),
                actor_email: event.actor_email.clone(),
                occurred_at: event.occurred_at,
                received_at: event.received_at,
                summary: event.summary.clone(),
                raw: event.raw.clone(),
            };
            let facts = EventFacts {
                id: None,
                event_type: &event.event_type,
                message_type: event.message_type.as_deref(),
                summary: &event.summary,
                occurred_at: event.occurred_at,
                actor_type: event.actor_type.as_deref(),
                actor_email: event.actor_email.as_deref(),
                item: crate::context::ItemSource::Raw(&event.raw),
            };
            let mut context = evaluation_context(&facts, conversation);
            if let Some(state) = self.conversation_state {
                merge(&mut context["conversation"], state);
            }
            let earlier = key
                .as_ref()
                .and_then(|k| history.get(k))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let past = History::from_events(earlier);
            let mut rules = Vec::new();
            for rule in self.rules {
                let listens = rule
                    .def
                    .on
                    .iter()
                    .any(|t| t == "*" || *t == event.event_type);
                if !rule.def.enabled {
                    rules.push(not_firing(rule, "the rule is disabled".to_owned()));
                    continue;
                }
                if rule.timer.is_some() {
                    rules.push(not_firing(
                        rule,
                        "a timer rule: it emails when no stop event follows its start event in time, not on an event; see its replay after the events".to_owned(),
                    ));
                    continue;
                }
                if !listens {
                    rules.push(not_firing(
                        rule,
                        format!(
                            "on: listens to {}, not {}",
                            rule.def.on.join(", "),
                            event.event_type
                        ),
                    ));
                    continue;
                }
                if let Err(failed) = rule.check(&context) {
                    rules.push(not_firing(rule, failed));
                    continue;
                }
                let mut emails = Vec::new();
                for recipient in rule.recipients(&context) {
                    let address = match recipient {
                        Err((written, reason)) => {
                            emails.push(EmailOutcome {
                                recipient: written,
                                decision: "skipped",
                                reason: Some(reason),
                                subject: None,
                                text: None,
                                template_error: None,
                                reply_to: None,
                            });
                            continue;
                        }
                        Ok(address) => address,
                    };
                    let (decision, reason) = limits.decide(
                        rule,
                        self.policy,
                        key.as_deref(),
                        &address,
                        event.occurred_at,
                    );
                    let draft = draft(rule.id, rule.name(), &rule.def.template, &stored, &address);
                    let template_context =
                        build_context(&draft, Some(&stored), conversation, &past, self.public_url);
                    let (subject, text, template_error) =
                        match self.templates.render(&rule.def.template, &template_context) {
                            Ok(r) => (Some(r.subject), Some(r.text), None),
                            Err(e) => (None, None, Some(e.to_string())),
                        };
                    emails.push(EmailOutcome {
                        recipient: address,
                        decision,
                        reason,
                        subject,
                        text,
                        template_error,
                        reply_to: reply_to_of(rule.def.reply_to.as_deref(), &template_context),
                    });
                }
                rules.push(RuleOutcome {
                    rule: rule.name().to_owned(),
                    fires: true,
                    failed: None,
                    emails,
                });
            }
            replays.see(index, &stored, &context);
            out.push(EventOutcome {
                index: index + 1,
                event_type: event.event_type.clone(),
                summary: event.summary.clone(),
                conversation: key.clone(),
                rules,
            });
            if let Some(k) = key {
                history.entry(k).or_default().push(stored);
            }
        }
        let timers = replays.finish(self, &conversations, &history, received.naive_utc());
        Report {
            events: out,
            timers,
        }
    }
}

fn not_firing(rule: &CompiledRule, failed: String) -> RuleOutcome {
    RuleOutcome {
        rule: rule.name().to_owned(),
        fires: false,
        failed: Some(failed),
        emails: Vec::new(),
    }
}

pub(crate) fn draft(
    rule_id: Option<i64>,
    rule_name: &str,
    template: &str,
    event: &StoredEvent,
    recipient: &str,
) -> Notification {
    Notification {
        id: 0,
        rule_id,
        rule_name: rule_name.to_owned(),
        event_id: Some(event.id),
        conversation_key: event.conversation_key.clone(),
        recipient: recipient.to_owned(),
        template: template.to_owned(),
        status: "dry_run".to_owned(),
        reason: None,
        attempts: 0,
        next_attempt_at: None,
        claimed_by: None,
        claimed_until: None,
        last_error: None,
        smtp_response: None,
        subject: None,
        created_at: event.received_at,
        updated_at: event.received_at,
        sent_at: None,
    }
}

/// The email template context of each item, replayed in order as a dry
/// run does (conversation folded, transcript from the earlier items), for
/// an email by rule `rule_name` to `recipient`.
pub fn template_contexts(
    items: &[Value],
    rule_name: &str,
    recipient: &str,
    public_url: Option<&str>,
) -> Vec<Value> {
    let received = Utc::now();
    let mut conversations: HashMap<String, Conversation> = HashMap::new();
    let mut history: HashMap<String, Vec<StoredEvent>> = HashMap::new();
    let mut out = Vec::new();
    for (index, raw) in items.iter().enumerate() {
        let prepared = prepare_value(raw, received);
        if let Some(obs) = &prepared.observation {
            conversations
                .entry(obs.key.clone())
                .and_modify(|c| c.apply(obs))
                .or_insert_with(|| Conversation::new(obs));
        }
        let stored = stored_event(index, prepared.event);
        let key = stored.conversation_key.clone();
        let conversation = key.as_ref().and_then(|k| conversations.get(k));
        let earlier = key
            .as_ref()
            .and_then(|k| history.get(k))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let draft = draft(None, rule_name, "", &stored, recipient);
        out.push(build_context(
            &draft,
            Some(&stored),
            conversation,
            &History::from_events(earlier),
            public_url,
        ));
        if let Some(k) = key {
            history.entry(k).or_default().push(stored);
        }
    }
    out
}

/// A template context for every shipped sample, named by its file.
pub fn sample_contexts() -> Vec<(String, Value)> {
    let mut names = Vec::new();
    let mut items = Vec::new();
    for (file, json) in crate::samples::SAMPLES {
        let value: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        for item in items_of(value) {
            names.push(file.to_owned());
            items.push(item);
        }
    }
    let contexts = template_contexts(
        &items,
        "sample-rule",
        "agent@example.com",
        Some("https://hookline.example.com"),
    );
    names
        .into_iter()
        .zip(contexts)
        .map(|(name, mut context)| {
            context["timer"] = crate::timers::sample_facts();
            (name, context)
        })
        .collect()
}

fn stored_event(index: usize, event: hookline_storage::events::NewEvent) -> StoredEvent {
    StoredEvent {
        id: index as i64 + 1,
        dedupe_key: event.dedupe_key,
        event_type: event.event_type,
        message_type: event.message_type,
        conversation_key: event.conversation_key,
        conversation_id: event.conversation_id,
        account_id: event.account_id,
        bot_id: event.bot_id,
        visitor_key: event.visitor_key,
        visitor_id: event.visitor_id,
        actor_type: event.actor_type,
        actor_email: event.actor_email,
        occurred_at: event.occurred_at,
        received_at: event.received_at,
        summary: event.summary,
        raw: event.raw,
    }
}

/// Overwrites `target`'s keys with `over`'s, recursively.
fn merge(target: &mut Value, over: &Value) {
    match (target, over) {
        (Value::Object(target), Value::Object(over)) => {
            for (key, value) in over {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (target, over) => *target = over.clone(),
    }
}

/// The run as text, for `hookline rules test`.
pub fn describe(outcomes: &[EventOutcome]) -> String {
    let mut out = String::new();
    for event in outcomes {
        out.push_str(&format!(
            "event {} ({}): {}\n",
            event.index, event.event_type, event.summary
        ));
        for rule in &event.rules {
            match &rule.failed {
                Some(failed) => {
                    out.push_str(&format!("  {}: does not fire: {failed}\n", rule.rule))
                }
                None => {
                    out.push_str(&format!("  {}: FIRES\n", rule.rule));
                    for email in &rule.emails {
                        out.push_str(&format!("    {} -> {}", email.recipient, email.decision));
                        if let Some(reason) = &email.reason {
                            out.push_str(&format!(" ({reason})"));
                        }
                        out.push('\n');
                        if let Some(reply_to) = &email.reply_to {
                            out.push_str(&format!("      Reply-To: {reply_to}\n"));
                        }
                        if let Some(subject) = &email.subject {
                            out.push_str(&format!("      Subject: {subject}\n"));
                        }
                        if let Some(text) = &email.text {
                            for line in text.lines() {
                                out.push_str(&format!("      | {line}\n"));
                            }
                        }
                        if let Some(error) = &email.template_error {
                            out.push_str(&format!("      template error: {error}\n"));
                        }
                    }
                    if rule.emails.is_empty() {
                        out.push_str("    (no recipient)\n");
                    }
                }
            }
        }
    }
    out
}
