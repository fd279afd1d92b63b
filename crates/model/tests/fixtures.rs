//! Every documented Swiftsell payload parses to its typed variant,
//! round-trips without losing a field, and has a summary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use hookline_model::{summary, Envelope, Field, Item, MessageBody, Payload};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/swiftsell")
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixture_dir())
        .expect("fixture folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read fixture"))
        })
        .collect();
    files.sort();
    files
}

/// (file, event type, message type) for each documented example.
const EXPECTED: [(&str, &str, Option<&str>); 28] = [
    ("01-conversation_create.json", "conversation_create", None),
    ("02-message-text.json", "message", Some("text")),
    ("03-message-image.json", "message", Some("image")),
    ("04-message-form.json", "message", Some("form")),
    (
        "05-message-file_upload.json",
        "message",
        Some("file_upload"),
    ),
    ("06-message-calendar.json", "message", Some("calendar")),
    ("07-message-audio.json", "message", Some("audio")),
    (
        "08-message-calendly.json",
        "message",
        Some("calendly.response"),
    ),
    ("09-message-video.json", "message", Some("video")),
    ("10-message-list_whatsapp.json", "message", Some("list")),
    ("11-message-javascript.json", "message", Some("javascript")),
    ("12-message-button.json", "message", Some("button")),
    ("13-message-document.json", "message", Some("document")),
    ("14-message-carousel.json", "message", Some("carousel")),
    (
        "15-message-javascript_response.json",
        "message",
        Some("javascript.response"),
    ),
    (
        "16-message-slider_response.json",
        "message",
        Some("slider.response"),
    ),
    ("17-message-slider.json", "message", Some("slider")),
    (
        "18-message-appointment_booking_response.json",
        "message",
        Some("appointment_booking.response"),
    ),
    (
        "19-message-button_response.json",
        "message",
        Some("button.response"),
    ),
    (
        "20-message-form_response.json",
        "message",
        Some("form.response"),
    ),
    (
        "21-message-file_upload_response.json",
        "message",
        Some("file_upload.response"),
    ),
    (
        "22-message-appointment_booking.json",
        "message",
        Some("appointment_booking"),
    ),
    ("23-status.json", "status", None),
    ("24-assignee_change.json", "assignee_change", None),
    ("25-variables-text.json", "variables", None),
    ("26-variables-number.json", "variables", None),
    ("27-conversation_labels.json", "conversation_labels", None),
    ("28-note.json", "note", None),
];

fn only_item(bytes: &[u8]) -> Item {
    let envelope = Envelope::parse(bytes).expect("fixture is an envelope");
    assert_eq!(envelope.events.len(), 1);
    match envelope.events.into_iter().next() {
        Some(Field::Typed(item)) => item,
        other => panic!("item did not parse as a frame: {other:?}"),
    }
}

/// The variant name the typed payload parsed into.
fn variant(item: &Item) -> String {
    let event = item.event.get().expect("typed event");
    match &event.payload {
        Payload::ConversationCreate(_) => "conversation_create".into(),
        Payload::Status(_) => "status".into(),
        Payload::AssigneeChange(_) => "assignee_change".into(),
        Payload::Variables(_) => "variables".into(),
        Payload::ConversationLabels(_) => "conversation_labels".into(),
        Payload::Note(_) => "note".into(),
        Payload::Unknown(_) => "UNKNOWN".into(),
        Payload::Message(m) => {
            let message = m.message.get().expect("typed message");
            let kind = match &message.body {
                MessageBody::Text(_) => "text",
                MessageBody::Image(_) => "image",
                MessageBody::Audio(_) => "audio",
                MessageBody::Video(_) => "video",
                MessageBody::Document(_) => "document",
                MessageBody::Form(_) => "form",
                MessageBody::FileUpload(_) => "file_upload",
                MessageBody::Calendar(_) => "calendar",
                MessageBody::CalendlyResponse(_) => "calendly.response",
                MessageBody::List(_) => "list",
                MessageBody::Javascript(_) => "javascript",
                MessageBody::Button(_) => "button",
                MessageBody::Carousel(_) => "carousel",
                MessageBody::JavascriptResponse(_) => "javascript.response",
                MessageBody::SliderResponse(_) => "slider.response",
                MessageBody::Slider(_) => "slider",
                MessageBody::AppointmentBookingResponse(_) => "appointment_booking.response",
                MessageBody::ButtonResponse(_) => "button.response",
                MessageBody::FormResponse(_) => "form.response",
                MessageBody::FileUploadResponse(_) => "file_upload.response",
                MessageBody::AppointmentBooking(_) => "appointment_booking",
                MessageBody::Unknown(_) => "UNKNOWN",
            };
            format!("message/{kind}")
        }
    }
}

#[test]
fn there_are_28_fixtures_and_each_is_expected() {
    let names: Vec<String> = fixtures().into_iter().map(|(name, _)| name).collect();
    let expected: Vec<String> = EXPECTED.iter().map(|(f, _, _)| f.to_string()).collect();
    assert_eq!(names, expected);
}

#[test]
fn fixtures_match_the_shared_originals_byte_for_byte() {
    let shared =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/swiftsell");
    if !shared.is_dir() {
        eprintln!(
            "notice: {} not found; skipping the byte comparison",
            shared.display()
        );
        return;
    }
    for (name, bytes) in fixtures() {
        let original = std::fs::read(shared.join(&name)).expect("shared fixture");
        assert_eq!(bytes, original, "{name} differs from the shared original");
    }
}

