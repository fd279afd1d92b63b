//! The component schemas of the OpenAPI document: request bodies as
//! strict as the server (`additionalProperties: false` where unknown keys
//! are refused) and every response shape (`crate::views`, the rules store,
//! the preview and the dry run).

use hookline_notifier::engine::{MAX_NAME_CHARS, MAX_RECIPIENTS};
use serde_json::{json, Map, Value};

use crate::params::NON_BLANK;

/// `{"type": "string"}`, nullable.
fn text_or_null() -> Value {
    json!({"type": "string", "nullable": true})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn time_or_null() -> Value {
    json!({"type": "string", "format": "date-time", "nullable": true})
}

fn integer_or_null() -> Value {
    json!({"type": "integer", "nullable": true})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `{"items": [NAME], "next_cursor": ...}`.
fn page(name: &str) -> Value {
    json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": reference(name)},
        "next_cursor": {"type": "string", "nullable": true, "description": "The cursor of the next page; null on the last page."},
    }})
}

fn rule(templates: &[String]) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "to", "template"],
        "description": "An event rule has on (and all/any); a timer rule has timer instead.",
        "properties": {
            "timer": {"nullable": true, "allOf": [reference("TimerSection")], "description": "Makes the rule a timer rule (null or absent: an event rule)."},
            "name": {"type": "string", "pattern": NON_BLANK, "maxLength": MAX_NAME_CHARS},
            "enabled": {"type": "boolean", "default": true},
            "on": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": NON_BLANK}, "description": "Event types (assignee_change, status, ...; * for all)."},
            "all": {"type": "array", "items": reference("Condition")},
            "any": {"type": "array", "items": reference("Condition")},
            "to": {"type": "array", "minItems": 1, "maxItems": MAX_RECIPIENTS, "items": {"type": "string", "pattern": "@|\\{\\{"}, "description": "Addresses or handlebars expressions such as {{payload.to.email}}."},
            "template": {"type": "string", "enum": templates},
            "throttle": {"type": "string", "nullable": true, "pattern": "^([0-9]+[smhd])+$", "description": "At most one email per (rule, conversation, recipient) in this window, e.g. 10m or 1h30m (at most 366d)."},
            "case_sensitive": {"type": "boolean", "default": false},
            "allow_visitor_recipients": {"type": "boolean", "default": false},
            "reply_to": {"type": "string", "nullable": true, "enum": ["visitor", null]},
            "id": {"type": "integer", "format": "int64", "nullable": true, "description": "Ignored; when replacing a rule, must be its own id."},
            "created_at": {"description": "Ignored (server-owned)."},
            "updated_at": {"description": "Ignored (server-owned)."},
        },
    })
}

/// A rule as stored: the rule's keys and the server's.
fn saved_rule(templates: &[String]) -> Value {
    let mut rule = rule(templates);
    rule["required"] = json!([
        "id",
        "name",
        "enabled",
        "to",
        "template",
        "created_at",
        "updated_at"
    ]);
    rule["properties"]["id"] = json!({"type": "integer", "format": "int64"});
    rule["properties"]["created_at"] = time();
    rule["properties"]["updated_at"] = time();
    // A rule stored before a template was removed still lists.
    rule["properties"]["template"] = json!({"type": "string"});
    rule
}

fn preview_range(with_rule: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "since": time_or_null(),
            "until": time_or_null(),
            "limit": {"type": "integer", "nullable": true, "minimum": 1, "maximum": super::super::preview::MAX_SCAN, "description": "Events to scan, newest first (default 1,000)."},
        },
    });
    if with_rule {
        schema["required"] = json!(["rule"]);
        schema["properties"]["rule"] = reference("Rule");
    }
    schema
}

