//! Timer rules in a dry run (`hookline rules test`, `POST /rules/test`):
//! their waits replayed over the events given ([`super::backtest`], as the
//! preview does over stored history), as if nothing else happened until
//! now: which emails would have gone, when, to whom, with which subject.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use hookline_storage::conversations::Conversation;
use hookline_storage::events::StoredEvent;
use serde::Serialize;
use serde_json::Value;

use super::backtest::{self, Replay, Seen};
use super::CompiledTimer;
use crate::dry_run::{draft, DryRun, EmailOutcome, Limits};
use crate::engine::CompiledRule;
use crate::render::{build_context, reply_to_of, History};

/// A timer rule's replay over a dry run's events.
#[derive(Debug, Serialize)]
pub struct TimerOutcome {
    pub rule: String,
    /// "would have fired 2 times, at ...".
    pub summary: String,
    pub emails: Vec<TimerEmail>,
    /// Waits answered before their emails.
    pub answered: usize,
    /// Waits still running now.
    pub waiting: usize,
}

/// One step that would have fired.
#[derive(Debug, Serialize)]
pub struct TimerEmail {
    pub conversation: String,
    /// 1-based.
    pub step: usize,
    pub steps: usize,
    /// The event (1-based, as the run numbers them) that started the wait.
    pub start_event: usize,
    pub started_at: String,
    pub due_at: String,
    /// When it would have gone (after quiet hours).
    pub at: String,
    pub recipients: Vec<EmailOutcome>,
}

/// The replays of a run's enabled timer rules.
pub(crate) struct Replays<'a> {
    rules: Vec<(&'a CompiledRule, &'a CompiledTimer, Replay<'a>)>,
    /// Start events: the event and what conditions read in it.
    starts: HashMap<usize, (StoredEvent, Value)>,
}

fn when(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl<'a> Replays<'a> {
    pub(crate) fn new(rules: &'a [CompiledRule]) -> Replays<'a> {
        Replays {
            rules: rules
                .iter()
                .filter(|r| r.def.enabled)
                .filter_map(|r| {
                    r.timer
                        .as_deref()
                        .map(|t: &CompiledTimer| (r, t, Replay::new(t)))
                })
                .collect(),
            starts: HashMap::new(),
        }
    }

    /// Event `index` (0-based) of the run.
    pub(crate) fn see(&mut self, index: usize, event: &StoredEvent, context: &Value) {
        let Some(key) = event.conversation_key.as_deref() else {
            return;
        };
        let mut starts = false;
        for (_, timer, replay) in &mut self.rules {
            starts |= timer.start.matches(&event.event_type, context);
            replay.see(&Seen {
                event: index,
                conversation: key,
                event_type: &event.event_type,
                at: event.occurred_at,
                context,
            });
        }
        if starts {
            self.starts.insert(index, (event.clone(), context.clone()));
        }
    }

    /// Each rule's replay up to `horizon`, its emails decided and rendered
    /// over the conversations as the run left them; the transcript of a
    /// waiting email runs up to when it fired.
    pub(crate) fn finish(
        self,
        run: &DryRun<'_>,
        conversations: &HashMap<String, Conversation>,
        history: &HashMap<String, Vec<StoredEvent>>,
        horizon: NaiveDateTime,
    ) -> Vec<TimerOutcome> {
        let mut limits = Limits::default();
        let mut out = Vec::new();
        for (rule, timer, replay) in self.rules {
            let result = replay.finish(horizon);
            let mut emails = Vec::new();
            for firing in &result.fired {
                let (Some(step), Some((start, context))) = (
                    timer.steps.get(firing.step),
                    self.starts.get(&firing.start_event),
                ) else {
                    continue;
                };
                let conversation = conversations.get(&firing.conversation);
                let earlier: Vec<StoredEvent> = history
                    .get(&firing.conversation)
                    .map(|events| {
                        events
                            .iter()
                            .filter(|e| e.occurred_at <= firing.at)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let past = History::from_events(&earlier);
                let recipients = step
                    .rule
                    .recipients(context)
                    .into_iter()
                    .map(|recipient| {
                        let address = match recipient {
                            Ok(address) => address,
                            Err((written, reason)) => {
                                return EmailOutcome::skipped(written, reason);
                            }
                        };
                        let (decision, reason) = limits.decide(
                            &step.rule,
                            run.policy,
                            Some(&firing.conversation),
                            &address,
                            firing.at,
                        );
                        let mut email = draft(
                            rule.id,
                            rule.name(),
                            &step.rule.def.template,
                            start,
                            &address,
                        );
                        email.created_at = firing.at;
                        let mut template_context =
                            build_context(&email, Some(start), conversation, &past, run.public_url);
                        template_context["timer"] = super::preview_facts(
                            firing.step + 1,
                            firing.started_at,
                            firing.due_at,
                            firing.at,
                            &step.rule.def.to.join(", "),
                        );
                        let rendered = run
                            .templates
                            .render(&step.rule.def.template, &template_context);
                        let (subject, text, template_error) = match rendered {
                            Ok(r) => (Some(r.subject), Some(r.text), None),
                            Err(e) => (None, None, Some(e.to_string())),
                        };
                        EmailOutcome {
                            recipient: address,
                            decision,
                            reason,
                            subject,
                            text,
                            template_error,
                            reply_to: reply_to_of(rule.def.reply_to.as_deref(), &template_context),
                        }
                    })
                    .collect();
                emails.push(TimerEmail {
                    conversation: firing.conversation.clone(),
                    step: firing.step + 1,
                    steps: timer.steps.len(),
                    start_event: firing.start_event + 1,
                    started_at: when(firing.started_at),
                    due_at: when(firing.due_at),
                    at: when(firing.at),
                    recipients,
                });
            }
            out.push(TimerOutcome {
                rule: rule.name().to_owned(),
                summary: backtest::sentence(&result),
                emails,
                answered: result.answered.iter().filter(|a| !a.restarted).count(),
                waiting: result.waiting.len(),
            });
        }
        out
    }
}

/// The replays as text, after the events, for `hookline rules test`.
pub fn describe(timers: &[TimerOutcome]) -> String {
    let mut out = String::new();
    for timer in timers {
        out.push_str(&format!(
            "timer rule {}: {} (replayed over these events until now)\n",
            timer.rule, timer.summary
        ));
        for email in &timer.emails {
            out.push_str(&format!(
                "  {} · step {} of {} · {} (waiting since {}, event {})\n",
                email.at,
                email.step,
                email.steps,
                email.conversation,
                email.started_at,
                email.start_event
            ));
            for recipient in &email.recipients {
                out.push_str(&format!(
                    "    {} -> {}",
                    recipient.recipient, recipient.decision
                ));
                if let Some(reason) = &recipient.reason {
                    out.push_str(&format!(" ({reason})"));
                }
                out.push('\n');
                if let Some(subject) = &recipient.subject {
                    out.push_str(&format!("      Subject: {subject}\n"));
                }
                if let Some(error) = &recipient.template_error {
                    out.push_str(&format!("      template error: {error}\n"));
                }
            }
        }
    }
    out
}
