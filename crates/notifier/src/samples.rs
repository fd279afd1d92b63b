//! The 28 Swiftsell sample deliveries (`tests/fixtures/swiftsell/`), shipped
//! in the binary: templates are checked against them, and operators can
//! render or dry-run against them by name.

/// (file name, JSON) of every sample, in order.
pub const SAMPLES: [(&str, &str); 28] = [
    (
        "01-conversation_create.json",
        include_str!("../../../tests/fixtures/swiftsell/01-conversation_create.json"),
    ),
    (
        "02-message-text.json",
        include_str!("../../../tests/fixtures/swiftsell/02-message-text.json"),
    ),
    (
        "03-message-image.json",
        include_str!("../../../tests/fixtures/swiftsell/03-message-image.json"),
    ),
    (
        "04-message-form.json",
        include_str!("../../../tests/fixtures/swiftsell/04-message-form.json"),
    ),
    (
        "05-message-file_upload.json",
        include_str!("../../../tests/fixtures/swiftsell/05-message-file_upload.json"),
    ),
    (
        "06-message-calendar.json",
        include_str!("../../../tests/fixtures/swiftsell/06-message-calendar.json"),
    ),
    (
        "07-message-audio.json",
        include_str!("../../../tests/fixtures/swiftsell/07-message-audio.json"),
    ),
    (
        "08-message-calendly.json",
        include_str!("../../../tests/fixtures/swiftsell/08-message-calendly.json"),
    ),
    (
        "09-message-video.json",
        include_str!("../../../tests/fixtures/swiftsell/09-message-video.json"),
    ),
    (
        "10-message-list_whatsapp.json",
        include_str!("../../../tests/fixtures/swiftsell/10-message-list_whatsapp.json"),
    ),
    (
        "11-message-javascript.json",
        include_str!("../../../tests/fixtures/swiftsell/11-message-javascript.json"),
    ),
    (
        "12-message-button.json",
        include_str!("../../../tests/fixtures/swiftsell/12-message-button.json"),
    ),
    (
        "13-message-document.json",
        include_str!("../../../tests/fixtures/swiftsell/13-message-document.json"),
    ),
    (
        "14-message-carousel.json",
        include_str!("../../../tests/fixtures/swiftsell/14-message-carousel.json"),
    ),
    (
        "15-message-javascript_response.json",
        include_str!("../../../tests/fixtures/swiftsell/15-message-javascript_response.json"),
    ),
    (
        "16-message-slider_response.json",
        include_str!("../../../tests/fixtures/swiftsell/16-message-slider_response.json"),
    ),
    (
        "17-message-slider.json",
        include_str!("../../../tests/fixtures/swiftsell/17-message-slider.json"),
    ),
    (
        "18-message-appointment_booking_response.json",
        include_str!(
            "../../../tests/fixtures/swiftsell/18-message-appointment_booking_response.json"
        ),
    ),
    (
        "19-message-button_response.json",
        include_str!("../../../tests/fixtures/swiftsell/19-message-button_response.json"),
    ),
    (
        "20-message-form_response.json",
        include_str!("../../../tests/fixtures/swiftsell/20-message-form_response.json"),
    ),
    (
        "21-message-file_upload_response.json",
        include_str!("../../../tests/fixtures/swiftsell/21-message-file_upload_response.json"),
    ),
    (
        "22-message-appointment_booking.json",
        include_str!("../../../tests/fixtures/swiftsell/22-message-appointment_booking.json"),
    ),
    (
        "23-status.json",
        include_str!("../../../tests/fixtures/swiftsell/23-status.json"),
    ),
    (
        "24-assignee_change.json",
        include_str!("../../../tests/fixtures/swiftsell/24-assignee_change.json"),
    ),
    (
        "25-variables-text.json",
        include_str!("../../../tests/fixtures/swiftsell/25-variables-text.json"),
    ),
    (
        "26-variables-number.json",
        include_str!("../../../tests/fixtures/swiftsell/26-variables-number.json"),
    ),
    (
        "27-conversation_labels.json",
        include_str!("../../../tests/fixtures/swiftsell/27-conversation_labels.json"),
    ),
    (
        "28-note.json",
        include_str!("../../../tests/fixtures/swiftsell/28-note.json"),
    ),
];

/// The sample named `name` (with or without `.json`, or by its number:
/// `24`, `24-assignee_change`).
pub fn sample(name: &str) -> Option<&'static str> {
    let name = name.trim_end_matches(".json");
    SAMPLES
        .iter()
        .find(|(file, _)| {
            let stem = file.trim_end_matches(".json");
            stem == name
                || stem
                    .split_once('-')
                    .is_some_and(|(number, _)| number == name)
        })
        .map(|(_, json)| *json)
}
