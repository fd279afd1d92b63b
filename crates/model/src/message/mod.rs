//! The 21 documented message types, plus `Unknown` for later ones.

use serde::de::MapAccess;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::field::Field;
use crate::lenient::{Key, Lenient};

mod bodies;
pub use bodies::*;

/// `message: {type, ...}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The type exactly as sent (`text`, `form.response`, ...).
    pub type_name: String,
    pub body: MessageBody,
}

/// The message body, typed by the message type. Every variant but `Text`
/// carries its content under `payload`.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageBody {
    Text(TextBody),
    Image(WithPayload<Media>),
    Audio(WithPayload<Media>),
    Video(WithPayload<Media>),
    Document(WithPayload<Media>),
    Form(WithPayload<FormPrompt>),
    FileUpload(WithPayload<FileUploadPrompt>),
    Calendar(WithPayload<CalendarPrompt>),
    CalendlyResponse(WithPayload<VariablesResponse>),
    List(WithPayload<ListPrompt>),
    Javascript(WithPayload<Script>),
    Button(WithPayload<ButtonPrompt>),
    Carousel(WithPayload<Carousel>),
    JavascriptResponse(WithPayload<VariablesResponse>),
    SliderResponse(WithPayload<SliderResponse>),
    Slider(WithPayload<SliderPrompt>),
    AppointmentBookingResponse(WithPayload<AppointmentBookingResponse>),
    ButtonResponse(WithPayload<ButtonResponse>),
    FormResponse(WithPayload<FormResponse>),
    FileUploadResponse(WithPayload<FileUploadResponse>),
    AppointmentBooking(WithPayload<AppointmentBooking>),
    /// A message type this version does not know: the keys besides `type`.
    Unknown(Map<String, Value>),
}

/// Every message type this version knows, as the platform names them.
pub const MESSAGE_TYPES: [&str; 21] = [
    "text",
    "image",
    "audio",
    "video",
    "document",
    "form",
    "file_upload",
    "calendar",
    "calendly.response",
    "list",
    "javascript",
    "button",
    "carousel",
    "javascript.response",
    "slider.response",
    "slider",
    "appointment_booking.response",
    "button.response",
    "form.response",
    "file_upload.response",
    "appointment_booking",
];

impl Message {
    /// True when the type is one this version does not know.
    pub fn is_unknown(&self) -> bool {
        matches!(self.body, MessageBody::Unknown(_))
    }

    /// The file a media message or upload carries.
    pub fn media(&self) -> Option<&Media> {
        match &self.body {
            MessageBody::Image(m)
            | MessageBody::Audio(m)
            | MessageBody::Video(m)
            | MessageBody::Document(m) => m.payload.get(),
            MessageBody::FileUploadResponse(m) => m.payload.get()?.payload.get(),
            _ => None,
        }
    }

    fn body_from(type_name: &str, rest: Map<String, Value>) -> MessageBody {
        fn typed<T: Lenient>(rest: Map<String, Value>, wrap: fn(T) -> MessageBody) -> MessageBody {
            match Field::<T>::from_value(Value::Object(rest)) {
                Field::Typed(typed) => wrap(typed),
                Field::Raw(Value::Object(rest)) => MessageBody::Unknown(rest),
                // `from_value` returns its input unchanged when it is raw.
                _ => MessageBody::Unknown(Map::new()),
            }
        }
        use MessageBody as B;
        match type_name {
            "text" => typed(rest, B::Text),
            "image" => typed(rest, B::Image),
            "audio" => typed(rest, B::Audio),
            "video" => typed(rest, B::Video),
            "document" => typed(rest, B::Document),
            "form" => typed(rest, B::Form),
            "file_upload" => typed(rest, B::FileUpload),
            "calendar" => typed(rest, B::Calendar),
            "calendly.response" => typed(rest, B::CalendlyResponse),
            "list" => typed(rest, B::List),
            "javascript" => typed(rest, B::Javascript),
            "button" => typed(rest, B::Button),
            "carousel" => typed(rest, B::Carousel),
            "javascript.response" => typed(rest, B::JavascriptResponse),
            "slider.response" => typed(rest, B::SliderResponse),
            "slider" => typed(rest, B::Slider),
            "appointment_booking.response" => typed(rest, B::AppointmentBookingResponse),
            "button.response" => typed(rest, B::ButtonResponse),
            "form.response" => typed(rest, B::FormResponse),
            "file_upload.response" => typed(rest, B::FileUploadResponse),
            "appointment_booking" => typed(rest, B::AppointmentBooking),
            _ => B::Unknown(rest),
        }
    }

