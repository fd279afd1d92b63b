//! Gives memory back to the system after bursts.
//!
//! glibc's allocator keeps freed memory in its arenas: after a burst of
//! large deliveries (each parsed, prepared and committed) a process that
//! idles at a few MB of anonymous memory kept about 250 MB, and still 150 MB
//! a minute later. A thread looks at the process's anonymous memory every
//! [`EVERY`]; when it has grown by more than [`SLACK`] since the last look
//! after a trim, it asks the allocator to return what is free
//! (`malloc_trim`). The SQLite writer gives its page cache (up to 32 MB)
//! back once idle for a second (`storage::writer`), so that is freed too;
//! other live memory stays. Only on Linux with glibc; elsewhere nothing
//! runs.

use std::time::Duration;

/// How often the anonymous memory is looked at.
const EVERY: Duration = Duration::from_secs(2);

/// Growth over the last trimmed size that is worth a trim.
const SLACK: u64 = 32 * 1024 * 1024;

/// How long after a trim memory still [`SLACK`] above the smallest size
/// seen after one is trimmed again (a burst's memory, freed once it ended;
/// or live memory, and then the trim finds little, at little cost).
const SETTLE: Duration = Duration::from_secs(5);

/// Starts the trimming thread (Linux with glibc only).
pub fn start_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("hookline-trim".to_owned())
            .spawn(trim_loop);
        if let Err(error) = spawned {
            tracing::warn!(%error, "memory: cannot start the trimming thread; freed memory stays with the process");
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_loop() {
    let Some(start) = anonymous_bytes() else {
        return;
    };
    // The size after the last trim, and the smallest ever seen after one.
    let (mut last, mut floor) = (start, start);
    let mut trimmed = std::time::Instant::now();
    loop {
        std::thread::sleep(EVERY);
        let Some(now) = anonymous_bytes() else {
            return;
        };
        // Grown since the last trim; or still well above the smallest size
        // a while after it (what a burst freed once it ended).
        let grown = now > last + SLACK;
        let settled_high = now > floor + SLACK && trimmed.elapsed() >= SETTLE;
        if !grown && !settled_high {
            last = last.min(now);
            continue;
        }
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim only walks the allocator's own free lists,
        // under its locks; it takes no pointer of ours.
        unsafe {
            libc::malloc_trim(0);
        }
        let after = anonymous_bytes().unwrap_or(now);
        tracing::debug!(
            before_mb = now / 1_048_576,
            after_mb = after / 1_048_576,
            micros = started.elapsed().as_micros() as u64,
            "memory: freed memory returned to the system"
        );
        last = after;
        floor = floor.min(after);
        trimmed = std::time::Instant::now();
    }
}

/// `RssAnon` of this process, in bytes.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn anonymous_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
