//! The outbox worker: claims due notifications, renders, sends, records the
//! result, retries with exponential backoff and jitter, and gives up
//! (`dead`) after the last attempt.
//!
//! It wakes as soon as ingest queues something (no polling delay on the hot
//! path) and also every `poll` for retries and for rows other processes
//! queued. A crash between sending and recording can at worst send one
//! email twice (the claim's lease runs out and another worker sends it),
//! never lose one.
//!
//! Due times, retry times and leases are read and written on the
//! database's clock ([`hookline_storage::db_now`]), never the process's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use hookline_storage::health::Component;
use hookline_storage::notifications::{self, Notification};
use hookline_storage::{Database, StorageError};
use lettre::message::Mailbox;
use tokio::sync::{watch, Notify};

use crate::mailer::Mailer;
use crate::render::{reply_to_of, template_context};
use crate::templates::{Rendered, Templates};

/// The default claim lease: a killed instance's emails go out from another
/// within about a minute.
pub const DEFAULT_LEASE_SECONDS: u64 = 60;

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub from: Mailbox,
    /// hookline's own address, for links to its pages.
    pub public_url: Option<String>,
    /// Attempts before a notification is `dead`.
    pub max_attempts: i32,
    /// The first retry waits this long; each next one twice as long.
    pub retry_base: Duration,
    /// How long a claim holds before another worker may take the row; the
    /// worker renews it every third of that while it sends the row.
    pub lease: Duration,
    /// How often to look for due rows without being woken.
    pub poll: Duration,
    /// Rows claimed at a time.
    pub batch: i32,
}

impl WorkerSettings {
    /// 8 attempts over about a day: 5m40s, 11m, 23m, 45m, 1.5h, 3h, 6h, 12h.
    pub fn with_defaults(from: Mailbox) -> WorkerSettings {
        WorkerSettings {
            from,
            public_url: None,
            max_attempts: 8,
            retry_base: Duration::from_secs(340),
            lease: Duration::from_secs(DEFAULT_LEASE_SECONDS),
            poll: Duration::from_secs(1),
            batch: 10,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dead: AtomicU64,
}

pub struct Worker {
    db: Database,
    templates: Arc<Templates>,
    mailer: Arc<Mailer>,
    wake: Arc<Notify>,
    settings: WorkerSettings,
    id: String,
    pub stats: Arc<WorkerStats>,
    /// Whether it runs and makes progress (`/readyz`, `/metrics`).
    pub health: Arc<Component>,
}

/// The longest one email's sending may take, whatever the mail server does.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// No round finished for this long: the worker is stalled. One email may
/// take the SMTP timeout (30 s) and a round up to a batch of them.
const WORKER_STALL: Duration = Duration::from_secs(330);

/// The wait before retry number `attempt` (1-based), with ±20% jitter so
/// that a burst of failures does not retry in lockstep.
pub fn retry_delay(base: Duration, attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let delay = base
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_RETRY_DELAY);
    let jitter: f64 = 0.8 + rand::random::<f64>() * 0.4;
    delay.mul_f64(jitter)
}

/// The longest wait before a retry, whatever the settings.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(7 * 86_400);

/// `now + by`, with `by` capped at [`MAX_RETRY_DELAY`]: never an overflow,
/// never a time the database cannot store.
pub(crate) fn later(now: NaiveDateTime, by: Duration) -> NaiveDateTime {
    let by = chrono::Duration::from_std(by.min(MAX_RETRY_DELAY)).unwrap_or_default();
    now.checked_add_signed(by).unwrap_or(now)
}

/// A name for one worker's claims, unique across processes and hosts
/// sharing a database: `PREFIX` then host, process and a random part.
pub(crate) fn claimer_id(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}-{:08x}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "hookline".to_owned()),
        std::process::id(),
        rand::random::<u32>()
    )
}

impl Worker {
    pub fn new(
        db: Database,
        templates: Arc<Templates>,
        mailer: Arc<Mailer>,
        wake: Arc<Notify>,
        settings: WorkerSettings,
    ) -> Worker {
        Worker {
            db,
            templates,
            mailer,
            wake,
            settings,
            id: claimer_id(""),
            stats: Arc::new(WorkerStats::default()),
            health: Component::new("outbox worker", 1, WORKER_STALL),
        }
    }

    /// Runs the worker (see [`Worker::run`]) and starts it again if it
    /// panics, until it stops normally.
    pub async fn supervise(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let health = Arc::clone(&self.health);
        supervise_task(&health, || Arc::clone(&self).run(stop.clone())).await;
    }

