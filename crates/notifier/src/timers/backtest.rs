//! A timer rule replayed over past events, without storing anything: when
//! it would have emailed ("would have fired 12 times last week, at ..."),
//! which waits were answered in time, which are still running. The rule
//! preview (stored history) and the dry run (`rules test`, events from a
//! file) both use it, so they say the same.
//!
//! Events are seen in time order, as [`super::apply`] sees them live: a
//! stop ends the open episode (what has not fired yet is cancelled), a
//! start opens one (`keep_first`: not while one is open; `restart`: a new
//! one each time). A step fires at its due time (business time with a
//! calendar), or when the rule's quiet hours end, unless a stop came
//! first. Steps due after `horizon` (the end of the range, or now) are
//! still waiting.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde_json::Value;

use super::{CompiledTimer, Rearm};

/// One event as the replay sees it.
pub struct Seen<'a> {
    /// The caller's handle on the event (its position or id), given back
    /// in the results.
    pub event: usize,
    pub conversation: &'a str,
    pub event_type: &'a str,
    pub at: NaiveDateTime,
    /// What conditions read (`evaluation_context`).
    pub context: &'a Value,
}

/// A step that would have fired.
#[derive(Clone, Debug, PartialEq)]
pub struct Firing {
    pub conversation: String,
    /// 0: the first email (`after`); then the escalations.
    pub step: usize,
    /// The event that started the episode.
    pub start_event: usize,
    pub started_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    /// When it would have gone: the due time, or the end of the quiet
    /// hours it fell in.
    pub at: NaiveDateTime,
}

/// An episode a stop ended before all its steps fired.
#[derive(Clone, Debug, PartialEq)]
pub struct Answered {
    pub conversation: String,
    pub start_event: usize,
    pub started_at: NaiveDateTime,
    pub stop_event: usize,
    pub stopped_at: NaiveDateTime,
    /// Steps that had fired before the stop.
    pub fired_steps: usize,
    /// Ended by a newer start (`rearm = "restart"`), not a stop.
    pub restarted: bool,
}

/// An episode still open at the horizon, with its next step's due time.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    pub conversation: String,
    pub start_event: usize,
    pub started_at: NaiveDateTime,
    pub next_step: usize,
    pub next_due: Option<NaiveDateTime>,
}

/// What the replay found, each list in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Backtest {
    pub fired: Vec<Firing>,
    pub answered: Vec<Answered>,
    pub waiting: Vec<Waiting>,
}

struct Open {
    start_event: usize,
    started_at: NaiveDateTime,
    /// Steps fired so far.
    next_step: usize,
}

/// The replay of one timer rule; feed it events in time order with
/// [`Replay::see`], then [`Replay::finish`].
pub struct Replay<'t> {
    timer: &'t CompiledTimer,
    open: HashMap<String, Open>,
    out: Backtest,
}

