//! Serde types for the Swiftsell webhook envelope and every event and
//! message type it documents, tolerant of the platform's quirks.
//!
//! Parsing a delivery fails only when the body is not JSON or has no
//! `events` array ([`Envelope::parse`]). Inside it, nothing fails: a field
//! of an unexpected type keeps its raw JSON ([`Field::Raw`]), an event or
//! message type this version does not know parses as `Unknown` with its JSON
//! whole, and unknown keys are kept in each struct's `other` map. Serialising
//! an [`Item`] gives back JSON equal in value to what was received.
//!
//! Pure: no I/O, no database, no HTTP.

mod actor;
pub mod conversation;
mod dedupe;
mod envelope;
mod event;
mod field;
mod item;
mod lenient;
mod message;
pub mod record;
mod summary;
mod time;
mod variables;
pub mod visitor;

pub use actor::{Actor, ActorKind};
pub use dedupe::{canonical_json, dedupe_key, dedupe_key_of_json, stored_dedupe_key};
pub use envelope::{json_type, read_body, Body, Envelope, EnvelopeError};
pub use event::{
    AssigneeChange, Channel, ConversationCreate, Event, Label, LabelsChange, MessageEvent, Note,
    Payload, StatusChange, VariablesChange,
};
pub use field::{value_text, Field, Flag, Id, Num};
pub use item::{AccountRef, BotRef, ConversationRef, Item, VisitorRef, UNRECOGNIZED};
pub use lenient::Lenient;
pub use message::*;
pub use summary::summary;
pub use time::parse_timestamp;
pub use variables::{normalize_name, Variable};

/// Every event type this version knows, as the platform names them.
pub const EVENT_TYPES: [&str; 7] = [
    "conversation_create",
    "message",
    "status",
    "assignee_change",
    "variables",
    "conversation_labels",
    "note",
];
