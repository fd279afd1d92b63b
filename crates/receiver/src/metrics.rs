//! `GET /metrics` in Prometheus text format, and the request middleware
//! that counts requests and gives each one an id that appears in its log
//! lines.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, Error, HttpResponse};
use hookline_notifier::hook::HookStats;
use hookline_notifier::worker::WorkerStats;
use hookline_storage::notifications;
use tracing::Instrument;

use crate::AppState;

/// Upper bounds of the ingest latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    total: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counters the receiver keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    stored: Mutex<BTreeMap<String, u64>>,
    duplicates: Mutex<BTreeMap<String, u64>>,
    pub ingest_latency: Histogram,
    next_request: AtomicU64,
}

/// The type as a metrics label: the documented types and `unrecognized`;
/// anything else a caller sends is `other`, so labels stay few.
fn type_label(kind: &str) -> String {
    if hookline_model::EVENT_TYPES.contains(&kind) || kind == hookline_model::UNRECOGNIZED {
        kind.to_owned()
    } else {
        "other".to_owned()
    }
}

fn add(map: &Mutex<BTreeMap<String, u64>>, counts: &BTreeMap<String, usize>) {
    if let Ok(mut map) = map.lock() {
        for (kind, n) in counts {
            *map.entry(type_label(kind)).or_default() += *n as u64;
        }
    }
}

impl Metrics {
    pub fn count_stored(&self, outcome: &hookline_storage::StoreOutcome) {
        add(&self.stored, &outcome.stored_by_type);
        add(&self.duplicates, &outcome.duplicates_by_type);
    }

    fn count_request(&self, route: String, status: u16) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((route, status)).or_default() += 1;
        }
    }
}

/// Gives each request an id (in its log lines and the `X-Request-Id`
/// header) and counts it by route and status.
pub async fn observe(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<impl actix_web::body::MessageBody>, Error> {
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| Arc::clone(&s.metrics));
    let id = match &metrics {
        Some(m) => m.next_request.fetch_add(1, Ordering::Relaxed),
        None => 0,
    };
    let request_id = format!("{:08x}{:06x}", std::process::id(), id & 0xff_ffff);
    let span = tracing::info_span!("request", id = %request_id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::debug!(
            status,
            micros = started.elapsed().as_micros() as u64,
            "request finished"
        );
    });
    if let Some(metrics) = metrics {
        metrics.count_request(route, status);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}