impl<'t> Replay<'t> {
    pub fn new(timer: &'t CompiledTimer) -> Replay<'t> {
        Replay {
            timer,
            open: HashMap::new(),
            out: Backtest::default(),
        }
    }

    /// One event, not older than the one before.
    pub fn see(&mut self, seen: &Seen<'_>) {
        let stops = self
            .timer
            .stop
            .iter()
            .any(|t| t.matches(seen.event_type, seen.context));
        let starts = self.timer.start.matches(seen.event_type, seen.context);
        if !stops && !starts {
            return;
        }
        // What came due before this event went out before it arrived.
        self.fire_until(seen.conversation, seen.at, false);
        if stops {
            if let Some(open) = self.open.remove(seen.conversation) {
                self.end(seen, open, false);
            }
        }
        if !starts {
            return;
        }
        if self.open.contains_key(seen.conversation) {
            if self.timer.rearm == Rearm::KeepFirst {
                return;
            }
            if let Some(open) = self.open.remove(seen.conversation) {
                self.end(seen, open, true);
            }
        }
        self.open.insert(
            seen.conversation.to_owned(),
            Open {
                start_event: seen.event,
                started_at: seen.at,
                next_step: 0,
            },
        );
    }

    /// The steps due by `horizon` fire; the episodes still open then are
    /// waiting.
    pub fn finish(mut self, horizon: NaiveDateTime) -> Backtest {
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for key in keys {
            self.fire_until(&key, horizon, true);
        }
        let mut waiting: Vec<Waiting> = self
            .open
            .drain()
            .filter(|(_, open)| open.next_step < self.timer.steps.len())
            .map(|(conversation, open)| Waiting {
                next_due: self.timer.due(open.next_step, open.started_at),
                conversation,
                start_event: open.start_event,
                started_at: open.started_at,
                next_step: open.next_step,
            })
            .collect();
        waiting
            .sort_by(|a, b| (a.started_at, &a.conversation).cmp(&(b.started_at, &b.conversation)));
        self.out.waiting = waiting;
        self.out
            .fired
            .sort_by(|a, b| (a.at, &a.conversation, a.step).cmp(&(b.at, &b.conversation, b.step)));
        self.out
    }

    /// Fires the steps of `conversation`'s open episode due before `until`
    /// (or at it, with `inclusive`).
    fn fire_until(&mut self, conversation: &str, until: NaiveDateTime, inclusive: bool) {
        let Some(open) = self.open.get_mut(conversation) else {
            return;
        };
        while open.next_step < self.timer.steps.len() {
            let Some(due_at) = self.timer.due(open.next_step, open.started_at) else {
                // Beyond what can be computed: never due.
                open.next_step = self.timer.steps.len();
                break;
            };
            let at = self
                .timer
                .quiet
                .as_ref()
                .and_then(|q| q.open_until(due_at))
                .unwrap_or(due_at);
            if at > until || (at == until && !inclusive) {
                break;
            }
            self.out.fired.push(Firing {
                conversation: conversation.to_owned(),
                step: open.next_step,
                start_event: open.start_event,
                started_at: open.started_at,
                due_at,
                at,
            });
            open.next_step += 1;
        }
    }

    fn end(&mut self, seen: &Seen<'_>, open: Open, restarted: bool) {
        if open.next_step >= self.timer.steps.len() {
            return;
        }
        self.out.answered.push(Answered {
            conversation: seen.conversation.to_owned(),
            start_event: open.start_event,
            started_at: open.started_at,
            stop_event: seen.event,
            stopped_at: seen.at,
            fired_steps: open.next_step,
            restarted,
        });
    }
}

/// "would have fired 3 times (2 first emails, 1 escalation), at
/// 2026-11-23 09:05, ...; 4 waits answered in time; 1 still waiting".
pub fn sentence(backtest: &Backtest) -> String {
    let fired = backtest.fired.len();
    let escalations = backtest.fired.iter().filter(|f| f.step > 0).count();
    let mut text = match fired {
        0 => "would not have fired".to_owned(),
        1 => "would have fired once".to_owned(),
        n => format!("would have fired {n} times"),
    };
    if escalations > 0 {
        text.push_str(&format!(
            " ({} first email{}, {escalations} escalation{})",
            fired - escalations,
            if fired - escalations == 1 { "" } else { "s" },
            if escalations == 1 { "" } else { "s" },
        ));
    }
    if fired > 0 {
        const SHOWN: usize = 5;
        let times: Vec<String> = backtest
            .fired
            .iter()
            .take(SHOWN)
            .map(|f| f.at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .collect();
        text.push_str(&format!(", at {}", times.join(", ")));
        if fired > SHOWN {
            text.push_str(&format!(" and {} more", fired - SHOWN));
        }
    }
    let answered = backtest.answered.iter().filter(|a| !a.restarted).count();
    if answered > 0 {
        text.push_str(&format!(
            "; {answered} wait{} answered before {}",
            if answered == 1 { "" } else { "s" },
            if answered == 1 {
                "its email"
            } else {
                "their emails"
            },
        ));
    }
    if !backtest.waiting.is_empty() {
        text.push_str(&format!("; {} still waiting", backtest.waiting.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::rule::RuleDef;
    use crate::templates::Templates;
    use serde_json::json;

    fn timer(rule: Value) -> CompiledTimer {
        let def: RuleDef = serde_json::from_value(rule).unwrap();
        let templates = Templates::built_in().unwrap();
        CompiledTimer::compile(
            &def,
            def.timer.as_ref().unwrap(),
            &templates,
            &crate::directory::Directory::default(),
        )
        .unwrap()
    }

    fn waiting(rearm: &str) -> CompiledTimer {
        timer(json!({
            "name": "waiting", "to": ["lead@example.com"], "template": "waiting",
            "timer": {
                "after": "5m", "rearm": rearm,
                "start": {"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "visitor"}]},
                "stop": [{"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "user"}]}],
                "escalate": [{"at": "15m", "to": ["head@example.com"]}],
            }
        }))
    }

    fn at(minute: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(9, minute, 0)
            .unwrap()
    }

    /// Events: (minute, conversation, by visitor?).
    fn replay(timer: &CompiledTimer, events: &[(u32, &str, bool)], horizon: u32) -> Backtest {
        let visitor = json!({"payload": {"message_by": {"type": "visitor"}}});
        let agent = json!({"payload": {"message_by": {"type": "user"}}});
        let mut replay = Replay::new(timer);
        for (i, (minute, key, by_visitor)) in events.iter().enumerate() {
            replay.see(&Seen {
                event: i,
                conversation: key,
                event_type: "message",
                at: at(*minute),
                context: if *by_visitor { &visitor } else { &agent },
            });
        }
        replay.finish(at(horizon))
    }

    #[test]
    fn unanswered_waits_fire_each_step_once_and_answers_cancel() {
        let timer = waiting("keep_first");
        let result = replay(
            &timer,
            &[
                // c1: never answered: both steps. c2: answered after the
                // first email, before the escalation. c3: answered in
                // time. c4: started late: its first step is still to come.
                (0, "c1", true),
                (1, "c2", true),
                (2, "c1", true),
                (3, "c3", true),
                (4, "c3", false),
                (10, "c2", false),
                (50, "c4", true),
            ],
            52,
        );
        let fired: Vec<(&str, usize, NaiveDateTime)> = result
            .fired
            .iter()
            .map(|f| (f.conversation.as_str(), f.step, f.at))
            .collect();
        assert_eq!(
            fired,
            [("c1", 0, at(5)), ("c2", 0, at(6)), ("c1", 1, at(15))]
        );
        assert_eq!(result.answered.len(), 2);
        assert_eq!(result.answered[0].conversation, "c3");
        assert_eq!(result.answered[0].fired_steps, 0);
        assert_eq!(result.answered[1].conversation, "c2");
        assert_eq!(result.answered[1].fired_steps, 1);
        assert_eq!(result.waiting.len(), 1);
        assert_eq!(result.waiting[0].next_due, Some(at(55)));
        assert_eq!(
            sentence(&result),
            "would have fired 3 times (2 first emails, 1 escalation), at 2026-11-23 09:05:00 UTC, 2026-11-23 09:06:00 UTC, 2026-11-23 09:15:00 UTC; 2 waits answered before their emails; 1 still waiting"
        );
    }

    #[test]
    fn restart_counts_from_the_newest_start() {
        let timer = waiting("restart");
        let result = replay(&timer, &[(0, "c1", true), (4, "c1", true)], 30);
        let fired: Vec<(usize, NaiveDateTime)> =
            result.fired.iter().map(|f| (f.step, f.at)).collect();
        assert_eq!(fired, [(0, at(9)), (1, at(19))]);
        assert!(result.answered[0].restarted);
        assert_eq!(
            sentence(&result),
            "would have fired 2 times (1 first email, 1 escalation), at 2026-11-23 09:09:00 UTC, 2026-11-23 09:19:00 UTC"
        );
    }

    #[test]
    fn a_step_due_in_quiet_hours_goes_when_they_end() {
        let timer = timer(json!({
            "name": "waiting", "to": ["lead@example.com"], "template": "waiting",
            "timer": {
                "after": "5m",
                "start": {"on": ["message"]},
                "quiet_hours": {"time_zone": "UTC", "hours": {"mon": ["09:00-09:20"]}},
            }
        }));
        let result = replay(&timer, &[(0, "c1", true)], 19);
        assert!(result.fired.is_empty(), "{result:?}");
        assert_eq!(result.waiting.len(), 1);
        let result = replay(&timer, &[(0, "c1", true)], 30);
        assert_eq!(result.fired[0].due_at, at(5));
        assert_eq!(result.fired[0].at, at(20));
        assert_eq!(sentence(&Backtest::default()), "would not have fired");
    }
}