    /// Runs until `stop` turns true; the email being sent is finished
    /// first, and rows claimed but not yet sent are handed back.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // A round is due even with nothing waiting: the health check reads
        // "has made no progress" only while work waits.
        self.health.pending(1);
        loop {
            if *stop.borrow() {
                break;
            }
            let round = self.run_once(Some(&stop)).await;
            self.health.progressed();
            match round {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, "outbox: cannot claim notifications; will retry")
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = stop.changed() => {}
            }
        }
        self.health.pending(-1);
        tracing::info!("outbox worker stopped");
    }

    /// Claims one batch and sends it; how many were claimed.
    pub async fn run_once(
        &self,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<usize, StorageError> {
        let claimed = self
            .blocking({
                let (worker, lease, batch) =
                    (self.id.clone(), self.settings.lease, self.settings.batch);
                move |conn| {
                    // Due times and leases are the database's clock, like
                    // the timer worker's: a process whose clock is off
                    // sends neither early nor late, nor steals a live claim.
                    let now = hookline_storage::db_now(conn)?;
                    Ok(notifications::claim_due(
                        conn,
                        &worker,
                        now,
                        later(now, lease),
                        batch,
                    )?)
                }
            })
            .await?;
        let count = claimed.len();
        let mut rows = claimed.into_iter();
        for notification in rows.by_ref() {
            // The rows wait their turn while the ones before them are sent:
            // renew this one's claim first. If its lease ran out and another
            // worker took it meanwhile, it is theirs now: leave it rather
            // than send it twice.
            if !self.renew(notification.id).await? {
                tracing::warn!(
                    id = notification.id,
                    "outbox: the claim passed to another worker before sending; leaving it"
                );
                continue;
            }
            // While it is being sent (a slow mail server), keep the claim.
            let renewing = AbortOnDrop(tokio::spawn(self.keep_claimed(notification.id)));
            self.deliver(notification).await;
            drop(renewing);
            self.health.progressed();
            if stop.is_some_and(|s| *s.borrow()) {
                break;
            }
        }
        let unsent: Vec<i64> = rows.map(|n| n.id).collect();
        if !unsent.is_empty() {
            let worker = self.id.clone();
            self.blocking(move |conn| {
                let now = hookline_storage::db_now(conn)?;
                for id in unsent {
                    notifications::release(conn, id, &worker, now)?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(count)
    }

    /// Extends this worker's claim on `id` by a lease from now; false when
    /// the claim is no longer ours.
    async fn renew(&self, id: i64) -> Result<bool, StorageError> {
        let (worker, lease) = (self.id.clone(), self.settings.lease);
        self.blocking(move |conn| {
            let until = later(hookline_storage::db_now(conn)?, lease);
            Ok(notifications::renew_claim(conn, id, &worker, until)?)
        })
        .await
    }

    /// Renews the claim on `id` every third of the lease, until aborted or
    /// the claim is gone. A worker that dies stops renewing: its rows go to
    /// another worker one lease later.
    fn keep_claimed(&self, id: i64) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (db, worker, lease) = (self.db.clone(), self.id.clone(), self.settings.lease);
        async move {
            let every = (lease / 3).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(every).await;
                let (db, worker) = (db.clone(), worker.clone());
                let renewed = tokio::task::spawn_blocking(move || {
                    let mut conn = db.conn()?;
                    let until = later(hookline_storage::db_now(&mut conn)?, lease);
                    Ok::<_, StorageError>(notifications::renew_claim(
                        &mut conn, id, &worker, until,
                    )?)
                })
                .await;
                match renewed {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => return,
                    Ok(Err(error)) => {
                        tracing::warn!(id, %error, "outbox: could not renew a claim; will retry")
                    }
                    Err(_) => return,
                }
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut hookline_storage::DbConnection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| StorageError::WriterGone)?
    }

    /// The email; `Err((error, permanent))`: a template that fails to
    /// render fails the same way on every attempt, so it is permanent.
    async fn render(&self, notification: &Notification) -> Result<Rendered, (String, bool)> {
        let templates = Arc::clone(&self.templates);
        let public_url = self.settings.public_url.clone();
        let n = notification.clone();
        self.blocking(move |conn| {
            let context = template_context(conn, &n, public_url.as_deref())?;
            let reply_to = match n.rule_id {
                Some(id) => hookline_storage::rules::get(conn, id)?
                    .and_then(|row| serde_json::from_str::<crate::RuleDef>(&row.definition).ok())
                    .and_then(|def| reply_to_of(def.reply_to.as_deref(), &context)),
                None => None,
            };
            Ok(templates
                .render(&n.template, &context)
                .map(|email| Rendered { reply_to, ..email })
                .map_err(|e| (e.to_string(), true)))
        })
        .await
        .map_err(|e| (format!("cannot load what the email shows: {e}"), false))?
    }

    /// Renders, sends and records one notification.
    async fn deliver(&self, notification: Notification) {
        let rendered = self.render(&notification).await;
        let permanent = matches!(rendered, Err((_, true)));
        let result = match &rendered {
            Ok(email) => {
                // However slow the mail server, one send ends: the worker
                // (and its health) must not hang on it.
                let send = self.mailer.send_message(
                    &self.settings.from,
                    &notification.recipient,
                    email,
                    notification.conversation_key.as_deref(),
                );
                match tokio::time::timeout(SEND_TIMEOUT, send).await {
                    Ok(result) => result.map_err(|error| error.to_string()),
                    Err(_) => Err(format!(
                        "the mail server did not finish within {} s",
                        SEND_TIMEOUT.as_secs()
                    )),
                }
            }
            Err((error, _)) => Err(error.clone()),
        };
        let subject = rendered.as_ref().ok().map(|r| r.subject.clone());
        let id = notification.id;
        let worker = self.id.clone();
        let attempts = notification.attempts;
        let (max, base) = (self.settings.max_attempts, self.settings.retry_base);
        let outcome = match &result {
            Ok(_) => "sent",
            Err(_) if attempts >= max || permanent => "dead",
            Err(_) => "failed",
        };
        match outcome {
            "sent" => self.stats.sent.fetch_add(1, Ordering::Relaxed),
            "dead" => self.stats.dead.fetch_add(1, Ordering::Relaxed),
            _ => self.stats.failed.fetch_add(1, Ordering::Relaxed),
        };
        match &result {
            Ok(sent) => {
                tracing::info!(id, to = %notification.recipient, rule = %notification.rule_name, answer = %sent.answer, "email sent")
            }
            Err(error) => {
                tracing::warn!(id, to = %notification.recipient, attempts, %error, outcome, "email not sent")
            }
        }
        let recorded = self
            .blocking(move |conn| {
                let now = hookline_storage::db_now(conn)?;
                let recorded = match result {
                    Ok(sent) => notifications::mark_sent(
                        conn,
                        id,
                        &worker,
                        subject.as_deref().unwrap_or_default(),
                        &sent.answer,
                        sent.message.as_deref(),
                        now,
                    )?,
                    Err(error) => {
                        let retry = (attempts < max && !permanent)
                            .then(|| later(now, retry_delay(base, attempts)));
                        notifications::mark_failed(
                            conn,
                            id,
                            &worker,
                            subject.as_deref(),
                            &error,
                            retry,
                            now,
                        )?
                    }
                };
                if !recorded {
                    tracing::warn!(
                        id,
                        "outbox: the claim had passed to another worker; its result stands"
                    );
                }
                Ok(())
            })
            .await;
        if let Err(error) = recorded {
            // The lease runs out and the row is sent again: a possible
            // duplicate, never a loss.
            tracing::error!(id, %error, "could not record the result of a notification");
        }
    }
}

/// A task ended when dropped (also when the code that owns it panics).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the task `start` makes, again after each panic (logged, counted,
/// after a pause of a second), until one ends normally.
pub async fn supervise_task<F, Fut>(component: &Component, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        component.started();
        let result = tokio::spawn(start()).await;
        component.stopped();
        match result {
            Ok(()) => return,
            Err(error) if error.is_panic() => {
                component.restarted();
                tracing::error!(component = component.name, "panicked; restarting it");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_restarted() {
        let component = Component::new("outbox worker", 1, Duration::from_secs(60));
        let runs = Arc::new(AtomicU64::new(0));
        supervise_task(&component, || {
            let runs = Arc::clone(&runs);
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom");
                }
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(component.restarts(), 2);
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter() {
        let base = Duration::from_secs(100);
        for attempt in 1..=8 {
            let delay = retry_delay(base, attempt).as_secs_f64();
            let nominal = 100.0 * 2f64.powi(attempt - 1);
            assert!(
                delay >= nominal * 0.8 && delay <= nominal * 1.2,
                "{attempt}: {delay}"
            );
        }
    }

    #[test]
    fn huge_settings_give_capped_delays_not_panics() {
        let delay = retry_delay(Duration::from_secs(86_400), 100);
        assert!(delay <= MAX_RETRY_DELAY.mul_f64(1.2), "{delay:?}");
        let now = hookline_storage::now();
        let at = later(now, Duration::MAX);
        assert_eq!(at, now + chrono::Duration::days(7));
        assert_eq!(
            later(NaiveDateTime::MAX, Duration::from_secs(1)),
            NaiveDateTime::MAX
        );
    }

    #[test]
    fn default_schedule_spans_about_a_day() {
        let base = Duration::from_secs(340);
        let total: f64 = (1..8).map(|a| base.as_secs_f64() * 2f64.powi(a - 1)).sum();
        assert!((40_000.0..100_000.0).contains(&total), "{total}");
    }
}
