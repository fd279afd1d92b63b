//! The seven documented event types and their payloads, plus `Unknown` for
//! types the platform adds later.

use serde::de::{DeserializeSeed, MapAccess};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::actor::Actor;
use crate::field::{Field, Flag, Id};
use crate::lenient::{lenient_struct, Key, Lenient};
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
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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

lenient_struct!(ConversationCreate { "assigned_to_user" => assigned_to_user, "created_at" => created_at, "title" => title, "bot_id" => bot_id, "channel" => channel, "is_new_visitor" => is_new_visitor, "is_closed" => is_closed, "external_key" => external_key, "browser" => browser, "variables" => variables });

/// `channel: {name, provider}` (both integers in the documentation).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Channel {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub name: Field<Id>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub provider: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Channel { "name" => name, "provider" => provider });

/// `message`: somebody sent a message.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MessageEvent {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub message_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub message: Field<Message>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(MessageEvent { "message_by" => message_by, "message" => message });

/// `status`: the conversation was closed (or, presumably, reopened).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatusChange {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub closed_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub status: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(StatusChange { "closed_by" => closed_by, "status" => status });

/// `assignee_change`: the handover, bot to agent or agent to agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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

lenient_struct!(AssigneeChange { "changed_by" => changed_by, "from" => from, "to" => to });

/// `variables`: conversation or contact variables were set.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VariablesChange {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub action_performed_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub variables: Field<Vec<Variable>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(VariablesChange { "action_performed_by" => action_performed_by, "variables" => variables });

/// `conversation_labels`: labels added or deleted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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

lenient_struct!(LabelsChange { "action_performed_by" => action_performed_by, "action" => action, "labels" => labels });

/// `{id}` of a label (the documentation shows no name).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Label {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub id: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Label { "id" => id });

/// `note`: an agent left an internal note.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Note {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub note_by: Field<Actor>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub note: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Note { "note_by" => note_by, "note" => note });

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
        fn typed<T: Lenient>(payload: Option<Value>, wrap: fn(T) -> Payload) -> Payload {
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

    /// The payload as JSON (equal to what was received); `None` when absent.
    pub fn to_value(&self) -> Option<Value> {
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

/// Types a payload by the event type read before it.
struct PayloadSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Payload;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        fn typed<'de, T: Lenient, D: Deserializer<'de>>(
            d: D,
            wrap: fn(T) -> Payload,
        ) -> Result<Payload, D::Error> {
            Ok(match Field::<T>::deserialize(d)? {
                Field::Typed(typed) => wrap(typed),
                other => Payload::Unknown(other_raw(other)),
            })
        }
        fn other_raw<T>(field: Field<T>) -> Field<Value> {
            match field {
                Field::Raw(raw) => Field::Raw(raw),
                _ => Field::Missing,
            }
        }
        match self.0 {
            "conversation_create" => typed(d, Payload::ConversationCreate),
            "message" => typed(d, Payload::Message),
            "status" => typed(d, Payload::Status),
            "assignee_change" => typed(d, Payload::AssigneeChange),
            "variables" => typed(d, Payload::Variables),
            "conversation_labels" => typed(d, Payload::ConversationLabels),
            "note" => typed(d, Payload::Note),
            _ => Ok(Payload::Unknown(Field::Typed(Value::deserialize(d)?))),
        }
    }
}

/// `{type, payload, ...}`: the payload is typed as it is read when `type`
/// comes first (as the platform sends it), and read as JSON and typed
/// after otherwise. Without a string `type` the object stays raw.
impl Lenient for Event {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Field<Self>, A::Error> {
        let mut type_field: Field<String> = Field::Missing;
        let mut typed: Option<(String, Payload)> = None;
        let mut buffered: Option<Value> = None;
        let mut other = Map::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "type" => type_field = map.next_value()?,
                "payload" => match &type_field {
                    Field::Typed(name) => {
                        typed = Some((name.clone(), map.next_value_seed(PayloadSeed(name))?));
                        buffered = None;
                    }
                    _ => {
                        buffered = Some(map.next_value()?);
                        typed = None;
                    }
                },
                _ => {
                    let value = map.next_value::<Value>()?;
                    other.insert(key.into_string(), value);
                }
            }
        }
        let payload_value = |typed: Option<(String, Payload)>, buffered: Option<Value>| match typed
        {
            Some((_, payload)) => payload.to_value(),
            None => buffered,
        };
        match type_field {
            Field::Typed(type_name) => {
                let payload = match typed {
                    Some((typed_as, payload)) if typed_as == type_name => payload,
                    typed => Payload::from_parts(&type_name, payload_value(typed, buffered)),
                };
                Ok(Field::Typed(Event {
                    type_name,
                    payload,
                    other,
                }))
            }
            type_field => {
                if let Field::Raw(raw) = type_field {
                    other.insert("type".to_owned(), raw);
                }
                if let Some(payload) = payload_value(typed, buffered) {
                    other.insert("payload".to_owned(), payload);
                }
                Ok(Field::Raw(Value::Object(other)))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::lenient::strict(deserializer)
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
