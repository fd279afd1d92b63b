//! Building and starting the real `hookline` binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use hookline_storage::{events, Database};

pub const TOKEN: &str = "bench-webhook-token-0123456789abcdef0123";
pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef01234";

/// Builds `hookline` in release mode (a no-op when it is current) and
/// returns its path, next to this benchmark's own binary.
pub fn build_release_binary() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "hookline"])
        .status()
        .context("running cargo build --release --bin hookline")?;
    if !status.success() {
        bail!("cargo build --release --bin hookline failed");
    }
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .context("benchmark binary has no folder")?
        .join("hookline");
    if !binary.exists() {
        bail!("{} not found after the build", binary.display());
    }
    Ok(binary)
}

/// A running hookline, killed on drop.
pub struct Server {
    child: Child,
    pub address: SocketAddr,
    _data_dir: tempfile::TempDir,
}

impl Server {
    pub fn start(binary: &PathBuf, database_url: &str) -> anyhow::Result<Server> {
        Server::start_with(binary, database_url, &[])
    }

    /// [`Server::start`] with more `serve` flags.
    pub fn start_with(
        binary: &PathBuf,
        database_url: &str,
        extra: &[&str],
    ) -> anyhow::Result<Server> {
        let data_dir = tempfile::tempdir()?;
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--webhook-token", TOKEN])
            .args(extra)
            .args(["--admin-token", ADMIN_TOKEN])
            .args(["--database-url", database_url])
            .arg("--data-dir")
            .arg(data_dir.path())
            .env(
                "HOOKLINE_LOG",
                std::env::var("HOOKLINE_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting hookline")?;
        let stdout = child.stdout.take().context("hookline stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line?;
            if let Some(index) = line.find("listening on http://") {
                let address = line[index + "listening on http://".len()..]
                    .trim()
                    .parse()?;
                std::thread::spawn(move || for _ in lines {});
                return Ok(Server {
                    child,
                    address,
                    _data_dir: data_dir,
                });
            }
        }
        bail!("hookline exited before listening")
    }

    /// The server's process id (for its CPU counters).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stored_events(&self, database_url: &str) -> anyhow::Result<i64> {
        let db = Database::open(database_url)?;
        let mut conn = db.conn()?;
        Ok(events::count(&mut conn)?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
