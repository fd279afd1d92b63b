//! What events say about their conversation, and the conversation's state
//! folded from them (the projection). Pure: storage keeps the state it is
//! handed.

use chrono::NaiveDateTime;

/// A conversation's current state.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Conversation {
    pub key: String,
    pub conversation_id: Option<i64>,
    pub account_id: Option<i64>,
    pub bot_id: Option<i64>,
    pub visitor_key: Option<String>,
    pub visitor_id: Option<i64>,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub conversation_url: Option<String>,
    pub visitor_name: Option<String>,
    pub visitor_email: Option<String>,
    pub visitor_at: Option<NaiveDateTime>,
    /// `open` or `closed`.
    pub status: String,
    pub status_at: Option<NaiveDateTime>,
    pub assignee_type: Option<String>,
    pub assignee_email: Option<String>,
    pub assignee_at: Option<NaiveDateTime>,
    pub created_at: Option<NaiveDateTime>,
    pub first_event_at: NaiveDateTime,
    pub last_event_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    pub message_count: i64,
    pub event_count: i64,
}

pub const OPEN: &str = "open";
pub const CLOSED: &str = "closed";

/// What one event says about its conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    pub key: String,
    pub at: NaiveDateTime,
    pub conversation_id: Option<i64>,
    pub account_id: Option<i64>,
    pub bot_id: Option<i64>,
    pub visitor_key: Option<String>,
    pub visitor_id: Option<i64>,
    /// From `conversation_create`.
    pub created: Option<Created>,
    /// Visitor details captured (name, email), from variables and forms.
    pub visitor_name: Option<String>,
    pub visitor_email: Option<String>,
    /// `open` or `closed`, from `status`.
    pub status: Option<&'static str>,
    /// The new assignee (type, email), from `assignee_change` and
    /// `conversation_create`.
    pub assignee: Option<(Option<String>, Option<String>)>,
    pub is_message: bool,
}

/// What `conversation_create` says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Created {
    pub created_at: NaiveDateTime,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub conversation_url: Option<String>,
}

fn newer(candidate: NaiveDateTime, current: Option<NaiveDateTime>) -> bool {
    current.is_none_or(|current| candidate >= current)
}

impl Conversation {
    /// A conversation seen for the first time through `obs`.
    pub fn new(obs: &Observation) -> Conversation {
        let mut conversation = Conversation {
            key: obs.key.clone(),
            conversation_id: None,
            account_id: None,
            bot_id: None,
            visitor_key: None,
            visitor_id: None,
            title: None,
            channel: None,
            conversation_url: None,
            visitor_name: None,
            visitor_email: None,
            visitor_at: None,
            status: OPEN.to_owned(),
            status_at: None,
            assignee_type: None,
            assignee_email: None,
            assignee_at: None,
            created_at: None,
            first_event_at: obs.at,
            last_event_at: obs.at,
            closed_at: None,
            message_count: 0,
            event_count: 0,
        };
        conversation.apply(obs);
        conversation
    }

    /// Folds one event into the state. Events may arrive in any order:
    /// each group of fields takes the value of the newest event that set it.
    pub fn apply(&mut self, obs: &Observation) {
        self.event_count += 1;
        if obs.is_message {
            self.message_count += 1;
        }
        self.first_event_at = self.first_event_at.min(obs.at);
        self.last_event_at = self.last_event_at.max(obs.at);
        fill(&mut self.conversation_id, obs.conversation_id);
        fill(&mut self.account_id, obs.account_id);
        fill(&mut self.bot_id, obs.bot_id);
        fill(&mut self.visitor_key, obs.visitor_key.clone());
        fill(&mut self.visitor_id, obs.visitor_id);
        if let Some(created) = &obs.created {
            self.created_at = Some(created.created_at);
            replace(&mut self.title, created.title.clone());
            replace(&mut self.channel, created.channel.clone());
            replace(&mut self.conversation_url, created.conversation_url.clone());
        }
        if (obs.visitor_name.is_some() || obs.visitor_email.is_some())
            && newer(obs.at, self.visitor_at)
        {
            self.visitor_at = Some(obs.at);
            replace(&mut self.visitor_name, obs.visitor_name.clone());
            replace(&mut self.visitor_email, obs.visitor_email.clone());
        } else {
            fill(&mut self.visitor_name, obs.visitor_name.clone());
            fill(&mut self.visitor_email, obs.visitor_email.clone());
        }
        if let Some(status) = obs.status {
            if newer(obs.at, self.status_at) {
                self.status = status.to_owned();
                self.status_at = Some(obs.at);
                self.closed_at = (status == CLOSED).then_some(obs.at);
            }
        }
        if let Some((kind, email)) = &obs.assignee {
            // conversation_create's initial assignee loses to any handover.
            let at = obs
                .created
                .as_ref()
                .map_or(obs.at, |created| created.created_at.min(obs.at));
            if newer(at, self.assignee_at) {
                self.assignee_type = kind.clone();
                self.assignee_email = email.clone();
                self.assignee_at = Some(at);
            }
        }
    }
}

/// Sets a field that was unknown.
fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Overwrites a field with a newer known value.
fn replace<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn at(second: i64) -> NaiveDateTime {
        DateTime::from_timestamp(1_700_000_000 + second, 0)
            .unwrap()
            .naive_utc()
    }

    fn obs(second: i64) -> Observation {
        Observation {
            key: "c".into(),
            at: at(second),
            ..Observation::default()
        }
    }

    #[test]
    fn late_older_status_does_not_override_newer() {
        let mut close = obs(10);
        close.status = Some(CLOSED);
        let mut reopen = obs(5);
        reopen.status = Some(OPEN);
        let mut conversation = Conversation::new(&close);
        conversation.apply(&reopen);
        assert_eq!(conversation.status, CLOSED);
        assert_eq!(conversation.closed_at, Some(at(10)));
        assert_eq!(conversation.first_event_at, at(5));
        assert_eq!(conversation.last_event_at, at(10));
    }

    #[test]
    fn newest_assignee_wins_whatever_the_arrival_order() {
        let mut first = obs(1);
        first.assignee = Some((Some("user".into()), Some("a@x".into())));
        let mut second = obs(2);
        second.assignee = Some((Some("user".into()), Some("b@x".into())));
        let mut forward = Conversation::new(&first);
        forward.apply(&second);
        let mut backward = Conversation::new(&second);
        backward.apply(&first);
        assert_eq!(forward.assignee_email.as_deref(), Some("b@x"));
        assert_eq!(backward.assignee_email.as_deref(), Some("b@x"));
    }

    #[test]
    fn messages_are_counted() {
        let mut message = obs(1);
        message.is_message = true;
        let mut conversation = Conversation::new(&message);
        conversation.apply(&obs(2));
        conversation.apply(&message);
        assert_eq!(conversation.message_count, 2);
        assert_eq!(conversation.event_count, 3);
    }
}
