//! The seven documented event types and their payloads, plus `Unknown` for
//! types the platform adds later.

use serde::de::{self, DeserializeOwned};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::actor::Actor;
use crate::field::{Field, Flag, Id};
use crate::message::Message;
use crate::variables::Variable;

/// `event: {type, payload}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The type exactly as sent.
    pub type_name: String,
    pub payload: Payload,
    /// Keys of `event` other than `type` and `payload`.
    pub other: Map<String, Value>,
}

/// The payload, typed by the event type.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    ConversationCreate(ConversationCreate),
    Message(MessageEvent),
    Status(StatusChange),
    AssigneeChange(AssigneeChange),
    Variables(VariablesChange),
    ConversationLabels(LabelsChange),
    Note(Note),
    /// An event type this version does not know, or a payload that is not
    /// an object: kept as received (`Missing` when there was no payload).
    Unknown(Field<Value>),
}

/// `conversation_create`: a new conversation, with the visitor's variables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConversationCreate {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub assigned_to_user: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub created_at: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub bot_id: Field<Id>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub channel: Field<Channel>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub is_new_visitor: Field<Flag>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub is_closed: Field<Flag>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub external_key: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub browser: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub variables: Field<Vec<Variable>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `channel: {name, provider}` (both integers in the documentation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Channel {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub name: Field<Id>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub provider: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `message`: somebody sent a message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageEvent {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub message_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub message: Field<Message>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `status`: the conversation was closed (or, presumably, reopened).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusChange {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub closed_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub status: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `assignee_change`: the handover, bot to agent or agent to agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AssigneeChange {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub changed_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub from: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub to: Field<Actor>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `variables`: conversation or contact variables were set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VariablesChange {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub action_performed_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub variables: Field<Vec<Variable>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `conversation_labels`: labels added or deleted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabelsChange {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub action_performed_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub action: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub labels: Field<Vec<Label>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `{id}` of a label (the documentation shows no name).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Label {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub id: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `note`: an agent left an internal note.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Note {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub note_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub note: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ConversationCreate {
    /// The value of a visitor variable by its (normalised) name.
    pub fn variable(&self, name: &str) -> Option<&Value> {
        self.variables
            .get()?
            .iter()
            .find(|v| v.display_name().as_deref() == Some(name))
            .and_then(|v| v.value.get())
    }

    /// The text value of a visitor variable, when it is a non-empty string.
    pub fn variable_text(&self, name: &str) -> Option<&str> {
        self.variable(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The channel's name: the `global_channel_name` variable (`WEB`), or
    /// the numeric channel id.
    pub fn channel_name(&self) -> Option<String> {
        self.variable_text("global_channel_name")
            .map(str::to_owned)
            .or_else(|| {
                let channel = self.channel.get()?;
                channel.name.get().map(|id| format!("channel {id}"))
            })
    }
}

impl StatusChange {
    /// True for a closing status (`"Close"`, `"closed"`, ...).
    pub fn is_close(&self) -> bool {
        self.status
            .text()
            .map(|s| s.to_ascii_lowercase().starts_with("close"))
            .unwrap_or(false)
    }
}

impl Payload {
    /// Types a payload by the event type it came with.
    pub fn from_parts(type_name: &str, payload: Option<Value>) -> Payload {
        fn typed<T: DeserializeOwned>(payload: Option<Value>, wrap: fn(T) -> Payload) -> Payload {
            match payload {
                Some(value) => match Field::<T>::from_value(value) {
                    Field::Typed(typed) => wrap(typed),
                    Field::Raw(raw) => Payload::Unknown(Field::Raw(raw)),
                    Field::Missing => Payload::Unknown(Field::Missing),
                },
                None => Payload::Unknown(Field::Missing),
            }
        }
        match type_name {
            "conversation_create" => typed(payload, Payload::ConversationCreate),
            "message" => typed(payload, Payload::Message),
            "status" => typed(payload, Payload::Status),
            "assignee_change" => typed(payload, Payload::AssigneeChange),
            "variables" => typed(payload, Payload::Variables),
            "conversation_labels" => typed(payload, Payload::ConversationLabels),
            "note" => typed(payload, Payload::Note),
            _ => match payload {
                Some(value) => Payload::Unknown(Field::Typed(value)),
                None => Payload::Unknown(Field::Missing),
            },
        }
    }

    fn to_value(&self) -> Option<Value> {
        let value = match self {
            Payload::ConversationCreate(p) => serde_json::to_value(p),
            Payload::Message(p) => serde_json::to_value(p),
            Payload::Status(p) => serde_json::to_value(p),
            Payload::AssigneeChange(p) => serde_json::to_value(p),
            Payload::Variables(p) => serde_json::to_value(p),
            Payload::ConversationLabels(p) => serde_json::to_value(p),
            Payload::Note(p) => serde_json::to_value(p),
            Payload::Unknown(Field::Missing) => return None,
            Payload::Unknown(Field::Typed(v) | Field::Raw(v)) => return Some(v.clone()),
        };
        // Serialising these plain structs of JSON values cannot fail; keep
        // the payload out rather than panic if it ever did.
        value.ok()
    }
}

impl Event {
    /// True when the type is one this version does not know.
    pub fn is_unknown(&self) -> bool {
        matches!(self.payload, Payload::Unknown(_))
    }

    /// The message type, for message events.
    pub fn message_type(&self) -> Option<&str> {
        match &self.payload {
            Payload::Message(m) => m.message.get().map(|m| m.type_name.as_str()),
            _ => None,
        }
    }

    /// The actor responsible for the event: sender, closer, changer, author.
    pub fn actor(&self) -> Option<&Actor> {
        match &self.payload {
            Payload::ConversationCreate(_) | Payload::Unknown(_) => None,
            Payload::Message(p) => p.message_by.get(),
            Payload::Status(p) => p.closed_by.get(),
            Payload::AssigneeChange(p) => p.changed_by.get(),
            Payload::Variables(p) => p.action_performed_by.get(),
            Payload::ConversationLabels(p) => p.action_performed_by.get(),
            Payload::Note(p) => p.note_by.get(),
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut object = Map::<String, Value>::deserialize(deserializer)?;
        let type_name = match object.remove("type") {
            Some(Value::String(name)) => name,
            Some(other) => {
                return Err(de::Error::custom(format!(
                    "event.type is not a string: {other}"
                )))
            }
            None => return Err(de::Error::missing_field("type")),
        };
        let payload = Payload::from_parts(&type_name, object.remove("payload"));
        Ok(Event {
            type_name,
            payload,
            other: object,
        })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let payload = self.payload.to_value();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", &self.type_name)?;
        if let Some(payload) = &payload {
            map.serialize_entry("payload", payload)?;
        }
        for (key, value) in &self.other {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
