//! The overview's figures, for the page (`/ui/`) and the API
//! (`/api/v1/overview`): events per hour by type, handovers, emails by
//! status, the conversations waiting for an agent, and how long agents take
//! to reply after a handover.

use actix_web::web;
use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, Utc};
use hookline_model::Item;
use hookline_storage::overview::{self, Handover};
use serde::Serialize;
use serde_json::Value;

use crate::api::{db_error, with_db};
use crate::error::ApiError;
use crate::params::rfc3339;
use crate::AppState;

/// The event chart's span: the last 24 hours (by hour) or the last 7 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    Day,
    Week,
}

impl Window {
    /// `24h` or `7d`, as the `window` parameter says it.
    pub fn parse(text: Option<&str>) -> Result<Window, ApiError> {
        match text {
            None | Some("24h") => Ok(Window::Day),
            Some("7d") => Ok(Window::Week),
            Some(other) => Err(ApiError::bad_request(
                "invalid_parameter",
                format!(
                    "parameter \"window\": {:?} is not 24h or 7d",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Window::Day => 24,
            Window::Week => 168,
        }
    }
}

/// How many waiting conversations the overview lists.
pub const WAITING_LISTED: i64 = 20;

/// The reply measure looks back this far, whatever the chart's window.
pub const REPLY_DAYS: i64 = 7;

/// One event type's counts, one per hour of the window, oldest first.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub event_type: String,
    pub counts: Vec<i64>,
    pub total: i64,
}

/// An agent's replies to the conversations handed to them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentReplies {
    pub agent: String,
    /// Handovers to this agent in the last 7 days.
    pub handovers: usize,
    /// Those the agent answered (they wrote the first agent message after
    /// the handover).
    pub answered: usize,
    /// Those where another agent wrote first.
    pub answered_by_others: usize,
    /// Those no agent has answered yet.
    pub unanswered: usize,
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

/// Everything the overview shows.
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    pub window: &'static str,
    pub generated_at: String,
    /// The start of each hour of the chart (RFC 3339), oldest first.
    pub hours: Vec<String>,
    pub events: Vec<Series>,
    pub events_total: i64,
    /// Of `events_total`, those not in `events`: of types hookline does not
    /// know (kept under their own name), or dated after this hour.
    pub events_not_drawn: i64,
    pub handovers: i64,
    /// Emails created in the window, by their status now.
    pub emails: EmailCounts,
    pub waiting_total: i64,
    /// The oldest waiting conversations (as the conversations API shows them).
    pub waiting: Vec<Value>,
    pub replies_since: String,
    pub replies: Vec<AgentReplies>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EmailCounts {
    pub sent: i64,
    pub failed: i64,
    pub dead: i64,
    /// Queued or being sent.
    pub pending: i64,
    /// Suppressed, skipped or in error: not sent on purpose or by policy.
    pub not_sent: i64,
}

/// Reads and computes the overview for the window ending now.
pub async fn load(state: &web::Data<AppState>, window: Window) -> Result<Overview, ApiError> {
    let now = Utc::now();
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let since = hour - Duration::hours(window.hours() - 1);
    let replies_since = now - Duration::days(REPLY_DAYS);
    let (since_n, replies_n) = (since.naive_utc(), replies_since.naive_utc());
    let mut types: Vec<&str> = hookline_model::EVENT_TYPES.to_vec();
    types.push(hookline_model::UNRECOGNIZED);
    let (per_hour, all, emails, (waiting, waiting_total), handovers) =
        with_db(state, move |conn| {
            Ok((
                overview::events_per_hour(conn, since_n, window.hours() as u32, &types)
                    .map_err(db_error)?,
                overview::events_since(conn, since_n).map_err(db_error)?,
                overview::emails_by_status(conn, since_n).map_err(db_error)?,
                overview::waiting_for_agent(conn, WAITING_LISTED).map_err(db_error)?,
                overview::handovers_and_replies(conn, replies_n).map_err(db_error)?,
            ))
        })
        .await?;
    let hours: Vec<DateTime<Utc>> = (0..window.hours())
        .map(|n| since + Duration::hours(n))
        .collect();
    let events = series(&hours, &per_hour);
    let drawn: i64 = events.iter().map(|s| s.total).sum();
    let handover_count = events
        .iter()
        .find(|s| s.event_type == "assignee_change")
        .map_or(0, |s| s.total);
    Ok(Overview {
        window: window.name(),
        generated_at: rfc3339(now.naive_utc()),
        hours: hours.iter().map(|h| rfc3339(h.naive_utc())).collect(),
        events,
        events_total: all,
        // Events of types this version does not know, stored by their
        // own name, and events dated after this hour.
        events_not_drawn: (all - drawn).max(0),
        handovers: handover_count,
        emails: email_counts(&emails),
        waiting_total,
        waiting: waiting.iter().map(crate::views::conversation).collect(),
        replies_since: rfc3339(replies_n),
        replies: agent_replies(&handovers),
    })
}

/// The counts laid out per type and hour; types by total, largest first.
fn series(hours: &[DateTime<Utc>], rows: &[overview::HourCount]) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for row in rows {
        let Some(at) = hours.iter().position(|h| h.naive_utc() == row.hour) else {
            continue;
        };
        let index = match out.iter().position(|s| s.event_type == row.event_type) {
            Some(index) => index,
            None => {
                out.push(Series {
                    event_type: row.event_type.clone(),
                    counts: vec![0; hours.len()],
                    total: 0,
                });
                out.len() - 1
            }
        };
        out[index].counts[at] += row.count;
        out[index].total += row.count;
    }
    out.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.event_type.cmp(&b.event_type))
    });
    out
}

