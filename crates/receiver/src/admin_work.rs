//! Admin database work (history pages and API, searches, rule previews) on
//! threads of its own.
//!
//! An admin's heaviest reads are CPU work: a preview evaluates a rule over
//! thousands of stored events, a search page reads and serialises hundreds.
//! They run on one thread less than the cores (at least one), so that
//! however many admins send at once, webhooks keep a core; the rest wait
//! their turn in order. (Before, `with_db` ran on actix's shared blocking
//! pool behind a semaphore, and the rule endpoints, previews among them, on
//! that pool unbounded.) A lower CPU priority for these threads (nice 10)
//! was tried and left out: nice is machine-wide, so on a busy host admin
//! work crawled behind every other process, not only behind webhooks, and a
//! 100,000-event export timed out under the test suite's parallel load.

use std::sync::{mpsc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// The admin threads stopped (they do not, short of a bug): the caller
/// answers 503.
#[derive(Debug)]
pub struct Stopped;

/// Runs `work` on an admin thread and returns what it returned. At most
/// [`threads`] run at once; the rest wait their turn in order.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stopped> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // A dropped receiver (the client went away) is not an error.
        let _ = answer.send(work());
    });
    queue()
        .lock()
        .map_err(|_| Stopped)?
        .send(job)
        .map_err(|_| Stopped)?;
    // A panic in `work` drops `answer`: the caller gets `Stopped`.
    answered.await.map_err(|_| Stopped)
}

/// The queue of the admin threads, started on first use.
fn queue() -> &'static Mutex<mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, jobs) = mpsc::channel::<Job>();
        let jobs = std::sync::Arc::new(Mutex::new(jobs));
        for n in 0..threads() {
            let jobs = std::sync::Arc::clone(&jobs);
            let spawned = std::thread::Builder::new()
                .name(format!("hookline-admin-{n}"))
                .spawn(move || work_loop(&jobs));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start an admin thread");
            }
        }
        Mutex::new(sender)
    })
}

/// How many admin threads run: one less than the cores, at least one.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .max(1)
}

fn work_loop(jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panicking job (a bug) must not take the thread with it.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("an admin request panicked; answered 503");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn work_runs_on_an_admin_thread_and_answers() {
        let name = run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap_or_else(|_| panic!("the admin threads stopped"));
        assert!(name.is_some_and(|n| n.starts_with("hookline-admin-")));
    }

    #[actix_web::test]
    async fn a_panicking_job_answers_stopped_and_the_threads_go_on() {
        let failed = run(|| -> u8 { panic!("a bug") }).await;
        assert!(failed.is_err());
        for n in 0..4u8 {
            let answer = run(move || n * 2).await;
            assert_eq!(answer.ok(), Some(n * 2));
        }
    }
}