pub fn all(templates: &[String]) -> Value {
    let mut schemas = Map::new();
    schemas.insert("Error".into(), json!({"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "description": "A stable code: invalid_parameter, not_found, unauthorized, ..."},
            "message": {"type": "string"},
        }}));
    schemas.insert("Event".into(), json!({"type": "object", "required": ["id", "type", "occurred_at", "received_at", "actor", "summary"], "properties": {
            "id": {"type": "integer", "format": "int64"},
            "type": {"type": "string"},
            "message_type": text_or_null(),
            "conversation_key": text_or_null(),
            "occurred_at": time(),
            "received_at": time(),
            "actor": {"type": "object", "required": ["type", "email"], "properties": {"type": text_or_null(), "email": text_or_null()}},
            "summary": {"type": "string"},
        }}));
    schemas.insert("EventDetail".into(), json!({"allOf": [reference("Event"), {"type": "object", "required": ["raw", "dedupe_key"], "properties": {
            "conversation_id": integer_or_null(),
            "account_id": integer_or_null(),
            "bot_id": integer_or_null(),
            "visitor_key": text_or_null(),
            "visitor_id": integer_or_null(),
            "dedupe_key": {"type": "string"},
            "raw": {"description": "The item as received (JSON)."},
        }}]}));
    schemas.insert("EventPage".into(), page("Event"));
    schemas.insert("EventFields".into(), json!({"type": "object", "required": ["event_id", "fields"], "properties": {
            "event_id": {"type": "integer", "format": "int64"},
            "note": {"type": "string"},
            "fields": {"type": "array", "items": {"type": "object", "required": ["path", "value"], "properties": {
                "path": {"type": "string"},
                "any_item": {"type": "string", "description": "For an item of a list, the path that tests any item."},
                "value": {},
            }}},
        }}));
    schemas.insert("Conversation".into(), json!({"type": "object", "required": ["key", "status", "first_event_at", "last_event_at", "message_count", "event_count", "visitor", "assignee"], "properties": {
            "key": {"type": "string"},
            "conversation_id": integer_or_null(),
            "account_id": integer_or_null(),
            "bot_id": integer_or_null(),
            "title": text_or_null(),
            "channel": text_or_null(),
            "conversation_url": text_or_null(),
            "visitor": {"type": "object", "properties": {"key": text_or_null(), "id": integer_or_null(), "name": text_or_null(), "email": text_or_null()}},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "assignee": {"type": "object", "properties": {"type": text_or_null(), "email": text_or_null()}},
            "created_at": time_or_null(),
            "first_event_at": time(),
            "last_event_at": time(),
            "closed_at": time_or_null(),
            "message_count": {"type": "integer"},
            "event_count": {"type": "integer"},
        }}));
    schemas.insert("ConversationPage".into(), page("Conversation"));
    schemas.insert("ConversationDetail".into(), json!({"type": "object", "required": ["conversation", "events", "notifications", "next_cursor"], "properties": {
            "conversation": reference("Conversation"),
            "events": {"type": "array", "items": reference("Event"), "description": "Oldest first."},
            "notifications": {"type": "array", "items": reference("Notification"), "description": "On the first page only."},
            "next_cursor": {"type": "string", "nullable": true},
        }}));
    schemas.insert("Notification".into(), json!({"type": "object", "required": ["id", "rule", "recipient", "template", "status", "attempts", "created_at", "updated_at"], "properties": {
            "id": {"type": "integer", "format": "int64"},
            "rule_id": integer_or_null(),
            "rule": {"type": "string"},
            "event_id": integer_or_null(),
            "conversation_key": text_or_null(),
            "recipient": {"type": "string"},
            "template": {"type": "string"},
            "status": {"type": "string", "enum": hookline_storage::notifications::STATUSES},
            "reason": text_or_null(),
            "attempts": {"type": "integer"},
            "next_attempt_at": time_or_null(),
            "last_error": text_or_null(),
            "smtp_response": text_or_null(),
            "subject": text_or_null(),
            "created_at": time(),
            "updated_at": time(),
            "sent_at": time_or_null(),
        }}));
    schemas.insert("NotificationPage".into(), page("Notification"));
    schemas.insert("Condition".into(), json!({"type": "object", "additionalProperties": false, "required": ["field", "op"], "properties": {
            "field": {"type": "string", "description": "A field path: payload.*, conversation.*, type, message_type, ..."},
            "op": {"type": "string", "enum": hookline_notifier::Op::NAMES},
            "value": {},
            "all_items": {"type": "boolean", "default": false},
        }}));
    schemas.insert("Trigger".into(), json!({"type": "object", "additionalProperties": false, "required": ["on"], "properties": {
            "on": {"type": "array", "items": {"type": "string", "pattern": NON_BLANK}, "minItems": 1},
            "all": {"type": "array", "items": reference("Condition")},
            "any": {"type": "array", "items": reference("Condition")},
        }}));
    schemas.insert("Calendar".into(), json!({"type": "object", "additionalProperties": false, "required": ["time_zone", "hours"], "properties": {
            "time_zone": {"type": "string", "description": "An IANA time zone, e.g. Europe/Berlin."},
            "hours": {"type": "object", "description": "Day (mon..sun) to ranges \"HH:MM-HH:MM\" (24:00 ends the day).", "additionalProperties": {"type": "array", "items": {"type": "string", "pattern": "^\\d\\d:\\d\\d-\\d\\d:\\d\\d$"}}},
            "holidays": {"type": "array", "items": {"type": "string", "format": "date"}},
        }}));
    schemas.insert("TimerSection".into(), json!({"type": "object", "additionalProperties": false, "required": ["start", "after"], "description": "Makes the rule a timer rule: it emails when no stop event follows a start event in time.", "properties": {
            "start": reference("Trigger"),
            "stop": {"type": "array", "items": reference("Trigger")},
            "after": {"type": "string", "description": "30s, 5m, 2h, 1d (at most 30 days)."},
            "clock": {"type": "string", "enum": ["wall", "business"], "default": "wall"},
            "calendar": {"oneOf": [super::directory::calendar_name(), reference("Calendar")]},
            "quiet_hours": {"oneOf": [super::directory::calendar_name(), reference("Calendar")]},
            "rearm": {"type": "string", "enum": ["keep_first", "restart"], "default": "keep_first"},
            "escalate": {"type": "array", "maxItems": 10, "items": {"type": "object", "additionalProperties": false, "required": ["at", "to"], "properties": {
                "at": {"type": "string"},
                "to": {"type": "array", "items": {"type": "string"}},
                "template": {"type": "string"},
            }}},
        }}));
    schemas.insert("Timer".into(), json!({"type": "object", "required": ["id", "rule_id", "rule", "conversation_key", "episode", "step", "status", "started_at", "due_at", "recipients", "template", "created_at", "updated_at"], "properties": {
            "id": {"type": "integer", "format": "int64"},
            "rule_id": {"type": "integer", "format": "int64"},
            "rule": {"type": "string"},
            "conversation_key": {"type": "string"},
            "episode": {"type": "integer", "description": "Counts the waits of this rule in this conversation, from 1."},
            "step": {"type": "integer", "description": "1: the first email; 2 and on: the escalations."},
            "status": {"type": "string", "enum": hookline_storage::timers::STATUSES},
            "started_at": time(),
            "due_at": time(),
            "event_id": {"type": "integer", "format": "int64", "nullable": true, "description": "The start event."},
            "recipients": {"type": "string", "description": "The step's recipients as the rule writes them."},
            "template": {"type": "string"},
            "fired_at": time_or_null(),
            "reason": text_or_null(),
            "created_at": time(),
            "updated_at": time(),
        }}));
    schemas.insert("TimerPage".into(), page("Timer"));
    overview(&mut schemas);
    super::directory::schemas(&mut schemas);
    schemas.insert("Rule".into(), rule(templates));
    schemas.insert("SavedRule".into(), saved_rule(templates));
    schemas.insert("RuleList".into(), json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": reference("SavedRule")}}}));
    schemas.insert("DryRun".into(), json!({"type": "object", "additionalProperties": false, "required": ["event"], "properties": {
            "event": {"description": "A delivery ({\"events\": [...]}), a list of items, or one item."},
            "rules": {"type": "array", "nullable": true, "items": reference("Rule")},
            "rule": {"nullable": true, "allOf": [reference("Rule")]},
            "conversation": {"type": "object", "nullable": true, "description": "conversation.* fields that override the state the events give."},
        }}));
    schemas.insert("DryRunResult".into(), json!({"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "items": {"type": "object", "required": ["index", "type", "summary", "rules"], "properties": {
            "index": {"type": "integer"},
            "type": {"type": "string"},
            "summary": {"type": "string"},
            "conversation": text_or_null(),
            "rules": {"type": "array", "items": {"type": "object", "required": ["rule", "fires", "emails"], "properties": {
                "rule": {"type": "string"},
                "fires": {"type": "boolean"},
                "failed": {"type": "string"},
                "emails": {"type": "array", "items": reference("EmailOutcome")},
            }}},
        }}},
        "timers": {"type": "array", "description": "Each enabled timer rule's waits replayed over the events, as if nothing else happened until now.", "items": {"type": "object", "required": ["rule", "summary", "emails", "answered", "waiting"], "properties": {
            "rule": {"type": "string"},
            "summary": {"type": "string"},
            "answered": {"type": "integer"},
            "waiting": {"type": "integer"},
            "emails": {"type": "array", "items": {"type": "object", "required": ["conversation", "step", "steps", "start_event", "started_at", "due_at", "at", "recipients"], "properties": {
                "conversation": {"type": "string"},
                "step": {"type": "integer"},
                "steps": {"type": "integer"},
                "start_event": {"type": "integer"},
                "started_at": {"type": "string"},
                "due_at": {"type": "string"},
                "at": {"type": "string"},
                "recipients": {"type": "array", "items": reference("EmailOutcome")},
            }}},
        }}},
    }}));
    schemas.insert(
        "EmailOutcome".into(),
        json!({"type": "object", "required": ["recipient", "decision"], "properties": {
            "recipient": {"type": "string"},
            "decision": {"type": "string", "enum": ["send", "skipped", "suppressed"]},
            "reason": {"type": "string"},
            "subject": {"type": "string"},
            "text": {"type": "string"},
            "template_error": {"type": "string"},
            "reply_to": {"type": "string"},
        }}),
    );
    schemas.insert("Preview".into(), preview_range(true));
    schemas.insert("SavedPreview".into(), preview_range(false));
    schemas.insert("PreviewResult".into(), json!({"type": "object", "required": ["rule", "scanned", "scan_limit", "fired_count", "emails", "not_fired_count", "fired", "not_fired"], "properties": {
            "rule": {"type": "string"},
            "scanned": {"type": "integer"},
            "scan_limit": {"type": "integer"},
            "fired_count": {"type": "integer"},
            "emails": {"type": "object", "required": ["send", "suppressed", "skipped"], "properties": {"send": {"type": "integer"}, "suppressed": {"type": "integer"}, "skipped": {"type": "integer"}}},
            "not_fired_count": {"type": "integer"},
            "fired": {"type": "array", "items": {"type": "object", "required": ["event", "recipients", "emails"], "properties": {
                "event": reference("Event"),
                "recipients": {"type": "array", "items": {"type": "string"}},
                "skipped_recipients": {"type": "array", "items": {"type": "string"}},
                "emails": {"type": "array", "items": {"type": "object", "required": ["recipient", "decision"], "properties": {
                    "recipient": {"type": "string"},
                    "decision": {"type": "string", "enum": ["send", "skipped", "suppressed"]},
                    "reason": text_or_null(),
                }}},
                "subject": text_or_null(),
                "subject_error": {"nullable": true},
                "timer": {"type": "object", "description": "A timer rule's email: which step of which wait, and when it would have gone.", "required": ["conversation", "step", "steps", "started_at", "due_at", "at"], "properties": {
                    "conversation": {"type": "string"},
                    "step": {"type": "integer", "minimum": 1},
                    "steps": {"type": "integer", "minimum": 1},
                    "started_at": time(),
                    "due_at": time(),
                    "at": time(),
                }},
            }}},
            "not_fired": {"type": "array", "items": {"type": "object", "required": ["event", "failed"], "properties": {
                "event": reference("Event"),
                "failed": {"type": "string"},
            }}},
            "complete": {"type": "boolean", "description": "False when the preview stopped early (its time limit); stopped_early says where."},
            "stopped_early": text_or_null(),
            "timer": {"type": "object", "description": "A timer rule's waits replayed over the events: fired (the emails above), answered in time (not_fired), still waiting.", "required": ["summary", "answered", "waiting"], "properties": {
                "summary": {"type": "string"},
                "answered": {"type": "integer"},
                "waiting": {"type": "integer"},
            }},
        }}));
    schemas.insert("EraseRequest".into(), json!({"type": "object", "additionalProperties": false, "required": ["visitor"], "properties": {
            "visitor": {"type": "string", "pattern": NON_BLANK, "description": "The visitor key."},
        }}));
    schemas.insert("Erased".into(), json!({"type": "object", "required": ["visitor", "deleted"], "properties": {
            "visitor": {"type": "string"},
            "deleted": {"type": "object", "required": ["events", "conversations", "notifications", "email_files"], "properties": {
                "events": {"type": "integer"},
                "conversations": {"type": "integer"},
                "notifications": {"type": "integer"},
                "email_files": {"type": "integer"},
            }},
        }}));
    Value::Object(schemas)
}

