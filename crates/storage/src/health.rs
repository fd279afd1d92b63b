//! Liveness of hookline's background components (the ingest writer, the
//! outbox worker): whether each is running, when it last made progress,
//! how much work waits for it, how often it was restarted. `/readyz` and
//! `/metrics` read it.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One component's health.
#[derive(Debug)]
pub struct Component {
    pub name: &'static str,
    /// Threads or tasks of it that should run.
    expected: usize,
    running: AtomicUsize,
    last_progress_ms: AtomicU64,
    pending: AtomicI64,
    restarts: AtomicU64,
    /// No progress for this long while work waits is a stall.
    stall_after: Duration,
}

impl Component {
    pub fn new(name: &'static str, expected: usize, stall_after: Duration) -> Arc<Component> {
        Arc::new(Component {
            name,
            expected: expected.max(1),
            running: AtomicUsize::new(0),
            last_progress_ms: AtomicU64::new(now_ms()),
            pending: AtomicI64::new(0),
            restarts: AtomicU64::new(0),
            stall_after,
        })
    }

    /// One of its threads or tasks started.
    pub fn started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.progressed();
    }

    /// One of its threads or tasks ended.
    pub fn stopped(&self) {
        let _ = self
            .running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// It was restarted after a panic.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// It finished a unit of work (or an idle round).
    pub fn progressed(&self) {
        self.last_progress_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Work was handed to it (`+n`) or answered (`-n`).
    pub fn pending(&self, delta: i64) {
        let before = self.pending.fetch_add(delta, Ordering::Relaxed);
        // Work arriving at an idle component: the stall clock starts now,
        // not at the last group before the idle spell.
        if before <= 0 && before + delta > 0 {
            self.progressed();
        }
    }

    /// Work handed to it and not answered yet.
    pub fn waiting(&self) -> i64 {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// True when every thread or task of it runs.
    pub fn is_up(&self) -> bool {
        self.running.load(Ordering::SeqCst) >= self.expected
    }

    /// `Err(why)` when it is not running, or has made no progress for
    /// longer than its stall limit while work waits.
    pub fn verdict(&self) -> Result<(), String> {
        if !self.is_up() {
            return Err(format!("the {} is not running", self.name));
        }
        let waiting = self.pending.load(Ordering::Relaxed);
        let idle_ms = now_ms().saturating_sub(self.last_progress_ms.load(Ordering::Relaxed));
        if waiting > 0 && idle_ms > u64::try_from(self.stall_after.as_millis()).unwrap_or(u64::MAX)
        {
            return Err(format!(
                "the {} has made no progress for {} s with {waiting} request(s) waiting",
                self.name,
                idle_ms / 1000
            ));
        }
        Ok(())
    }
}

/// Runs `unit` on this thread again and again until it returns: a panic
/// is logged and counted, and `unit` starts afresh after a short pause.
pub fn supervise_thread(component: &Component, mut unit: impl FnMut()) {
    loop {
        component.started();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut unit));
        component.stopped();
        match result {
            Ok(()) => return,
            Err(_) => {
                component.restarted();
                tracing::error!(component = component.name, "panicked; restarting it");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_is_down_when_not_running_and_stalled_when_idle_with_work() {
        let c = Component::new("writer", 1, Duration::from_millis(0));
        assert!(c.verdict().unwrap_err().contains("not running"));
        c.started();
        assert!(c.verdict().is_ok());
        c.pending(1);
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.verdict().unwrap_err().contains("no progress"));
        c.pending(-1);
        assert!(c.verdict().is_ok());
        c.stopped();
        assert!(!c.is_up());
    }

    #[test]
    fn work_arriving_after_an_idle_spell_is_not_a_stall() {
        let c = Component::new("writer", 1, Duration::from_millis(50));
        c.started();
        std::thread::sleep(Duration::from_millis(80));
        c.pending(1);
        assert!(c.verdict().is_ok(), "idle is not stalled");
        std::thread::sleep(Duration::from_millis(80));
        assert!(c.verdict().is_err(), "waiting with no progress is");
    }

    #[test]
    fn a_panicking_unit_is_restarted_until_it_returns() {
        let c = Component::new("worker", 1, Duration::from_secs(60));
        let mut runs = 0;
        supervise_thread(&c, || {
            runs += 1;
            if runs < 3 {
                panic!("boom {runs}");
            }
        });
        assert_eq!(runs, 3);
        assert_eq!(c.restarts(), 2);
        assert!(!c.is_up(), "it returned: stopped");
    }
}
