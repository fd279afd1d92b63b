//! The actor shape: who sent a message, closed a conversation, handed over.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::field::{Field, Id};
use crate::lenient::lenient_struct;

/// `{email, id, type}`; `email` and `id` are `null` for visitors.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Actor {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub email: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub id: Field<Id>,
    #[serde(rename = "type", skip_serializing_if = "Field::is_missing")]
    pub kind: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Actor { "email" => email, "id" => id, "type" => kind });

/// What kind of participant an actor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind<'a> {
    Visitor,
    /// A human agent (`"user"` in the payload).
    Agent,
    Bot,
    Other(&'a str),
    Unknown,
}

impl ActorKind<'_> {
    /// The word used for this kind in summaries.
    pub fn word(&self) -> &str {
        match self {
            ActorKind::Visitor => "visitor",
            ActorKind::Agent => "agent",
            ActorKind::Bot => "bot",
            ActorKind::Other(other) => other,
            ActorKind::Unknown => "someone",
        }
    }
}

impl Actor {
    pub fn kind(&self) -> ActorKind<'_> {
        match self.kind.text() {
            Some("visitor") => ActorKind::Visitor,
            Some("user") => ActorKind::Agent,
            Some("bot") => ActorKind::Bot,
            Some(other) => ActorKind::Other(other),
            None => ActorKind::Unknown,
        }
    }

    /// The actor's email, when the platform sent one.
    pub fn email(&self) -> Option<&str> {
        self.email.text()
    }

    /// The type as sent (`visitor`, `user`, `bot`, ...), if any.
    pub fn type_name(&self) -> Option<&str> {
        self.kind.text()
    }

    /// A short label: `visitor`, `agent a@b.c`, `bot seq@b.c`.
    pub fn label(&self) -> String {
        let kind = self.kind();
        match (kind, self.email()) {
            (ActorKind::Visitor, _) => "visitor".to_owned(),
            (_, Some(email)) => format!("{} {email}", kind.word()),
            (_, None) => match self.id.get() {
                Some(id) => format!("{} #{id}", kind.word()),
                None => kind.word().to_owned(),
            },
        }
    }

    /// Who the actor is, for "by X" phrases: the email, or the label.
    pub fn who(&self) -> String {
        match (self.kind(), self.email()) {
            (ActorKind::Visitor, _) => "the visitor".to_owned(),
            (_, Some(email)) => email.to_owned(),
            _ => self.label(),
        }
    }
}

/// The label of an optional actor field, `someone` when it is absent or odd.
pub fn label_of(actor: &Field<Actor>) -> String {
    actor
        .get()
        .map(Actor::label)
        .unwrap_or_else(|| "someone".to_owned())
}
