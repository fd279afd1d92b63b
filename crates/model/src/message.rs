//! The 21 documented message types, plus `Unknown` for later ones.

use serde::de::MapAccess;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::field::{Field, Flag, Id, Num};
use crate::lenient::{lenient_struct, Key, Lenient};
use crate::variables::Variable;

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

/// `{type: "text", text}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TextBody {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub text: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(TextBody { "text" => text });

/// `{type, payload: P}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(bound(serialize = "P: Serialize"))]
pub struct WithPayload<P> {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub payload: Field<P>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl<P> Default for WithPayload<P> {
    fn default() -> Self {
        WithPayload {
            payload: Field::Missing,
            other: Map::new(),
        }
    }
}

impl<P: Lenient> Lenient for WithPayload<P> {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Field<Self>, A::Error> {
        let mut out = WithPayload::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "payload" => out.payload = map.next_value()?,
                _ => {
                    let value = map.next_value::<Value>()?;
                    out.other.insert(key.into_string(), value);
                }
            }
        }
        Ok(Field::Typed(out))
    }
}

/// A link to a file: image, audio, video, document, uploaded file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Media {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub link: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub mime_type: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub file_name: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Media { "link" => link, "mime_type" => mime_type, "file_name" => file_name });

/// `form`: the bot or agent asks for several fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FormPrompt {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub message: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub fields: Field<Vec<FormField>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(FormPrompt { "message" => message, "fields" => fields });

/// One field of a form, asked (`form`) or answered (`form.response`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FormField {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub label: Field<String>,
    #[serde(rename = "type", skip_serializing_if = "Field::is_missing")]
    pub kind: Field<String>,
    /// The variable the answer goes to, in placeholder markers.
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub variable: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub is_optional: Field<Flag>,
    /// The answer (`form.response` only).
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub value: Field<Value>,
    /// `"None"` or an object such as `{country_code}` (`form.response`).
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub extra: Field<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(FormField { "label" => label, "type" => kind, "variable" => variable, "is_optional" => is_optional, "value" => value, "extra" => extra });

/// `file_upload`: the visitor is asked for a file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileUploadPrompt {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub allow_extensions: Field<Vec<String>>,
    /// Documented as a size; the example holds a sentence.
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub max_file_size_in_kb: Field<Num>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub upload_file_limit: Field<Num>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub error_message: Field<Map<String, Value>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(FileUploadPrompt { "title" => title, "allow_extensions" => allow_extensions, "max_file_size_in_kb" => max_file_size_in_kb, "upload_file_limit" => upload_file_limit, "error_message" => error_message });

/// `calendar`: the visitor is asked for a date.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CalendarPrompt {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub auto_open: Field<Flag>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    /// Date-picker settings, kept as JSON: display only.
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub validation: Field<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(CalendarPrompt { "auto_open" => auto_open, "title" => title, "validation" => validation });

/// `calendly.response` and `javascript.response`: variables set by the
/// visitor's side, keyed by placeholder name; values of any JSON type.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VariablesResponse {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub variables: Field<Map<String, Value>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(VariablesResponse { "variables" => variables });

