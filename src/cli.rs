//! The command line. Every setting has a flag and a `HOOKLINE_*`
//! environment variable; the flag wins.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The SQLite file used when no database is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://hookline-data/hookline.db";

#[derive(Debug, Parser)]
#[command(
    name = "hookline",
    version,
    about = "Receives Swiftsell webhook events and stores them durably."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log output: human-readable lines or JSON objects.
    #[arg(long, global = true, env = "HOOKLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook receiver (runs pending migrations first).
    Serve(ServeArgs),
    /// Run pending database migrations and exit.
    Migrate(DatabaseArgs),
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// sqlite://PATH (embedded, the default) or postgres://USER[:PASSWORD]@HOST[:PORT]/DB.
    #[arg(long, env = "HOOKLINE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HOOKLINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Accepted webhook token(s), comma-separated. Default: a random token
    /// generated on first start and kept in the database.
    #[arg(
        long,
        env = "HOOKLINE_WEBHOOK_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_token: Vec<String>,

    /// Largest webhook body accepted, in bytes.
    #[arg(long, env = "HOOKLINE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}
