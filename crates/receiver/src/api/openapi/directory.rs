//! The schemas of named calendars and recipients.

use serde_json::{json, Map, Value};

/// A shared calendar's name.
pub fn calendar_name() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^\\s/\\x00-\\x1f\\x7f]([^/\\x00-\\x1f\\x7f]*[^\\s/\\x00-\\x1f\\x7f])?$", "description": "A named calendar (GET /calendars)."})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `schema`, with null allowed too (the same as leaving the key out).
fn nullable(mut schema: Value) -> Value {
    schema["nullable"] = json!(true);
    schema
}

pub fn schemas(schemas: &mut Map<String, Value>) {
    let ranges = json!({"type": "array", "items": {"type": "string", "pattern": "^\\d\\d:\\d\\d-\\d\\d:\\d\\d$"}});
    let days: Map<String, Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .into_iter()
        .map(|day| (day.to_owned(), ranges.clone()))
        .collect();
    let hours = json!({"type": "object", "description": "Day (mon..sun) to ranges \"HH:MM-HH:MM\" (24:00 ends the day); days left out are closed.", "additionalProperties": false, "properties": days});
    let holidays = json!({"type": "array", "items": {"type": "string", "format": "date"}});
    schemas.insert("NamedCalendar".into(), json!({"type": "object", "additionalProperties": false, "required": ["time_zone", "hours"], "description": "A calendar; \"name\", when given, must be the path's.", "properties": {
        "name": nullable(calendar_name()),
        "time_zone": {"type": "string", "pattern": "^[^\\u0000]*$", "description": "An IANA time zone, e.g. Europe/Berlin."},
        "hours": hours,
        "holidays": holidays,
        "rules": {"type": "array", "items": {"type": "string"}, "description": "Shown by GET; ignored."},
        "recipients": {"type": "array", "items": {"type": "string"}, "description": "Shown by GET; ignored."},
    }}));
    schemas.insert("SavedCalendar".into(), json!({"type": "object", "required": ["name", "time_zone", "hours", "rules", "recipients"], "properties": {
        "name": {"type": "string"},
        "time_zone": {"type": "string"},
        "hours": hours,
        "holidays": holidays,
        "rules": {"type": "array", "items": {"type": "string"}, "description": "Rules whose timer.calendar or timer.quiet_hours name it."},
        "recipients": {"type": "array", "items": {"type": "string"}, "description": "Recipients whose quiet hours it is."},
    }}));
    schemas.insert("CalendarList".into(), json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": reference("SavedCalendar")}}}));
    let mut quiet = calendar_name();
    quiet["nullable"] = json!(true);
    quiet["description"] = json!(
        "A calendar's name: emails due inside its hours are held until they end; null: none."
    );
    schemas.insert(
        "RecipientBody".into(),
        json!({"type": "object", "additionalProperties": false, "properties": {
            "email": {"type": "string", "nullable": true, "pattern": "^[^\\u0000]*$", "description": "When given, must be the path's; null: left out."},
            "quiet_hours": quiet,
        }}),
    );
    schemas.insert(
        "Recipient".into(),
        json!({"type": "object", "required": ["email"], "properties": {
            "email": {"type": "string"},
            "quiet_hours": {"type": "string"},
        }}),
    );
    schemas.insert("RecipientList".into(), json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": reference("Recipient")}}}));
}