/// `list` (WhatsApp): a list of sections of items.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ListPrompt {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub header: Field<ListHeader>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub footer: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub list: Field<ListBody>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(ListPrompt { "header" => header, "footer" => footer, "title" => title, "list" => list });

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ListHeader {
    #[serde(rename = "type", skip_serializing_if = "Field::is_missing")]
    pub kind: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub text: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(ListHeader { "type" => kind, "text" => text });

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ListBody {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub sections: Field<Vec<ListSection>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(ListBody { "title" => title, "sections" => sections });

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ListSection {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub items: Field<Vec<ListItem>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(ListSection { "title" => title, "items" => items });

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ListItem {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub description: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub next_dialog: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(ListItem { "title" => title, "description" => description, "next_dialog" => next_dialog });

/// `javascript`: a script run in the visitor's browser.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Script {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub script: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub execute_at: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Script { "script" => script, "execute_at" => execute_at });

/// `button`: the visitor is offered buttons.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ButtonPrompt {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub search_enabled: Field<Flag>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub multi_select_enabled: Field<Flag>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub buttons_layout: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub buttons_order: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub buttons: Field<Vec<Button>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(ButtonPrompt { "title" => title, "search_enabled" => search_enabled, "multi_select_enabled" => multi_select_enabled, "buttons_layout" => buttons_layout, "buttons_order" => buttons_order, "buttons" => buttons });

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Button {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(rename = "type", skip_serializing_if = "Field::is_missing")]
    pub kind: Field<String>,
    /// A string that may itself hold JSON (`{"web_url": ...}`); kept as sent.
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub callback: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub next_dialog: Field<Id>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Button { "title" => title, "type" => kind, "callback" => callback, "next_dialog" => next_dialog });

impl FormPrompt {
    /// The fields asked for (none when the list was unreadable).
    pub fn field_list(&self) -> &[FormField] {
        self.fields.get().map(Vec::as_slice).unwrap_or_default()
    }
}

impl FormField {
    /// What the field is called: its label, else its variable's name.
    pub fn name(&self) -> String {
        self.label
            .text()
            .map(str::to_owned)
            .or_else(|| {
                self.variable
                    .text()
                    .map(|v| crate::normalize_name(v).to_owned())
            })
            .unwrap_or_else(|| "?".to_owned())
    }

    /// The answer as text (empty when there is none).
    pub fn answer(&self) -> String {
        self.value.get().map(crate::value_text).unwrap_or_default()
    }
}

impl FormResponse {
    /// (field name, answer) for every field answered.
    pub fn answers(&self) -> Vec<(String, String)> {
        self.fields
            .get()
            .map(|fields| fields.iter().map(|f| (f.name(), f.answer())).collect())
            .unwrap_or_default()
    }
}

impl ButtonPrompt {
    /// The buttons' titles.
    pub fn titles(&self) -> Vec<&str> {
        self.buttons
            .get()
            .map(|buttons| buttons.iter().filter_map(|b| b.title.text()).collect())
            .unwrap_or_default()
    }
}

impl ListPrompt {
    /// The titles of the items of every section.
    pub fn item_titles(&self) -> Vec<&str> {
        self.list
            .get()
            .and_then(|l| l.sections.get())
            .map(|sections| {
                sections
                    .iter()
                    .filter_map(|s| s.items.get())
                    .flatten()
                    .filter_map(|i| i.title.text())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Button {
    /// The callback's JSON, when the callback string holds JSON.
    pub fn callback_json(&self) -> Option<Value> {
        serde_json::from_str(self.callback.text()?).ok()
    }
}

/// `carousel`: a row of cards with images.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Carousel {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub items: Field<Vec<CarouselItem>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Carousel { "title" => title, "items" => items });

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CarouselItem {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub image: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub action: Field<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(CarouselItem { "image" => image, "action" => action });

/// `slider.response`: the value the visitor picked.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SliderResponse {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub value: Field<Num>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub text: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(SliderResponse { "value" => value, "text" => text });

/// `slider`: the visitor is asked for a value in a range.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SliderPrompt {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub min: Field<Num>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub max: Field<Num>,
    /// `"None"` in the example.
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub step: Field<Num>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub unit: Field<Map<String, Value>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(SliderPrompt { "title" => title, "min" => min, "max" => max, "step" => step, "unit" => unit });

/// `appointment_booking.response`: the visitor booked (or failed to).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AppointmentBookingResponse {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub event_id: Field<Id>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub is_booking_confirmed: Field<Flag>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub is_booking_failed: Field<Flag>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub event_name: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub visitor_timezone: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub variables: Field<Vec<Variable>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(AppointmentBookingResponse { "event_id" => event_id, "is_booking_confirmed" => is_booking_confirmed, "is_booking_failed" => is_booking_failed, "event_name" => event_name, "visitor_timezone" => visitor_timezone, "variables" => variables });

impl AppointmentBookingResponse {
    fn variable_text(&self, name: &str) -> Option<String> {
        self.variables
            .get()?
            .iter()
            .find(|v| v.display_name().as_deref() == Some(name))
            .and_then(|v| v.value.get())
            .map(crate::field::value_text)
            .filter(|s| !s.is_empty())
    }

    /// The booked slot as `Friday 01/09/2023 10:00`, from the variables.
    pub fn slot(&self) -> Option<String> {
        let parts: Vec<String> = [
            "param__gcal_selected_slot_day",
            "param__gcal_selected_slot_date",
            "param__gcal_selected_slot_time",
        ]
        .iter()
        .filter_map(|name| self.variable_text(name))
        .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// `button.response`: the button the visitor chose.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ButtonResponse {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub body: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub callback: Field<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(ButtonResponse { "body" => body, "callback" => callback });

/// `form.response`: the visitor's answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FormResponse {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub fields: Field<Vec<FormField>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(FormResponse { "fields" => fields });

/// `file_upload.response`: the file the visitor uploaded.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileUploadResponse {
    /// The kind of file (`image`, ...).
    #[serde(rename = "type", skip_serializing_if = "Field::is_missing")]
    pub kind: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub payload: Field<Media>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(FileUploadResponse { "type" => kind, "payload" => payload });

/// `appointment_booking`: the visitor is offered an appointment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AppointmentBooking {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub event_id: Field<Id>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub duration: Field<Duration>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub title: Field<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(AppointmentBooking { "event_id" => event_id, "duration" => duration, "title" => title });

/// `{label: "minutes", value: 30}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Duration {
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub label: Field<String>,
    #[serde(skip_serializing_if = "Field::is_missing")]
    pub value: Field<Num>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

lenient_struct!(Duration { "label" => label, "value" => value });

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