fn email_counts(rows: &[(String, i64)]) -> EmailCounts {
    use hookline_storage::notifications as n;
    let mut counts = EmailCounts::default();
    for (status, count) in rows {
        match status.as_str() {
            n::SENT => counts.sent += count,
            n::FAILED => counts.failed += count,
            n::DEAD => counts.dead += count,
            n::QUEUED | n::SENDING => counts.pending += count,
            _ => counts.not_sent += count,
        }
    }
    counts
}

/// Who a handover went to, when it went to an agent (a handover to a bot
/// waits for no reply): as ingest wrote it, or, for handovers stored
/// before it did, read from the stored JSON the same way.
fn handed_to(handover: &Handover) -> Option<String> {
    match (&handover.handed_to, &handover.raw) {
        (Some(agent), _) => Some(agent.clone()).filter(|a| !a.is_empty()),
        (None, Some(raw)) => {
            let item = Item::from_raw(raw)?;
            let agent = item.handover_to_agent()??;
            Some(hookline_storage::bounded(agent.to_owned())).filter(|a| !a.is_empty())
        }
        (None, None) => None,
    }
}

/// Per agent handed a conversation: how many, how many answered, and the
/// median and 90th percentile of the time to their first reply; agents by
/// handovers, most first.
pub fn agent_replies(handovers: &[Handover]) -> Vec<AgentReplies> {
    let mut agents: Vec<(String, Vec<i64>, AgentReplies)> = Vec::new();
    for handover in handovers {
        let Some(agent) = handed_to(handover) else {
            continue;
        };
        let index = match agents.iter().position(|(a, _, _)| *a == agent) {
            Some(index) => index,
            None => {
                agents.push((
                    agent.clone(),
                    Vec::new(),
                    AgentReplies {
                        agent,
                        handovers: 0,
                        answered: 0,
                        answered_by_others: 0,
                        unanswered: 0,
                        median_seconds: None,
                        p90_seconds: None,
                    },
                ));
                agents.len() - 1
            }
        };
        let (agent, waits, figures) = &mut agents[index];
        figures.handovers += 1;
        match (&handover.replied_at, &handover.replied_by) {
            (Some(at), Some(by)) if by == agent => {
                figures.answered += 1;
                waits.push(seconds_between(handover.handed_at, *at));
            }
            (Some(_), _) => figures.answered_by_others += 1,
            (None, _) => figures.unanswered += 1,
        }
    }
    let mut out: Vec<AgentReplies> = agents
        .into_iter()
        .map(|(_, mut waits, mut figures)| {
            waits.sort_unstable();
            figures.median_seconds = percentile(&waits, 50);
            figures.p90_seconds = percentile(&waits, 90);
            figures
        })
        .collect();
    out.sort_by(|a, b| b.handovers.cmp(&a.handovers).then(a.agent.cmp(&b.agent)));
    out
}

