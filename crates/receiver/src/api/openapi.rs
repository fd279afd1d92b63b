//! `GET /openapi.json`: the API described from the same parameter tables
//! the handlers validate with, so the document cannot drift from the code.

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use crate::params::{Kind, Param};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(document));
}

struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: &'static [Param],
    path_param: Option<&'static str>,
    body: Option<&'static str>,
}

const ROUTES: [Route; 18] = [
    Route {
        method: "post",
        path: "/erase",
        summary:
            "Delete everything stored about a visitor ({\"visitor\": KEY}); reports the counts.",
        params: &[],
        path_param: None,
        body: None,
    },
    Route {
        method: "get",
        path: "/events",
        summary: "Events, newest first, filtered and paged (keyset cursor).",
        params: &super::events::LIST_PARAMS,
        path_param: None,
        body: None,
    },
    Route {
        method: "get",
        path: "/events/{id}",
        summary: "One event with its raw JSON as received.",
        params: &[],
        path_param: Some("id"),
        body: None,
    },
    Route {
        method: "get",
        path: "/events/{id}/fields",
        summary: "Field browser: every field path and value rules see on the event (payload.*, conversation.*, derived fields; [*] paths for list items).",
        params: &[],
        path_param: Some("id"),
        body: None,
    },
    Route {
        method: "get",
        path: "/conversations",
        summary: "Conversations, most recently active first.",
        params: &super::conversations::LIST_PARAMS,
        path_param: None,
        body: None,
    },
    Route {
        method: "get",
        path: "/conversations/{key}",
        summary: "A conversation: its state, a page of its events oldest first (next_cursor: the next page; null on the last), and on the first page its notifications (up to 500).",
        params: &super::conversations::DETAIL_PARAMS,
        path_param: Some("key"),
        body: None,
    },
    Route {
        method: "get",
        path: "/notifications",
        summary: "The email log, newest first.",
        params: &super::notifications::LIST_PARAMS,
        path_param: None,
        body: None,
    },
    Route {
        method: "post",
        path: "/notifications/{id}/resend",
        summary: "Queue an email again.",
        params: &[],
        path_param: Some("id"),
        body: None,
    },
    Route {
        method: "get",
        path: "/rules",
        summary: "Every alert rule.",
        params: &[],
        path_param: None,
        body: None,
    },
    Route {
        method: "post",
        path: "/rules",
        summary: "Create a rule.",
        params: &[],
        path_param: None,
        body: Some("Rule"),
    },
    Route {
        method: "get",
        path: "/rules/{id}",
        summary: "One rule.",
        params: &[],
        path_param: Some("id"),
        body: None,
    },
    Route {
        method: "put",
        path: "/rules/{id}",
        summary: "Replace a rule.",
        params: &[],
        path_param: Some("id"),
        body: Some("Rule"),
    },
    Route {
        method: "delete",
        path: "/rules/{id}",
        summary: "Delete a rule.",
        params: &[],
        path_param: Some("id"),
        body: None,
    },
    Route {
        method: "post",
        path: "/rules/preview",
        summary: "What a draft rule would have done over stored events.",
        params: &[],
        path_param: None,
        body: Some("Preview"),
    },
    Route {
        method: "post",
        path: "/rules/test",
        summary: "Dry run: what rules (given, or the saved ones) would do with the events given; nothing is stored or sent.",
        params: &[],
        path_param: None,
        body: Some("DryRun"),
    },
    Route {
        method: "post",
        path: "/rules/{id}/preview",
        summary: "What a saved rule would have done over stored events (body optional: since, until, limit).",
        params: &[],
        path_param: Some("id"),
        body: Some("SavedPreview"),
    },
    Route {
        method: "get",
        path: "/timers",
        summary: "Time-based alerts (timer rules), newest first: one row per rule, conversation, episode and step.",
        params: &super::timers::LIST_PARAMS,
        path_param: None,
        body: None,
    },
    Route {
        method: "get",
        path: "/export",
        summary: "The filtered events as NDJSON or CSV, streamed.",
        params: &super::export::PARAMS,
        path_param: None,
        body: None,
    },
];

fn schema(kind: Kind) -> Value {
    match kind {
        Kind::Text | Kind::Cursor => json!({"type": "string"}),
        Kind::Integer => json!({"type": "integer", "format": "int64"}),
        Kind::Time => json!({"type": "string", "format": "date-time"}),
        Kind::Limit => {
            json!({"type": "integer", "minimum": 1, "maximum": crate::params::MAX_LIMIT, "default": crate::params::DEFAULT_LIMIT})
        }
        Kind::OneOf(values) => json!({"type": "string", "enum": values}),
    }
}

