//! Admin database work (history pages and API, searches, rule previews) on
//! threads of its own, at a lower CPU priority than webhooks.
//!
//! An admin's heaviest reads are CPU work: a preview evaluates a rule over
//! tens of thousands of stored events, a search page reads and serialises
//! hundreds. On a small machine they competed for the same cores as the
//! webhook path (HTTP workers, the writer thread) and took its p99 up
//! several-fold. Here they run on as many threads as there are cores (at
//! least two, so that one long preview does not hold up every page), so at
//! most that many run at once, each thread at nice [`ADMIN_NICE`] (Linux):
//! when webhooks need the CPU the scheduler gives it to them first, and
//! when the machine is idle admin work runs at full speed. Webhooks never
//! wait for these threads.

use std::sync::{mpsc, Mutex, OnceLock};

/// The nice value of admin threads (Linux; 0 is the default, 19 the
/// lowest). At 10 an admin thread weighs about a tenth of a webhook thread
/// when both want a core, so a busy ingest slows admin pages rather than
/// the reverse, without starving them.
pub const ADMIN_NICE: i32 = 10;

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
                .spawn(move || {
                    lower_priority();
                    work_loop(&jobs);
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start an admin thread");
            }
        }
        Mutex::new(sender)
    })
}

/// How many admin threads run: the cores, at least two.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .max(2)
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

/// Lowers the calling thread's CPU priority to [`ADMIN_NICE`] (Linux: nice
/// is per thread). Elsewhere, or if refused, admin work runs at normal
/// priority, bounded in number all the same.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn lower_priority() {
    // SAFETY: setpriority and gettid only read their integer arguments;
    // raising one's own nice value needs no privilege.
    let result =
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, ADMIN_NICE) };
    if result != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the admin threads' priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[actix_web::test]
    async fn work_runs_on_a_low_priority_admin_thread_and_answers() {
        let (name, nice) = run(|| {
            let name = std::thread::current().name().map(str::to_owned);
            // SAFETY: getpriority reads its integer arguments only.
            #[allow(unsafe_code)]
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            (name, nice)
        })
        .await
        .unwrap_or_else(|_| panic!("the admin threads stopped"));
        assert!(name.is_some_and(|n| n.starts_with("hookline-admin-")));
        assert_eq!(nice, ADMIN_NICE);
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
