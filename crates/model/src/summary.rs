//! One line of human text for any event.

use serde_json::Value;

use crate::actor::{label_of, Actor};
use crate::event::{Event, Payload};
use crate::field::{value_text, Field};
use crate::item::Item;
use crate::message::{Message, MessageBody};
use crate::variables::{normalize_name, Variable};

/// Longest piece of payload text quoted in a summary, in characters.
const MAX_QUOTE: usize = 160;

/// One line describing an item, for lists, emails and search. Never empty.
pub fn summary(item: &Field<Item>) -> String {
    match item.get() {
        Some(item) => item.summary(),
        None => "unrecognized item (not an object)".to_owned(),
    }
}

impl Item {
    /// One line describing the event. Never empty, never multi-line.
    pub fn summary(&self) -> String {
        let text = match self.event.get() {
            Some(event) => event.summary(),
            None => "unrecognized item (no event type)".to_owned(),
        };
        one_line(&text)
    }
}

impl Event {
    /// One line describing the event (see [`Item::summary`]).
    pub fn summary(&self) -> String {
        match &self.payload {
            Payload::ConversationCreate(p) => {
                let mut parts = Vec::new();
                if let Some(name) = p.variable_text("visitor_name") {
                    parts.push(format!("visitor {}", quote(name)));
                }
                if let Some(channel) = p.channel_name() {
                    parts.push(format!("on {channel}"));
                }
                if let Some(actor) = p.assigned_to_user.get() {
                    parts.push(format!("assigned to {}", actor.label()));
                }
                let title = p
                    .title
                    .text()
                    .map(|t| format!(" \"{}\"", quote(t)))
                    .unwrap_or_default();
                if parts.is_empty() {
                    format!("conversation{title} started")
                } else {
                    format!("conversation{title} started: {}", parts.join(", "))
                }
            }
            Payload::Message(p) => {
                let sender = label_of(&p.message_by);
                match p.message.get() {
                    Some(message) => message_summary(&sender, message),
                    None => format!("{sender} sent a message"),
                }
            }
            Payload::Status(p) => {
                let by = p.closed_by.get().map(Actor::who);
                let status = p.status.text().unwrap_or("changed");
                match (p.is_close(), by) {
                    (true, Some(by)) => format!("conversation closed by {by}"),
                    (true, None) => "conversation closed".to_owned(),
                    (false, Some(by)) => format!("conversation status set to {status} by {by}"),
                    (false, None) => format!("conversation status set to {status}"),
                }
            }
            Payload::AssigneeChange(p) => {
                let from = p.from.get().map(Actor::label);
                let to = p.to.get().map(Actor::label);
                let by = p
                    .changed_by
                    .get()
                    .filter(|by| {
                        by.email().is_some() && by.email() != p.to.get().and_then(Actor::email)
                    })
                    .map(|by| format!(" by {}", by.who()))
                    .unwrap_or_default();
                match (from, to) {
                    (Some(from), Some(to)) => format!("handed over from {from} to {to}{by}"),
                    (None, Some(to)) => format!("assigned to {to}{by}"),
                    (Some(from), None) => format!("unassigned from {from}{by}"),
                    (None, None) => format!("assignee changed{by}"),
                }
            }
            Payload::Variables(p) => {
                let who = label_of(&p.action_performed_by);
                match p.variables.get() {
                    Some(vars) if !vars.is_empty() => {
                        format!("{who} set {}", variable_list(vars))
                    }
                    _ => format!("{who} changed variables"),
                }
            }
            Payload::ConversationLabels(p) => {
                let who = label_of(&p.action_performed_by);
                let action = p.action.text().unwrap_or("changed");
                let labels: Vec<String> = p
                    .labels
                    .get()
                    .map(|labels| {
                        labels
                            .iter()
                            .filter_map(|l| l.id.get().map(|id| id.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                match labels.len() {
                    0 => format!("{who} {action} labels"),
                    1 => format!("{who} {action} label {}", labels.join("")),
                    _ => format!("{who} {action} labels {}", labels.join(", ")),
                }
            }
            Payload::Note(p) => {
                let who = label_of(&p.note_by);
                match p.note.text() {
                    Some(note) => format!("{who} added a note: {}", quote(note)),
                    None => format!("{who} added a note"),
                }
            }
            Payload::Unknown(_) if self.is_known_type() => {
                format!("{} event with an unreadable payload", self.type_name)
            }
            Payload::Unknown(_) => format!(
                "{} event (type unknown to hookline)",
                quote(&self.type_name)
            ),
        }
    }

    fn is_known_type(&self) -> bool {
        crate::EVENT_TYPES.contains(&self.type_name.as_str())
    }
}

fn message_summary(sender: &str, message: &Message) -> String {
    use MessageBody as B;
    let title = |t: &Field<String>| {
        t.text()
            .map(|t| format!(" \"{}\"", quote(t)))
            .unwrap_or_default()
    };
    match &message.body {
        B::Text(b) => format!("{sender}: {}", quote(b.text.text().unwrap_or("(empty)"))),
        B::Image(_) | B::Audio(_) | B::Video(_) | B::Document(_) => {
            let name = message
                .media()
                .and_then(|m| m.file_name.text().or(m.link.text()))
                .map(quote)
                .unwrap_or_else(|| "a file".to_owned());
            format!("{sender} sent {} {name}", message.type_name)
        }
        B::Form(b) => {
            let labels: Vec<&str> = b
                .payload
                .get()
                .map(|p| {
                    p.field_list()
                        .iter()
                        .filter_map(|f| f.label.text())
                        .collect()
                })
                .unwrap_or_default();
            format!("{sender} asked for a form: {}", labels.join(", "))
        }
        B::FileUpload(b) => {
            let t = b.payload.get().map(|p| title(&p.title)).unwrap_or_default();
            format!("{sender} asked for a file upload{t}")
        }
        B::Calendar(b) => {
            let t = b.payload.get().map(|p| title(&p.title)).unwrap_or_default();
            format!("{sender} asked for a date{t}")
        }
        B::CalendlyResponse(b) => {
            let scheduled = b
                .payload
                .get()
                .and_then(|p| p.variables.get())
                .and_then(|vars| {
                    vars.iter()
                        .find(|(k, _)| normalize_name(k) == "is_calendly_event_scheduled")
                })
                .map(|(_, v)| v == &Value::Bool(true));
            match scheduled {
                Some(true) => format!("{sender} scheduled a Calendly event"),
                Some(false) => format!("{sender} did not schedule a Calendly event"),
                None => format!("{sender} answered a Calendly prompt"),
            }
        }
        B::List(b) => {
            let p = b.payload.get();
            let t = p.map(|p| title(&p.title)).unwrap_or_default();
            let items = p.map(|p| p.item_titles()).unwrap_or_default();
            format!("{sender} sent a list{t}: {}", items.join(", "))
        }
        B::Javascript(b) => {
            let at = b
                .payload
                .get()
                .and_then(|p| p.execute_at.text())
                .map(|at| format!(" on the {at}"))
                .unwrap_or_default();
            format!("{sender} ran a script{at}")
        }
        B::Button(b) => {
            let p = b.payload.get();
            let t = p.map(|p| title(&p.title)).unwrap_or_default();
            let buttons: Vec<String> = p
                .map(|p| p.titles().into_iter().map(quote).collect())
                .unwrap_or_default();
            format!("{sender} offered buttons{t}: [{}]", buttons.join(" | "))
        }
        B::Carousel(b) => {
            let p = b.payload.get();
            let t = p.map(|p| title(&p.title)).unwrap_or_default();
            let n = p.and_then(|p| p.items.get()).map(Vec::len).unwrap_or(0);
            let plural = if n == 1 { "" } else { "s" };
            format!("{sender} sent a carousel{t} ({n} card{plural})")
        }
        B::JavascriptResponse(b) => {
            let vars = b
                .payload
                .get()
                .and_then(|p| p.variables.get())
                .map(|vars| {
                    vars.iter()
                        .map(|(k, v)| format!("{}={}", normalize_name(k), quote(&value_text(v))))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("{sender}'s script set {vars}")
        }
        B::SliderResponse(b) => {
            let value = b
                .payload
                .get()
                .and_then(|p| {
                    p.text
                        .text()
                        .map(str::to_owned)
                        .or(p.value.get().map(|v| v.to_string()))
                })
                .unwrap_or_else(|| "a value".to_owned());
            format!("{sender} chose {}", quote(&value))
        }
        B::Slider(b) => {
            let p = b.payload.get();
            let t = p.map(|p| title(&p.title)).unwrap_or_default();
            let range = p
                .and_then(|p| Some((p.min.get()?, p.max.get()?)))
                .map(|(min, max)| format!(" between {min} and {max}"))
                .unwrap_or_default();
            format!("{sender} asked for a value{range}{t}")
        }
        B::AppointmentBookingResponse(b) => {
            let p = b.payload.get();
            let name = p.map(|p| title(&p.event_name)).unwrap_or_default();
            let slot = p
                .and_then(|p| p.slot())
                .map(|s| format!(" for {s}"))
                .unwrap_or_default();
            let confirmed = p
                .and_then(|p| p.is_booking_confirmed.get())
                .and_then(|f| f.as_bool());
            let failed = p
                .and_then(|p| p.is_booking_failed.get())
                .and_then(|f| f.as_bool());
            if failed == Some(true) || confirmed == Some(false) {
                format!("{sender} failed to book appointment{name}{slot}")
            } else {
                format!("{sender} booked appointment{name}{slot}")
            }
        }
        B::ButtonResponse(b) => {
            let body = b
                .payload
                .get()
                .and_then(|p| p.body.text())
                .unwrap_or("a button");
            format!("{sender} chose \"{}\"", quote(body))
        }
        B::FormResponse(b) => {
            let answers: Vec<String> = b
                .payload
                .get()
                .map(|p| p.answers())
                .unwrap_or_default()
                .iter()
                .map(|(name, answer)| format!("{name}={}", quote(answer)))
                .collect();
            format!("{sender} filled form: {}", answers.join(", "))
        }
        B::FileUploadResponse(_) => {
            let kind = match &message.body {
                B::FileUploadResponse(b) => b.payload.get().and_then(|p| p.kind.text()),
                _ => None,
            }
            .unwrap_or("file");
            let name = message
                .media()
                .and_then(|m| m.file_name.text().or(m.link.text()))
                .map(|n| format!(" {}", quote(n)))
                .unwrap_or_default();
            format!("{sender} uploaded {kind}{name}")
        }
        B::AppointmentBooking(b) => {
            let p = b.payload.get();
            let t = p.map(|p| title(&p.title)).unwrap_or_default();
            let duration = p
                .and_then(|p| p.duration.get())
                .and_then(|d| {
                    let value = d.value.get()?;
                    Some(format!(" ({value} {})", d.label.text().unwrap_or("")))
                })
                .map(|d| d.replace(" )", ")"))
                .unwrap_or_default();
            format!("{sender} offered an appointment{t}{duration}")
        }
        B::Unknown(_) => format!("{sender} sent a {} message", quote(&message.type_name)),
    }
}

fn variable_list(vars: &[Variable]) -> String {
    vars.iter()
        .map(|v| {
            let name = v.display_name().unwrap_or_else(|| "?".to_owned());
            let value = v.value.get().map(value_text).unwrap_or_default();
            format!("{name}={}", quote(&value))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shortens payload text for a summary, on a character boundary.
fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_QUOTE).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// Collapses whitespace runs, newlines included, into single spaces.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "event".to_owned()
    } else {
        line
    }
}
