//! `/ui/`: the overview, the landing page after login. Charts are SVG drawn
//! on the server ([`super::charts`]), each with its figures as a table.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{charts, render, session};
use crate::overview::{duration_text, load, Series, Window};
use crate::AppState;

/// Series drawn apart; the rest of the event types are summed as "other".
const DRAWN_TYPES: usize = 7;

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(session) = session(&state, &req).await else {
        return super::to_login();
    };
    let asked = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()
        .and_then(|q| {
            q.into_inner()
                .into_iter()
                .find(|(k, _)| k == "window")
                .map(|(_, v)| v)
        });
    let window = match Window::parse(asked.as_deref()) {
        Ok(window) => window,
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let overview = match load(&state, window).await {
        Ok(overview) => overview,
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let span = match window {
        Window::Day => "the last 24 hours",
        Window::Week => "the last 7 days",
    };
    // Each hour's start in the display zone (the hours are UTC hours: in a
    // zone half an hour off UTC they start at :30).
    let zone = state.time_zone;
    let hours: Vec<String> = overview
        .hours
        .iter()
        .map(|h| {
            let utc: String = h.replacen('T', " ", 1).chars().take(13).collect();
            chrono::NaiveDateTime::parse_from_str(&format!("{utc}:00"), "%Y-%m-%d %H:%M")
                .map_or(utc, |at| super::when::local_naive(at, zone))
        })
        .collect();
    let series = drawn(&overview.events);
    let events_summary = format!(
        "Events per hour by type, {span} ({}): {} events, {} handovers",
        zone.name(),
        overview.events_total,
        overview.handovers
    );
    let table_rows: Vec<Value> = hours
        .iter()
        .enumerate()
        .filter_map(|(h, label)| {
            let counts: Vec<i64> = series.iter().map(|s| s.counts[h]).collect();
            let total: i64 = counts.iter().sum();
            (total > 0).then(|| json!({"hour": label, "counts": counts, "total": total}))
        })
        .collect();
    let legend: Vec<Value> = series
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"name": s.event_type, "total": s.total, "colour": charts::colour(i)}))
        .collect();
    let answered = overview.replies.iter().filter(|a| a.answered > 0).count();
    let replies_summary = format!(
        "Time from a handover to the agent's first reply, median and 90th percentile, last 7 days: {answered} agents"
    );
    let replies: Vec<Value> = overview
        .replies
        .iter()
        .map(|a| {
            let mut row = json!(a);
            row["median"] = json!(a.median_seconds.map(duration_text));
            row["p90"] = json!(a.p90_seconds.map(duration_text));
            row
        })
        .collect();
    render(
        &state,
        "overview",
        "overview",
        &session,
        json!({
            "title": "Overview",
            "o": overview,
            "week": window == Window::Week,
            "waiting_shown": overview.waiting.len(),
            "span": span,
            "events_svg": charts::events_per_hour(&hours, &series, &events_summary),
            "events_summary": events_summary,
            "legend": legend,
            "table_rows": table_rows,
            "replies_svg": charts::replies(&overview.replies, &replies_summary),
            "replies_summary": replies_summary,
            "reply_rows": replies,
        }),
    )
    .await
}

/// The largest types apart, the rest summed as "other".
fn drawn(series: &[Series]) -> Vec<Series> {
    if series.len() <= DRAWN_TYPES + 1 {
        return series.to_vec();
    }
    let mut out = series[..DRAWN_TYPES].to_vec();
    let rest = &series[DRAWN_TYPES..];
    let hours = rest.first().map_or(0, |s| s.counts.len());
    out.push(Series {
        event_type: format!("{} other types", rest.len()),
        counts: (0..hours)
            .map(|h| rest.iter().map(|s| s.counts[h]).sum())
            .collect(),
        total: rest.iter().map(|s| s.total).sum(),
    });
    out
}
