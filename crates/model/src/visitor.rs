//! What the visitor told us: variables and form answers, and the one rule
//! that picks their name and email out of them.

use crate::field::value_text;
use crate::variables::{normalize_name, Variable};
use crate::{MessageBody, Payload};

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A variable of `conversation_create` or `variables`.
    Variable,
    /// A field of a `form.response` message.
    Form,
    /// A variable of an `appointment_booking.response` message.
    Booking,
}

/// One thing an event says the visitor told: a variable or a form answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer<'a> {
    pub source: Source,
    /// A form field's label (forms only).
    pub label: Option<&'a str>,
    /// The variable's name without placeholder markers.
    pub variable: Option<&'a str>,
    /// A form field's type (`email`, ...).
    pub kind: Option<&'a str>,
    /// The value as text; `None` when absent.
    pub value: Option<String>,
}

impl Answer<'_> {
    /// The name shown for it: the label, else the variable, else `?`
    /// (forms); the variable's name (variables).
    pub fn name(&self) -> Option<String> {
        match self.source {
            Source::Form => Some(self.label.or(self.variable).unwrap_or("?").to_owned()),
            _ => self.variable.map(str::to_owned),
        }
    }
}

fn variable_answers<'a>(
    variables: Option<&'a Vec<Variable>>,
    source: Source,
    out: &mut Vec<Answer<'a>>,
) {
    for variable in variables.into_iter().flatten() {
        out.push(Answer {
            source,
            label: None,
            variable: variable.name.get().map(|n| normalize_name(n)),
            kind: None,
            value: variable.value.get().map(value_text),
        });
    }
}

/// Everything a payload says the visitor told, in the order sent.
pub fn answers(payload: &Payload) -> Vec<Answer<'_>> {
    let mut out = Vec::new();
    match payload {
        Payload::ConversationCreate(p) => {
            variable_answers(p.variables.get(), Source::Variable, &mut out)
        }
        Payload::Variables(p) => variable_answers(p.variables.get(), Source::Variable, &mut out),
        Payload::Message(m) => match m.message.get().map(|m| &m.body) {
            Some(MessageBody::FormResponse(form)) => {
                for field in form
                    .payload
                    .get()
                    .and_then(|f| f.fields.get())
                    .into_iter()
                    .flatten()
                {
                    out.push(Answer {
                        source: Source::Form,
                        label: field.label.text(),
                        variable: field.variable.text().map(normalize_name),
                        kind: field.kind.text(),
                        value: field.value.get().map(value_text),
                    });
                }
            }
            Some(MessageBody::AppointmentBookingResponse(booking)) => variable_answers(
                booking.payload.get().and_then(|b| b.variables.get()),
                Source::Booking,
                &mut out,
            ),
            _ => {}
        },
        _ => {}
    }
    out
}

/// The visitor's name and email, picked out of answers by their names
/// (`visitor_name`, `$user.info.email`, a field labelled "Email" or of
/// type `email`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VisitorDetails {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl VisitorDetails {
    pub fn from_answers(answers: &[Answer<'_>]) -> VisitorDetails {
        let mut details = VisitorDetails::default();
        for answer in answers {
            let names = [
                answer.label.unwrap_or_default(),
                answer.variable.unwrap_or_default(),
                answer.kind.unwrap_or_default(),
            ];
            details.offer(&names, answer.value.as_deref());
        }
        details
    }

    fn offer(&mut self, names: &[&str], value: Option<&str>) {
        let Some(value) = value
            .map(|v| v.trim().replace('\0', ""))
            .filter(|v| !v.is_empty())
        else {
            return;
        };
        let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let is_email = names.iter().any(|n| n.contains("email") || n == "e-mail");
        let is_name = names.iter().any(|n| {
            matches!(
                n.as_str(),
                "name" | "visitor_name" | "full_name" | "fullname" | "contact_name"
            ) || n.ends_with(".name")
        });
        if is_email && value.contains('@') {
            self.email = Some(value);
        } else if is_name && self.name.is_none() {
            self.name = Some(value);
        }
    }
}

/// Names the platform sets that say nothing about the visitor.
const TECHNICAL: [&str; 12] = [
    "bot_name",
    "referrer_url",
    "timezone",
    "os",
    "browser_language",
    "browser",
    "ip_address",
    "global_channel_name",
    "conversation_created_at",
    "conversation_url",
    "source_url",
    "visitor_contact_created_by",
];

/// What the visitor told over several events (oldest first), as shown in
/// emails and on the conversation page: variables and form answers, the
/// newest value per name, in the order first seen; technical variables
/// left out.
pub fn told<'a>(payloads: impl Iterator<Item = &'a Payload>) -> Vec<(String, String)> {
    let mut details: Vec<(String, String)> = Vec::new();
    for payload in payloads {
        for answer in answers(payload) {
            let (name, value) = match answer.source {
                Source::Booking => continue,
                Source::Variable => match (answer.name(), answer.value) {
                    (Some(name), Some(value)) => (name, value),
                    _ => continue,
                },
                Source::Form => (
                    answer.name().unwrap_or_default(),
                    answer.value.unwrap_or_default(),
                ),
            };
            if value.trim().is_empty() || TECHNICAL.contains(&name.as_str()) || name == "contact_id"
            {
                continue;
            }
            match details.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = value,
                None => details.push((name, value)),
            }
        }
    }
    details
}