    fn body_value(&self) -> Result<Value, serde_json::Error> {
        use MessageBody as B;
        match &self.body {
            B::Text(b) => serde_json::to_value(b),
            B::Image(b) | B::Audio(b) | B::Video(b) | B::Document(b) => serde_json::to_value(b),
            B::Form(b) => serde_json::to_value(b),
            B::FileUpload(b) => serde_json::to_value(b),
            B::Calendar(b) => serde_json::to_value(b),
            B::CalendlyResponse(b) | B::JavascriptResponse(b) => serde_json::to_value(b),
            B::List(b) => serde_json::to_value(b),
            B::Javascript(b) => serde_json::to_value(b),
            B::Button(b) => serde_json::to_value(b),
            B::Carousel(b) => serde_json::to_value(b),
            B::SliderResponse(b) => serde_json::to_value(b),
            B::Slider(b) => serde_json::to_value(b),
            B::AppointmentBookingResponse(b) => serde_json::to_value(b),
            B::ButtonResponse(b) => serde_json::to_value(b),
            B::FormResponse(b) => serde_json::to_value(b),
            B::FileUploadResponse(b) => serde_json::to_value(b),
            B::AppointmentBooking(b) => serde_json::to_value(b),
            B::Unknown(rest) => Ok(Value::Object(rest.clone())),
        }
    }
}

impl MessageBody {
    /// Types the keys of a message after its `type`, read straight from
    /// the parser.
    fn from_rest<'de, A: MapAccess<'de>>(type_name: &str, map: A) -> Result<MessageBody, A::Error> {
        fn typed<'de, T: Lenient, A: MapAccess<'de>>(
            map: A,
            wrap: fn(T) -> MessageBody,
        ) -> Result<MessageBody, A::Error> {
            Ok(match T::from_map(map)? {
                Field::Typed(typed) => wrap(typed),
                Field::Raw(Value::Object(rest)) => MessageBody::Unknown(rest),
                _ => MessageBody::Unknown(Map::new()),
            })
        }
        use MessageBody as B;
        match type_name {
            "text" => typed(map, B::Text),
            "image" => typed(map, B::Image),
            "audio" => typed(map, B::Audio),
            "video" => typed(map, B::Video),
            "document" => typed(map, B::Document),
            "form" => typed(map, B::Form),
            "file_upload" => typed(map, B::FileUpload),
            "calendar" => typed(map, B::Calendar),
            "calendly.response" => typed(map, B::CalendlyResponse),
            "list" => typed(map, B::List),
            "javascript" => typed(map, B::Javascript),
            "button" => typed(map, B::Button),
            "carousel" => typed(map, B::Carousel),
            "javascript.response" => typed(map, B::JavascriptResponse),
            "slider.response" => typed(map, B::SliderResponse),
            "slider" => typed(map, B::Slider),
            "appointment_booking.response" => typed(map, B::AppointmentBookingResponse),
            "button.response" => typed(map, B::ButtonResponse),
            "form.response" => typed(map, B::FormResponse),
            "file_upload.response" => typed(map, B::FileUploadResponse),
            "appointment_booking" => typed(map, B::AppointmentBooking),
            _ => Ok(B::Unknown(crate::lenient::raw_map(map)?)),
        }
    }
}

/// `{type, ...}`: typed as it is read when `type` comes first (as the
/// platform sends it); read as JSON and typed after otherwise. Without a
/// string `type` the object stays raw.
impl Lenient for Message {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Field<Self>, A::Error> {
        let Some(first) = map.next_key::<Key<'de>>()? else {
            return Ok(Field::Raw(Value::Object(Map::new())));
        };
        if first.as_str() == "type" {
            return Ok(match map.next_value::<Field<String>>()? {
                Field::Typed(type_name) => {
                    let body = MessageBody::from_rest(&type_name, map)?;
                    Field::Typed(Message { type_name, body })
                }
                other => {
                    let mut rest = crate::lenient::raw_map(map)?;
                    rest.insert("type".to_owned(), crate::lenient::field_json(other));
                    Field::Raw(Value::Object(rest))
                }
            });
        }
        let value = map.next_value::<Value>()?;
        let mut object = crate::lenient::raw_map(map)?;
        object.insert(first.into_string(), value);
        let type_name = match object.remove("type") {
            Some(Value::String(name)) => name,
            Some(other) => {
                object.insert("type".to_owned(), other);
                return Ok(Field::Raw(Value::Object(object)));
            }
            None => return Ok(Field::Raw(Value::Object(object))),
        };
        let body = Message::body_from(&type_name, object);
        Ok(Field::Typed(Message { type_name, body }))
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::lenient::strict(deserializer)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let body = self.body_value().map_err(serde::ser::Error::custom)?;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", &self.type_name)?;
        if let Value::Object(rest) = body {
            for (key, value) in &rest {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}
