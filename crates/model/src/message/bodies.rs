//! The payload types of each message type (`text`, `form`, `button`, ...).

use serde::de::MapAccess;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::field::{Field, Flag, Id, Num};
use crate::lenient::{lenient_struct, Key, Lenient};
use crate::variables::Variable;

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