/// The OpenAPI 3.0 document.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in &ROUTES {
        let mut parameters: Vec<Value> = route
            .params
            .iter()
            .map(|p| json!({"name": p.name, "in": "query", "required": false, "description": p.description, "schema": schema(p.kind)}))
            .collect();
        if let Some(name) = route.path_param {
            parameters.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
        let mut operation = json!({
            "summary": route.summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK"},
                "400": {"description": "A bad parameter, named in the message", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "Missing or wrong admin token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "503": {"description": "Database unavailable; retry", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if let Some(body) = route.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method] = operation;
    }
    if let Some(ok) = paths.get_mut("/timers").and_then(|p| p.get_mut("get")) {
        ok["responses"]["200"] = json!({"description": "A page of timers", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TimerList"}}}});
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "hookline admin API", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The admin token (HOOKLINE_ADMIN_TOKEN)."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                "Condition": {"type": "object", "required": ["field", "op"], "properties": {"field": {"type": "string"}, "op": {"type": "string", "enum": ["eq", "ne", "in", "not_in", "contains", "starts_with", "matches", "exists", "missing", "gt", "gte", "lt", "lte"]}, "value": {}, "all_items": {"type": "boolean", "default": false}}},
                "Trigger": {"type": "object", "required": ["on"], "properties": {
                    "on": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "all": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
                    "any": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}}}},
                "Calendar": {"type": "object", "required": ["time_zone", "hours"], "properties": {
                    "time_zone": {"type": "string", "description": "An IANA time zone, e.g. Europe/Berlin."},
                    "hours": {"type": "object", "description": "Day (mon..sun) to ranges \"HH:MM-HH:MM\" (24:00 ends the day).", "additionalProperties": {"type": "array", "items": {"type": "string", "pattern": "^\\d\\d:\\d\\d-\\d\\d:\\d\\d$"}}},
                    "holidays": {"type": "array", "items": {"type": "string", "format": "date"}}}},
                "TimerSection": {"type": "object", "required": ["start", "after"], "description": "Makes the rule a timer rule: it emails when no stop event follows a start event in time.", "properties": {
                    "start": {"$ref": "#/components/schemas/Trigger"},
                    "stop": {"type": "array", "items": {"$ref": "#/components/schemas/Trigger"}},
                    "after": {"type": "string", "description": "30s, 5m, 2h, 1d (at most 30 days)."},
                    "clock": {"type": "string", "enum": ["wall", "business"], "default": "wall"},
                    "calendar": {"$ref": "#/components/schemas/Calendar"},
                    "quiet_hours": {"$ref": "#/components/schemas/Calendar"},
                    "rearm": {"type": "string", "enum": ["keep_first", "restart"], "default": "keep_first"},
                    "escalate": {"type": "array", "maxItems": 10, "items": {"type": "object", "required": ["at", "to"], "properties": {
                        "at": {"type": "string"}, "to": {"type": "array", "items": {"type": "string"}}, "template": {"type": "string"}}}}}},
                "Timer": {"type": "object", "required": ["id", "rule_id", "rule", "conversation_key", "episode", "step", "status", "started_at", "due_at", "recipients", "template", "created_at", "updated_at"], "properties": {
                    "id": {"type": "integer", "format": "int64"},
                    "rule_id": {"type": "integer", "format": "int64"},
                    "rule": {"type": "string"},
                    "conversation_key": {"type": "string"},
                    "episode": {"type": "integer", "description": "Counts the waits of this rule in this conversation, from 1."},
                    "step": {"type": "integer", "description": "1: the first email; 2 and on: the escalations."},
                    "status": {"type": "string", "enum": ["armed", "held", "firing", "fired", "cancelled", "missed"]},
                    "started_at": {"type": "string", "format": "date-time", "description": "Where the episode's clock starts (UTC)."},
                    "due_at": {"type": "string", "format": "date-time", "description": "When it fires (UTC; database clock)."},
                    "event_id": {"type": "integer", "format": "int64", "nullable": true, "description": "The start event."},
                    "recipients": {"type": "string", "description": "The step's recipients as the rule writes them."},
                    "template": {"type": "string"},
                    "fired_at": {"type": "string", "format": "date-time", "nullable": true},
                    "reason": {"type": "string", "nullable": true, "description": "Why it was cancelled, held or missed; what firing queued."},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"}}},
                "TimerList": {"type": "object", "required": ["items", "next_cursor"], "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Timer"}},
                    "next_cursor": {"type": "string", "nullable": true}}},
                "Rule": {"type": "object", "required": ["name", "to", "template"], "description": "An event rule has on (and all/any); a timer rule has timer instead.", "properties": {
                    "timer": {"$ref": "#/components/schemas/TimerSection"},
                    "name": {"type": "string"}, "enabled": {"type": "boolean", "default": true},
                    "on": {"type": "array", "items": {"type": "string"}},
                    "all": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
                    "any": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
                    "to": {"type": "array", "items": {"type": "string"}},
                    "template": {"type": "string"}, "throttle": {"type": "string"}, "case_sensitive": {"type": "boolean"}, "allow_visitor_recipients": {"type": "boolean"}, "reply_to": {"type": "string", "enum": ["visitor"]},
                    "id": {"type": "integer", "description": "Ignored; when replacing a rule, must be its own id."},
                    "created_at": {"description": "Ignored (server-owned)."}, "updated_at": {"description": "Ignored (server-owned)."}}},
                "DryRun": {"type": "object", "required": ["event"], "properties": {"event": {"description": "A delivery ({\"events\": [...]}), a list of items, or one item."}, "rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}}, "rule": {"$ref": "#/components/schemas/Rule"}, "conversation": {"type": "object", "description": "conversation.* fields that override the state the events give."}}},
                "SavedPreview": {"type": "object", "properties": {"since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"}, "limit": {"type": "integer", "minimum": 1, "maximum": super::preview::MAX_SCAN}}},
                "Preview": {"type": "object", "required": ["rule"], "properties": {"rule": {"$ref": "#/components/schemas/Rule"}, "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"}, "limit": {"type": "integer", "minimum": 1, "maximum": super::preview::MAX_SCAN}}},
            },
        },
    })
}

async fn document() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}
