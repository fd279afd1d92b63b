//! `GET /export`: the filtered events as NDJSON (with the raw JSON) or CSV,
//! streamed page by page: memory stays constant however many events match.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use hookline_storage::events::{self, EventFilter, StoredEvent};

use super::events::FILTERS;
use crate::error::ApiError;
use crate::params::{param, rfc3339, Kind, Param, Query};
use crate::{views, AppState};

/// Rows read per database round trip.
const PAGE: i64 = 1_000;

pub const PARAMS: [Param; 11] = [
    FILTERS[0],
    FILTERS[1],
    FILTERS[2],
    FILTERS[3],
    FILTERS[4],
    FILTERS[5],
    FILTERS[6],
    FILTERS[7],
    FILTERS[8],
    FILTERS[9],
    param(
        "format",
        Kind::OneOf(&["ndjson", "csv"]),
        "ndjson (default; one event per line, raw JSON included) or csv.",
    ),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/export").get(export));
}

const CSV_HEADER: &str = "id,type,message_type,conversation_key,occurred_at,received_at,actor_type,actor_email,account_id,bot_id,visitor_key,summary\n";

/// A text cell. One that a spreadsheet would evaluate as a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return: payload text
/// such as `=HYPERLINK(...)`) gets a leading `'`, which spreadsheets show
/// as text; then quoted when it holds a separator.
fn csv_field(text: &str) -> String {
    let neutral;
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        neutral = format!("'{text}");
        neutral.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn csv_line(e: &StoredEvent) -> String {
    let opt = |v: &Option<String>| csv_field(v.as_deref().unwrap_or_default());
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{}\n",
        e.id,
        csv_field(&e.event_type),
        opt(&e.message_type),
        opt(&e.conversation_key),
        rfc3339(e.occurred_at),
        rfc3339(e.received_at),
        opt(&e.actor_type),
        opt(&e.actor_email),
        num(e.account_id),
        num(e.bot_id),
        opt(&e.visitor_key),
        csv_field(&e.summary),
    )
}

async fn export(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(&req, &PARAMS)?;
    let mut filter = super::events::filter(&query)?;
    let csv = query.text("format").as_deref() == Some("csv");
    // Export what exists now: events arriving meanwhile are not half-included.
    let db = state.db.clone();
    let snapshot = web::block(move || {
        let mut conn = db.conn().map_err(|e| e.to_string())?;
        events::max_id(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| ApiError::unavailable("the server is shutting down"))?
    .map_err(|e| {
        tracing::error!(error = %e, "export: database unavailable");
        ApiError::unavailable("the database is unavailable; retry later")
    })?;
    filter.max_id = Some(snapshot);

    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || produce(db, filter, csv, sender));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let (content_type, name) = if csv {
        ("text/csv; charset=utf-8", "hookline-events.csv")
    } else {
        ("application/x-ndjson", "hookline-events.ndjson")
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .streaming(stream))
}

/// Reads pages and sends them as chunks; stops when the client goes away.
fn produce(
    db: hookline_storage::Database,
    filter: EventFilter,
    csv: bool,
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let fail = |sender: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
                error: String| {
        tracing::error!(%error, "export failed midway");
        let _ = sender.blocking_send(Err(std::io::Error::other(error)));
    };
    if csv
        && sender
            .blocking_send(Ok(Bytes::from_static(CSV_HEADER.as_bytes())))
            .is_err()
    {
        return;
    }
    let mut cursor = None;
    loop {
        // A connection per page, back to the pool while a slow client
        // reads: stalled downloads cannot starve everything else.
        let rows = match db.conn().map_err(|e| e.to_string()).and_then(|mut conn| {
            events::page(&mut conn, &filter, cursor, PAGE).map_err(|e| e.to_string())
        }) {
            Ok(rows) => rows,
            Err(e) => return fail(&sender, e),
        };
        let Some(last) = rows.last() else {
            return;
        };
        cursor = Some((last.occurred_at, last.id));
        let mut chunk = String::with_capacity(rows.len() * 512);
        for row in &rows {
            if csv {
                chunk.push_str(&csv_line(row));
            } else {
                chunk.push_str(&views::event_detail(row).to_string());
                chunk.push('\n');
            }
        }
        if sender.blocking_send(Ok(Bytes::from(chunk))).is_err() {
            return;
        }
        if (rows.len() as i64) < PAGE {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_are_neutralised() {
        assert_eq!(csv_field("=1+2"), "'=1+2");
        assert_eq!(csv_field("+cmd"), "'+cmd");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(
            csv_field("=HYPERLINK(\"http://e.example\",\"x\")"),
            "\"'=HYPERLINK(\"\"http://e.example\"\",\"\"x\"\")\""
        );
        assert_eq!(csv_field("plain text"), "plain text");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("x=1"), "x=1");
    }
}