fn seconds_between(from: NaiveDateTime, to: NaiveDateTime) -> i64 {
    (to - from).num_seconds().max(0)
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// `95 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`.
pub fn duration_text(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => match s % 60 {
            0 => format!("{} min", s / 60),
            r => format!("{} min {r} s", s / 60),
        },
        s if s < 86_400 => match (s % 3_600) / 60 {
            0 => format!("{} h", s / 3_600),
            m => format!("{} h {m} min", s / 3_600),
        },
        s => match (s % 86_400) / 3_600 {
            0 => format!("{} d", s / 86_400),
            h => format!("{} d {h} h", s / 86_400),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// A handover stored before ingest wrote `handed_to`: read from `raw`.
    fn handover(to: &str, kind: &str, reply: Option<(&str, &str)>) -> Handover {
        Handover {
            id: 1,
            handed_at: at("2026-11-30 10:00:00"),
            handed_to: None,
            raw: Some(
                serde_json::json!({"event": {"type": "assignee_change", "payload": {
                    "to": {"email": to, "id": "1", "type": kind}}}})
                .to_string(),
            ),
            replied_at: reply.map(|(t, _)| at(t)),
            replied_by: reply.map(|(_, b)| b.to_owned()),
        }
    }

    /// A handover as ingest writes it now (`""`: to no agent).
    fn handed(agent: &str, reply: Option<(&str, &str)>) -> Handover {
        Handover {
            handed_to: Some(agent.to_owned()),
            raw: None,
            ..handover("", "", reply)
        }
    }

    #[test]
    fn replies_are_counted_per_agent_handed_the_conversation() {
        let handovers = vec![
            handover("a@x", "user", Some(("2026-11-30 10:01:00", "a@x"))),
            handed("a@x", Some(("2026-11-30 10:02:00", "a@x"))),
            handover("a@x", "user", Some(("2026-11-30 10:10:00", "a@x"))),
            handed("a@x", Some(("2026-11-30 10:00:30", "b@x"))),
            handover("a@x", "user", None),
            handed("b@x", Some(("2026-11-30 11:00:00", "b@x"))),
            // To a bot, or to nobody: nobody is expected to reply.
            handover("bot@x", "bot", None),
            handed("", Some(("2026-11-30 10:05:00", "a@x"))),
        ];
        let replies = agent_replies(&handovers);
        assert_eq!(replies.len(), 2);
        assert_eq!(
            replies[0],
            AgentReplies {
                agent: "a@x".into(),
                handovers: 5,
                answered: 3,
                answered_by_others: 1,
                unanswered: 1,
                median_seconds: Some(120),
                p90_seconds: Some(600),
            }
        );
        assert_eq!(replies[1].agent, "b@x");
        assert_eq!(replies[1].median_seconds, Some(3_600));
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&values, 50), Some(5));
        assert_eq!(percentile(&values, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn durations_read_in_the_largest_units() {
        assert_eq!(duration_text(45), "45 s");
        assert_eq!(duration_text(250), "4 min 10 s");
        assert_eq!(duration_text(7_500), "2 h 5 min");
        assert_eq!(duration_text(3 * 86_400 + 4 * 3_600), "3 d 4 h");
    }

    #[test]
    fn an_unknown_window_is_refused_by_name() {
        assert_eq!(Window::parse(Some("7d")).unwrap(), Window::Week);
        assert_eq!(Window::parse(None).unwrap(), Window::Day);
        let error = Window::parse(Some("1y")).unwrap_err();
        assert!(error.message.contains("\"window\""), "{}", error.message);
    }
}