/// Stats kept outside the receiver, wired in at start.
#[derive(Clone, Default)]
pub struct OutsideStats {
    pub hook: Option<Arc<HookStats>>,
    pub worker: Option<Arc<WorkerStats>>,
    /// The timer worker's counters.
    pub timers: Option<Arc<hookline_notifier::TimerStats>>,
    /// Background components whose health `/readyz` and `/metrics` show.
    pub components: Vec<Arc<hookline_storage::health::Component>>,
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text.
pub async fn render(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(expected) = &state.metrics_token {
        let presented = crate::auth::bearer(&req).unwrap_or_default();
        let valid = bool::from(subtle::ConstantTimeEq::ct_eq(
            presented.trim().as_bytes(),
            expected.as_bytes(),
        ));
        if !valid {
            return actix_web::ResponseError::error_response(&crate::ApiError::unauthorized(
                "/metrics needs Authorization: Bearer <metrics token> (HOOKLINE_METRICS_TOKEN)",
            ));
        }
    }
    let mut out = String::new();
    let m = &state.metrics;
    let _ = writeln!(out, "# HELP hookline_http_requests_total HTTP requests by route and status.\n# TYPE hookline_http_requests_total counter");
    if let Ok(map) = m.requests.lock() {
        for ((route, status), n) in map.iter() {
            let _ = writeln!(
                out,
                "hookline_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
    }
    let _ = writeln!(out, "# HELP hookline_webhook_events_stored_total Webhook events stored, by type.\n# TYPE hookline_webhook_events_stored_total counter");
    if let Ok(map) = m.stored.lock() {
        for (kind, n) in map.iter() {
            let _ = writeln!(
                out,
                "hookline_webhook_events_stored_total{{type=\"{}\"}} {n}",
                escape(kind)
            );
        }
    }
    let _ = writeln!(out, "# HELP hookline_webhook_events_duplicate_total Webhook events already stored, by type.\n# TYPE hookline_webhook_events_duplicate_total counter");
    if let Ok(map) = m.duplicates.lock() {
        for (kind, n) in map.iter() {
            let _ = writeln!(
                out,
                "hookline_webhook_events_duplicate_total{{type=\"{}\"}} {n}",
                escape(kind)
            );
        }
    }
    let _ = writeln!(out, "# HELP hookline_webhook_rejected_total Webhook requests refused, by cause.\n# TYPE hookline_webhook_rejected_total counter");
    for (cause, n) in state.rejections.snapshot() {
        let _ = writeln!(
            out,
            "hookline_webhook_rejected_total{{cause=\"{cause}\"}} {n}"
        );
    }
    let h = &m.ingest_latency;
    let _ = writeln!(out, "# HELP hookline_ingest_duration_seconds Time to store a delivery and answer.\n# TYPE hookline_ingest_duration_seconds histogram");
    for (bound, count) in BUCKETS.iter().zip(&h.counts) {
        let _ = writeln!(
            out,
            "hookline_ingest_duration_seconds_bucket{{le=\"{bound}\"}} {}",
            count.load(Ordering::Relaxed)
        );
    }
    let total = h.total.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "hookline_ingest_duration_seconds_bucket{{le=\"+Inf\"}} {total}"
    );
    let _ = writeln!(
        out,
        "hookline_ingest_duration_seconds_sum {}",
        h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "hookline_ingest_duration_seconds_count {total}");

    if let Some(hook) = &state.stats.hook {
        let _ = writeln!(out, "# HELP hookline_rule_evaluations_total Rule evaluations.\n# TYPE hookline_rule_evaluations_total counter");
        let _ = writeln!(
            out,
            "hookline_rule_evaluations_total {}",
            hook.evaluations.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP hookline_rule_errors_total Rules that failed on an event (recorded as error notifications; the event was stored).\n# TYPE hookline_rule_errors_total counter");
        let _ = writeln!(
            out,
            "hookline_rule_errors_total {}",
            hook.errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP hookline_rule_matches_total Rules that fired.\n# TYPE hookline_rule_matches_total counter");
        let _ = writeln!(
            out,
            "hookline_rule_matches_total {}",
            hook.matches.load(Ordering::Relaxed)
        );
    }
    if let Some(worker) = &state.stats.worker {
        let _ = writeln!(out, "# HELP hookline_emails_sent_total Emails handed to the mail server.\n# TYPE hookline_emails_sent_total counter");
        let _ = writeln!(
            out,
            "hookline_emails_sent_total {}",
            worker.sent.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP hookline_email_failures_total Failed attempts (retried), and emails given up.\n# TYPE hookline_email_failures_total counter");
        let _ = writeln!(
            out,
            "hookline_email_failures_total{{outcome=\"retry\"}} {}",
            worker.failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "hookline_email_failures_total{{outcome=\"dead\"}} {}",
            worker.dead.load(Ordering::Relaxed)
        );
    }
    let db = state.db.clone();
    let outbox = web::block(move || {
        let mut conn = db.conn().ok()?;
        let counts = notifications::count_by_status(&mut conn).ok()?;
        let oldest = notifications::oldest_pending(&mut conn).ok()?;
        let unindexed = hookline_storage::search::unindexed(&mut conn).ok()?;
        Some((counts, oldest, unindexed))
    })
    .await
    .ok()
    .flatten();
    let _ = writeln!(out, "# HELP hookline_database_up Whether the last metrics scrape reached the database.\n# TYPE hookline_database_up gauge");
    let _ = writeln!(out, "hookline_database_up {}", u8::from(outbox.is_some()));
    if let Some((counts, oldest, unindexed)) = outbox {
        let _ = writeln!(out, "# HELP hookline_search_unindexed_events Stored events not in the search index yet (SQLite indexes while the writer is idle; they are found by a scan meanwhile).\n# TYPE hookline_search_unindexed_events gauge");
        let _ = writeln!(out, "hookline_search_unindexed_events {unindexed}");
        let _ = writeln!(out, "# HELP hookline_outbox_notifications Notifications by status.\n# TYPE hookline_outbox_notifications gauge");
        for status in notifications::STATUSES {
            let n = counts
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(
                out,
                "hookline_outbox_notifications{{status=\"{status}\"}} {n}"
            );
        }
        let age = oldest.map_or(0.0, |t| {
            (hookline_storage::now() - t).num_milliseconds().max(0) as f64 / 1000.0
        });
        let _ = writeln!(out, "# HELP hookline_outbox_oldest_pending_seconds Age of the oldest email waiting to go out.\n# TYPE hookline_outbox_oldest_pending_seconds gauge");
        let _ = writeln!(out, "hookline_outbox_oldest_pending_seconds {age}");
    }
    crate::timer_metrics::render(&mut out, &state).await;
    let _ = writeln!(out, "# HELP hookline_component_up Whether a background component runs (1) and makes progress, or not (0).\n# TYPE hookline_component_up gauge");
    for component in &state.stats.components {
        let _ = writeln!(
            out,
            "hookline_component_up{{component=\"{}\"}} {}",
            component.name.replace(' ', "_"),
            u8::from(component.verdict().is_ok())
        );
    }
    let _ = writeln!(out, "# HELP hookline_component_restarts_total Restarts of a background component after a panic.\n# TYPE hookline_component_restarts_total counter");
    for component in &state.stats.components {
        let _ = writeln!(
            out,
            "hookline_component_restarts_total{{component=\"{}\"}} {}",
            component.name.replace(' ', "_"),
            component.restarts()
        );
    }
    if let Some(bytes) = state.db.wal_bytes() {
        let _ = writeln!(out, "# HELP hookline_sqlite_wal_bytes Size of the SQLite write-ahead log file.\n# TYPE hookline_sqlite_wal_bytes gauge");
        let _ = writeln!(out, "hookline_sqlite_wal_bytes {bytes}");
        let _ = writeln!(out, "# HELP hookline_sqlite_wal_limit_bytes The bound the write-ahead log is kept under (sqlite_wal_limit_mb).\n# TYPE hookline_sqlite_wal_limit_bytes gauge");
        let _ = writeln!(
            out,
            "hookline_sqlite_wal_limit_bytes {}",
            state.db.options().sqlite_wal_limit_bytes
        );
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}

/// `GET /readyz`: the ingest writer and the outbox worker run and make
/// progress, the database answers and its schema is current; otherwise
/// `503` naming what is wrong.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if let Some(reason) = state
        .stats
        .components
        .iter()
        .find_map(|c| c.verdict().err())
    {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(serde_json::json!({"status": "unavailable", "reason": reason}));
    }
    let db = state.db.clone();
    let verdict = web::block(move || -> Result<(), String> {
        let mut conn = db.conn().map_err(|e| e.to_string())?;
        match hookline_storage::migrations::is_current(&mut conn) {
            Ok(true) => Ok(()),
            Ok(false) => {
                Err("the database schema is not current: run `hookline migrate`".to_owned())
            }
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap_or_else(|_| Err("shutting down".to_owned()));
    match verdict {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(reason) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(serde_json::json!({"status": "unavailable", "reason": reason})),
    }
}
