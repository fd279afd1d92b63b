//! `GET /openapi.json`: the API described from the same parameter tables
//! the handlers validate with, so the document cannot drift from the code.
//! Every operation lists its success response with a schema and each error
//! status it can answer; `tests/e2e/contract.rs` runs Schemathesis against
//! the real server with this document.

mod directory;
mod schemas;

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use crate::params::{Kind, Param, MAX_CURSOR_HEX, NON_BLANK, WORDS};
use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/openapi.json").get(document));
}

/// What a path parameter holds.
#[derive(Clone, Copy)]
enum PathParam {
    /// `{id}`: a stored row's number.
    Id,
    /// `{key}`: a conversation key.
    Key,
    /// `{name}`: a calendar's name.
    Name,
    /// `{email}`: a recipient's address.
    Email,
}

/// The success answer of an operation.
#[derive(Clone, Copy)]
enum Success {
    /// A JSON body of this component schema, with this status.
    Json(u16, &'static str),
    /// `204`, no body.
    NoContent,
    /// The export's NDJSON or CSV stream.
    Export,
}

struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: &'static [Param],
    path_param: Option<(&'static str, PathParam)>,
    /// The component schema of the JSON body, and whether it is required.
    body: Option<(&'static str, bool)>,
    success: Success,
    /// Error statuses besides 401 and 503, which every operation can answer.
    errors: &'static [u16],
}

const ID: Option<(&str, PathParam)> = Some(("id", PathParam::Id));
const KEY: Option<(&str, PathParam)> = Some(("key", PathParam::Key));
const NAME: Option<(&str, PathParam)> = Some(("name", PathParam::Name));
const EMAIL: Option<(&str, PathParam)> = Some(("email", PathParam::Email));

const ROUTES: [Route; 25] = [
    Route {
        method: "post",
        path: "/erase",
        summary:
            "Delete everything stored about a visitor ({\"visitor\": KEY}); reports the counts.",
        params: &[],
        path_param: None,
        body: Some(("EraseRequest", true)),
        success: Success::Json(200, "Erased"),
        errors: &[400],
    },
    Route {
        method: "get",
        path: "/timers",
        summary: "Time-based alerts (timer rules), newest first: one row per rule, conversation, episode and step.",
        params: &super::timers::LIST_PARAMS,
        path_param: None,
        body: None,
        success: Success::Json(200, "TimerPage"),
        errors: &[400],
    },
    Route {
        method: "get",
        path: "/overview",
        summary: "The overview page's figures: events per hour by type, handovers, emails by status, conversations waiting for an agent (oldest 20), and per agent the median and 90th percentile time from a handover to their first reply (last 7 days).",
        params: &super::overview::PARAMS,
        path_param: None,
        body: None,
        success: Success::Json(200, "Overview"),
        errors: &[400],
    },
    Route {
        method: "get",
        path: "/events",
        summary: "Events, newest first, filtered and paged (keyset cursor).",
        params: &super::events::LIST_PARAMS,
        path_param: None,
        body: None,
        success: Success::Json(200, "EventPage"),
        errors: &[400],
    },
    Route {
        method: "get",
        path: "/events/{id}",
        summary: "One event with its raw JSON as received.",
        params: &[],
        path_param: ID,
        body: None,
        success: Success::Json(200, "EventDetail"),
        errors: &[400, 404],
    },
    Route {
        method: "get",
        path: "/events/{id}/fields",
        summary: "Field browser: every field path and value rules see on the event (payload.*, conversation.*, derived fields; [*] paths for list items).",
        params: &[],
        path_param: ID,
        body: None,
        success: Success::Json(200, "EventFields"),
        errors: &[400, 404],
    },
    Route {
        method: "get",
        path: "/conversations",
        summary: "Conversations, most recently active first.",
        params: &super::conversations::LIST_PARAMS,
        path_param: None,
        body: None,
        success: Success::Json(200, "ConversationPage"),
        errors: &[400],
    },
    Route {
        method: "get",
        path: "/conversations/{key}",
        summary: "A conversation: its state, a page of its events oldest first (next_cursor: the next page; null on the last), and on the first page its notifications (up to 500).",
        params: &super::conversations::DETAIL_PARAMS,
        path_param: KEY,
        body: None,
        success: Success::Json(200, "ConversationDetail"),
        errors: &[400, 404],
    },
    Route {
        method: "get",
        path: "/notifications",
        summary: "The email log, newest first.",
        params: &super::notifications::LIST_PARAMS,
        path_param: None,
        body: None,
        success: Success::Json(200, "NotificationPage"),
        errors: &[400],
    },
    Route {
        method: "post",
        path: "/notifications/{id}/resend",
        summary: "Queue an email again (409 when it is queued already or has no valid recipient).",
        params: &[],
        path_param: ID,
        body: None,
        success: Success::Json(202, "Notification"),
        errors: &[400, 404, 409],
    },
    Route {
        method: "get",
        path: "/rules",
        summary: "Every alert rule.",
        params: &[],
        path_param: None,
        body: None,
        success: Success::Json(200, "RuleList"),
        errors: &[],
    },
    Route {
        method: "post",
        path: "/rules",
        summary: "Create a rule (400: not a rule's JSON; 422: a rule that does not compile, named in the message; 409: the name is taken).",
        params: &[],
        path_param: None,
        body: Some(("Rule", true)),
        success: Success::Json(201, "SavedRule"),
        errors: &[400, 409, 422],
    },
    Route {
        method: "get",
        path: "/rules/{id}",
        summary: "One rule.",
        params: &[],
        path_param: ID,
        body: None,
        success: Success::Json(200, "SavedRule"),
        errors: &[400, 404],
    },
    Route {
        method: "put",
        path: "/rules/{id}",
        summary: "Replace a rule.",
        params: &[],
        path_param: ID,
        body: Some(("Rule", true)),
        success: Success::Json(200, "SavedRule"),
        errors: &[400, 404, 409, 422],
    },
    Route {
        method: "delete",
        path: "/rules/{id}",
        summary: "Delete a rule.",
        params: &[],
        path_param: ID,
        body: None,
        success: Success::NoContent,
        errors: &[400, 404],
    },
    Route {
        method: "post",
        path: "/rules/preview",
        summary: "What a draft rule would have done over stored events.",
        params: &[],
        path_param: None,
        body: Some(("Preview", true)),
        success: Success::Json(200, "PreviewResult"),
        errors: &[400, 422],
    },
    Route {
        method: "post",
        path: "/rules/test",
        summary: "Dry run: what rules (given, or the saved ones) would do with the events given; nothing is stored or sent.",
        params: &[],
        path_param: None,
        body: Some(("DryRun", true)),
        success: Success::Json(200, "DryRunResult"),
        errors: &[400, 422],
    },
    Route {
        method: "post",
        path: "/rules/{id}/preview",
        summary: "What a saved rule would have done over stored events (body optional: since, until, limit).",
        params: &[],
        path_param: ID,
        body: Some(("SavedPreview", false)),
        success: Success::Json(200, "PreviewResult"),
        errors: &[400, 404, 422],
    },
    Route {
        method: "get",
        path: "/calendars",
        summary: "Every named business calendar, with the rules and recipients that use it.",
        params: &[],
        path_param: None,
        body: None,
        success: Success::Json(200, "CalendarList"),
        errors: &[],
    },
    Route {
        method: "put",
        path: "/calendars/{name}",
        summary: "Create or replace a calendar (422: not a valid calendar, named in the message); the armed timers of the rules using it are re-computed.",
        params: &[],
        path_param: NAME,
        body: Some(("NamedCalendar", true)),
        success: Success::Json(200, "SavedCalendar"),
        errors: &[400, 422],
    },
    Route {
        method: "delete",
        path: "/calendars/{name}",
        summary: "Delete a calendar (409 while rules or recipients use it, named in the message).",
        params: &[],
        path_param: NAME,
        body: None,
        success: Success::NoContent,
        errors: &[404, 409],
    },
    Route {
        method: "get",
        path: "/recipients",
        summary: "Every recipient with quiet hours of its own.",
        params: &[],
        path_param: None,
        body: None,
        success: Success::Json(200, "RecipientList"),
        errors: &[],
    },
    Route {
        method: "put",
        path: "/recipients/{email}",
        summary: "Create or replace a recipient: its quiet hours, a calendar's name (422: not an address, or no such calendar). Emails to it due inside them are held until they end.",
        params: &[],
        path_param: EMAIL,
        body: Some(("RecipientBody", true)),
        success: Success::Json(200, "Recipient"),
        errors: &[400, 422],
    },
    Route {
        method: "delete",
        path: "/recipients/{email}",
        summary: "Delete a recipient; its held emails go at once.",
        params: &[],
        path_param: EMAIL,
        body: None,
        success: Success::NoContent,
        errors: &[404],
    },
    Route {
        method: "get",
        path: "/export",
        summary: "The filtered events as NDJSON (one EventDetail per line) or CSV, streamed.",
        params: &super::export::PARAMS,
        path_param: None,
        body: None,
        success: Success::Export,
        errors: &[400],
    },
];

/// Hex of ASCII digits (`3[0-9]`), `:` (`3a`) and `-` (`2d`): cursors are
/// opaque hex; these patterns say exactly which ones the server reads.
const DIGITS: &str = "3[0-9]";
const COLON: &str = "3[aA]";
const MINUS: &str = "2[dD]";

/// The pattern of a cursor kind (see `crate::params::Kind::Cursor`).
fn cursor_pattern(kind: crate::params::CursorKind) -> String {
    use crate::params::CursorKind;
    // Microseconds since 1970, up to 17 digits (the year 5138).
    let micros = format!("({MINUS})?({DIGITS}){{1,17}}");
    let id = format!("({MINUS})?({DIGITS}){{1,18}}");
    match kind {
        CursorKind::TimeAndId => format!("^{micros}{COLON}{id}$"),
        // The key part: any printable ASCII.
        CursorKind::TimeAndKey => format!("^{micros}{COLON}([2-7][0-9a-fA-F])*$"),
        CursorKind::Id => format!("^{id}$"),
    }
}

fn schema(kind: Kind) -> Value {
    match kind {
        Kind::Text => json!({"type": "string", "pattern": NON_BLANK}),
        Kind::Words => json!({"type": "string", "pattern": WORDS}),
        Kind::Cursor(cursor) => {
            json!({"type": "string", "pattern": cursor_pattern(cursor), "maxLength": MAX_CURSOR_HEX})
        }
        Kind::Integer => json!({"type": "integer", "format": "int64"}),
        Kind::Time => json!({"type": "string", "format": "date-time"}),
        Kind::Limit => {
            json!({"type": "integer", "minimum": 1, "maximum": crate::params::MAX_LIMIT})
        }
        Kind::OneOf(values) => json!({"type": "string", "enum": values}),
    }
}

fn path_schema(kind: PathParam) -> Value {
    match kind {
        PathParam::Id => json!({"type": "integer", "format": "int64"}),
        PathParam::Key => json!({"type": "string", "minLength": 1}),
        PathParam::Name => directory::calendar_name(),
        PathParam::Email => {
            json!({"type": "string", "format": "email", "minLength": 3, "maxLength": 320})
        }
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "A malformed request: the parameter or key at fault is named in the message",
        401 => "Missing or wrong admin token",
        404 => "No such item",
        409 => "Conflicts with what is stored (a rule name taken, an email already queued, a calendar in use)",
        422 => "Well-formed, but the rule, calendar or recipient is not valid (unknown template or calendar, bad recipient, bad condition...)",
        503 => "Database unavailable; retry after Retry-After seconds",
        _ => "Error",
    }
}

fn responses(route: &Route) -> Value {
    let mut responses = Map::new();
    match route.success {
        Success::Json(status, name) => {
            responses.insert(
                status.to_string(),
                json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}),
            );
        }
        Success::NoContent => {
            responses.insert("204".into(), json!({"description": "Deleted"}));
        }
        Success::Export => {
            responses.insert(
                "200".into(),
                json!({"description": "The events: NDJSON (format=ndjson, the default) or CSV (format=csv)", "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                }}),
            );
        }
    }
    for status in route.errors.iter().chain(&[401, 503]) {
        responses.insert(
            status.to_string(),
            json!({"description": error_description(*status), "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(responses)
}

/// The OpenAPI 3.0 document; `templates` are the template names a rule may
/// use (the built-in ones and those of the templates folder).
pub fn openapi(templates: &[String]) -> Value {
    let mut paths = Map::new();
    for route in &ROUTES {
        let mut parameters: Vec<Value> = route
            .params
            .iter()
            .map(|p| json!({"name": p.name, "in": "query", "required": false, "description": p.description, "schema": schema(p.kind)}))
            .collect();
        if let Some((name, kind)) = route.path_param {
            parameters.push(
                json!({"name": name, "in": "path", "required": true, "schema": path_schema(kind)}),
            );
        }
        let mut operation = json!({
            "operationId": format!("{}{}", route.method, route.path.replace(['/', '{', '}'], "_")),
            "summary": route.summary,
            "parameters": parameters,
            "responses": responses(route),
        });
        if let Some((body, required)) = route.body {
            operation["requestBody"] = json!({"required": required, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "hookline admin API", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The admin token (HOOKLINE_ADMIN_TOKEN)."}},
            "schemas": schemas::all(templates),
        },
    })
}

async fn document(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(openapi(&state.rules.templates().names()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` names a schema of the document.
    #[test]
    fn every_reference_resolves() {
        let document = openapi(&["generic".to_owned()]);
        let text = document.to_string();
        let schemas = &document["components"]["schemas"];
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            assert!(schemas.get(name).is_some(), "{name} is referenced");
        }
    }

    /// The cursor patterns accept what the server hands out.
    #[test]
    fn cursor_patterns_accept_real_cursors() {
        use crate::params::{encode_cursor, CursorKind};
        let cases = [
            (CursorKind::TimeAndId, encode_cursor("1693577612141788:42")),
            (
                CursorKind::TimeAndKey,
                encode_cursor("1693577612141788:42bb83f00d8240e5"),
            ),
            (CursorKind::Id, encode_cursor("7")),
        ];
        for (kind, cursor) in cases {
            let pattern = regex::Regex::new(&cursor_pattern(kind)).unwrap();
            assert!(pattern.is_match(&cursor), "{cursor}");
        }
    }
}