#[test]
fn every_fixture_parses_to_its_typed_variant() {
    for (name, bytes) in fixtures() {
        let (_, event_type, message_type) = EXPECTED
            .iter()
            .find(|(f, _, _)| *f == name)
            .expect("listed");
        let item = only_item(&bytes);
        let want = match message_type {
            Some(m) => format!("message/{m}"),
            None => event_type.to_string(),
        };
        assert_eq!(variant(&item), want, "{name}");
        assert_eq!(item.event_type(), *event_type, "{name}");
        assert_eq!(item.message_type(), *message_type, "{name}");
    }
}

#[test]
fn every_fixture_round_trips_without_losing_a_field() {
    for (name, bytes) in fixtures() {
        let original: Value = serde_json::from_slice(&bytes).expect("json");
        let item = only_item(&bytes);
        let back = serde_json::to_value(&item).expect("serialise");
        assert_eq!(back, original["events"][0], "{name}");
        let envelope = Envelope::parse(&bytes).expect("envelope");
        assert_eq!(
            serde_json::to_value(&envelope).expect("serialise"),
            original,
            "{name}"
        );
    }
}

#[test]
fn every_fixture_has_a_one_line_summary() {
    for (name, bytes) in fixtures() {
        let envelope = Envelope::parse(&bytes).expect("envelope");
        let line = summary(&envelope.events[0]);
        assert!(!line.trim().is_empty(), "{name}");
        assert!(!line.contains('\n'), "{name}: {line}");
        println!("{name}: {line}");
    }
}

#[test]
fn frame_fields_are_read() {
    let bytes = &fixtures()[0].1;
    let item = only_item(bytes);
    assert_eq!(
        item.conversation_key(),
        Some("42bb83f00d8240e5bb41290a12eb44401693552452")
    );
    assert_eq!(item.conversation_id(), Some(7525695));
    assert_eq!(item.account_id(), Some(476));
    assert_eq!(item.bot_id(), Some(8861));
    assert_eq!(item.visitor_key(), Some("a569015fa03d41a283ed4c66c4601966"));
    assert_eq!(item.visitor_id(), Some(826373));
    assert_eq!(
        item.occurred_at().map(|t| t.to_rfc3339()),
        Some("2023-09-01T14:13:32.141788+00:00".to_owned())
    );
}

#[test]
fn summaries_read_like_the_documented_examples() {
    let line = |name: &str| {
        let bytes = std::fs::read(fixture_dir().join(name)).unwrap();
        summary(&Envelope::parse(&bytes).unwrap().events[0])
    };
    assert_eq!(line("02-message-text.json"), "visitor: Hiiiii");
    assert_eq!(
        line("03-message-image.json"),
        "agent himanshu@swiftsell.biz sent image photo-1579353977828-2a4eab540b9a.jpeg"
    );
    assert_eq!(
        line("04-message-form.json"),
        "agent himanshu@swiftsell.biz asked for a form: Name, Email, Phone"
    );
    assert_eq!(
        line("10-message-list_whatsapp.json"),
        "agent himanshu@swiftsell.biz sent a list \"What would you like to choose?\": Item 1, Item 2"
    );
    assert_eq!(
        line("12-message-button.json"),
        "agent himanshu@swiftsell.biz offered buttons \"What would you like to choose?\": [Button 1 | Button 2 | Button 3]"
    );
    assert_eq!(
        line("19-message-button_response.json"),
        "visitor chose \"Button 1\""
    );
    assert_eq!(
        line("20-message-form_response.json"),
        "visitor filled form: Name=abc, Email=abc@gmail.com, Phone=+916767667676"
    );
    assert_eq!(
        line("23-status.json"),
        "conversation closed by himanshu@swiftsell.biz"
    );
    assert_eq!(
        line("24-assignee_change.json"),
        "handed over from bot seq_user@swiftsell.biz to agent himanshu@swiftsell.biz"
    );
}

#[test]
fn a_button_callback_holding_json_is_readable() {
    let bytes = std::fs::read(fixture_dir().join("12-message-button.json")).unwrap();
    let item = only_item(&bytes);
    let Some(Payload::Message(m)) = item.event.get().map(|e| &e.payload) else {
        panic!("not a message");
    };
    let MessageBody::Button(b) = &m.message.get().unwrap().body else {
        panic!("not buttons");
    };
    let buttons = b.payload.get().unwrap().buttons.get().unwrap();
    assert_eq!(buttons[0].callback_json(), None, "an empty callback");
    assert_eq!(
        buttons[1].callback_json().unwrap()["web_url"],
        "https://www.google.com"
    );
}

/// Only the handover names an agent to wait a reply from: its target when
/// that is an agent (`type: user`); nobody when it goes to a bot or to no
/// one; no answer at all for other events.
#[test]
fn a_handover_names_the_agent_it_went_to() {
    let mut with_agent = 0;
    for (name, bytes) in fixtures() {
        let item = only_item(&bytes);
        let expected =
            (name == "24-assignee_change.json").then_some(Some("himanshu@swiftsell.biz"));
        assert_eq!(item.handover_to_agent(), expected, "{name}");
        with_agent += usize::from(expected.is_some());
    }
    assert_eq!(with_agent, 1);
    let mut value: Value = serde_json::from_slice(
        &std::fs::read(fixture_dir().join("24-assignee_change.json")).unwrap(),
    )
    .unwrap();
    value["events"][0]["event"]["payload"]["to"]["type"] = "bot".into();
    let to_bot = only_item(&serde_json::to_vec(&value).unwrap());
    assert_eq!(to_bot.handover_to_agent(), Some(None));
    value["events"][0]["event"]["payload"]["to"] = Value::Null;
    let to_nobody = only_item(&serde_json::to_vec(&value).unwrap());
    assert_eq!(to_nobody.handover_to_agent(), Some(None));
}
