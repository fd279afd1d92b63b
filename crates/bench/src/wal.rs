//! The SQLite write-ahead log's size while the ingest benchmark runs: its
//! largest and, a moment after the load, its size at rest.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Samples the size of `PATH-wal` every 10 ms on a thread of its own.
pub struct Sampler {
    path: String,
    largest: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// What the sampler saw.
pub struct WalSizes {
    largest: u64,
    after: u64,
}

fn size(path: &str) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

impl Sampler {
    /// `None` unless `database_url` is a SQLite file.
    pub fn start(database_url: &str) -> Option<Sampler> {
        let file = database_url.strip_prefix("sqlite://")?;
        let path = format!("{file}-wal");
        let largest = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, largest, stop) = (path.clone(), Arc::clone(&largest), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    largest.fetch_max(size(&path), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Some(Sampler {
            path,
            largest,
            stop,
            thread,
        })
    }

    /// Stops sampling; waits two seconds and reads the size at rest.
    pub fn finish(self) -> WalSizes {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        std::thread::sleep(Duration::from_secs(2));
        WalSizes {
            largest: self.largest.load(Ordering::Relaxed),
            after: size(&self.path),
        }
    }
}

impl WalSizes {
    pub fn print(&self) {
        let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        println!(
            "  SQLite write-ahead log: largest {:.1} MiB during the runs (bound 64 MiB), {:.1} MiB 2 s after",
            mb(self.largest),
            mb(self.after)
        );
    }
}