/// `Overview` (see `crate::overview::Overview`).
fn overview(schemas: &mut Map<String, Value>) {
    let count = || json!({"type": "integer", "format": "int64", "minimum": 0});
    let seconds = || json!({"type": "integer", "format": "int64", "minimum": 0, "nullable": true});
    schemas.insert("Overview".into(), json!({"type": "object", "required": ["window", "generated_at", "hours", "events", "events_total", "events_not_drawn", "handovers", "emails", "waiting_total", "waiting", "replies_since", "replies"], "properties": {
            "window": {"type": "string", "enum": ["24h", "7d"]},
            "generated_at": time(),
            "hours": {"type": "array", "items": time(), "description": "The start of each hour (UTC) of the window, oldest first."},
            "events": {"type": "array", "description": "Per event type, most events first: one count per hour of `hours`.", "items": {"type": "object", "required": ["event_type", "counts", "total"], "properties": {
                "event_type": {"type": "string"},
                "counts": {"type": "array", "items": count()},
                "total": count(),
            }}},
            "events_total": count(),
            "events_not_drawn": {"type": "integer", "format": "int64", "minimum": 0, "description": "Events of types hookline does not know (kept under their own name), or dated after this hour: in events_total, not in events."},
            "handovers": count(),
            "emails": {"type": "object", "description": "Emails created in the window, by their status now.", "required": ["sent", "failed", "dead", "pending", "not_sent"], "properties": {
                "sent": count(), "failed": count(), "dead": count(), "pending": count(), "not_sent": count(),
            }},
            "waiting_total": count(),
            "waiting": {"type": "array", "items": reference("Conversation"), "description": "Open conversations assigned to a bot or to nobody, oldest first (at most 20)."},
            "replies_since": time(),
            "replies": {"type": "array", "items": {"type": "object", "required": ["agent", "handovers", "answered", "answered_by_others", "unanswered", "median_seconds", "p90_seconds"], "properties": {
                "agent": {"type": "string"},
                "handovers": count(),
                "answered": count(),
                "answered_by_others": count(),
                "unanswered": count(),
                "median_seconds": seconds(),
                "p90_seconds": seconds(),
            }}},
        }}));
}
