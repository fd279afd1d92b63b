//! The server's CPU time, read from Linux's per-thread scheduler counters
//! (`/proc/PID/task/TID/schedstat`: nanoseconds on a CPU), so that a run
//! can report CPU per request: steadier than requests per second on a
//! shared machine, and it shows which thread is the bottleneck.

use std::collections::BTreeMap;

/// CPU nanoseconds so far, per thread id, with the thread's role.
#[derive(Clone, Debug, Default)]
pub struct Sample(BTreeMap<String, (&'static str, u64)>);

impl Sample {
    /// Reads every thread of `pid`; empty where `/proc` has no such data.
    pub fn take(pid: u32) -> Sample {
        let mut threads = BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Sample(threads);
        };
        for task in tasks.filter_map(Result::ok) {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let nanos = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok());
            if let Some(nanos) = nanos {
                let tid = task.file_name().to_string_lossy().into_owned();
                threads.insert(tid, (group(name.trim()), nanos));
            }
        }
        Sample(threads)
    }

    /// CPU microseconds each thread role spent between `self` and `later`
    /// (threads that started meanwhile count from zero; a thread that
    /// ended meanwhile is missing, as `/proc` forgets it).
    pub fn until(&self, later: &Sample) -> BTreeMap<String, f64> {
        let mut used = BTreeMap::new();
        for (tid, (role, nanos)) in &later.0 {
            let before = self.0.get(tid).map_or(0, |(_, nanos)| *nanos);
            *used.entry((*role).to_owned()).or_default() +=
                nanos.saturating_sub(before) as f64 / 1000.0;
        }
        used
    }
}

/// Threads grouped by role: numbered threads of one kind count together.
fn group(name: &str) -> &'static str {
    if name.starts_with("hookline-writer") {
        "writer"
    } else if name.starts_with("actix") {
        "http"
    } else {
        "other"
    }
}

/// "server CPU per request 21 µs (http 19, other 2, writer 0)".
pub fn describe(used: &BTreeMap<String, f64>, requests: u64) -> Option<String> {
    let total: f64 = used.values().sum();
    if requests == 0 || total == 0.0 {
        return None;
    }
    let per = |micros: f64| micros / requests as f64;
    let parts: Vec<String> = used
        .iter()
        .map(|(name, micros)| format!("{name} {:.0}", per(*micros)))
        .collect();
    Some(format!(
        "server CPU per request {:.0} µs ({})",
        per(total),
        parts.join(", ")
    ))
}
