//! The command line. Every setting has a flag and a `HOOKLINE_*`
//! environment variable; the flag wins.

use std::path::PathBuf;

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
    /// Check, import or export alert rules (TOML).
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// List, show or render the email templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Send one email to check the mail settings.
    SendTestEmail(TestEmailArgs),
    /// Delete events, conversations and emails older than a date.
    Purge {
        /// A date (2024-01-31) or time (RFC 3339); everything before it goes.
        #[arg(long)]
        before: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Delete everything stored about one visitor, and report the counts.
    Erase {
        /// The visitor key (visitor.key in the payloads).
        #[arg(long)]
        visitor: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Show the effective configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Replace the generated admin token with a new one and print it
    /// (ends every admin session; running servers use it within 2 s).
    ResetAdminToken(DatabaseArgs),
    /// The generated webhook token (the banner shows it masked after the
    /// first start).
    WebhookToken {
        #[command(subcommand)]
        command: WebhookTokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// The templates and where each part comes from.
    List(TemplateArgs),
    /// The source of a template's subject, text and HTML parts.
    Show {
        name: String,
        #[command(flatten)]
        templates: TemplateArgs,
    },
    /// Render a template for the last event of a file (the earlier events
    /// give the conversation and transcript), or for a shipped sample.
    Render {
        name: String,
        /// The events: `{"events": [...]}`, a list of items, or one item.
        #[arg(long, conflicts_with = "sample", required_unless_present = "sample")]
        event: Option<PathBuf>,
        /// A shipped sample by name or number (`24`, `24-assignee_change`).
        #[arg(long)]
        sample: Option<String>,
        /// Print the HTML part too.
        #[arg(long)]
        html: bool,
        #[command(flatten)]
        templates: TemplateArgs,
    },
    /// The variables templates can use (from the samples' contexts).
    Variables,
}

#[derive(Debug, Subcommand)]
pub enum WebhookTokenCommand {
    /// Print the generated webhook token, to paste into Swiftsell.
    Show(DatabaseArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (defaults < file < environment <
    /// flags), secrets masked.
    Show(ServeArgs),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a rules file without changing anything.
    Check {
        file: PathBuf,
        #[command(flatten)]
        templates: TemplateArgs,
        /// The domains mail may go to, as `serve` has them: recipients
        /// outside them are reported.
        #[arg(
            long,
            env = "HOOKLINE_ALLOWED_RECIPIENT_DOMAINS",
            value_delimiter = ','
        )]
        allowed_recipient_domains: Vec<String>,
    },
    /// Validate a rules file, then create or replace its rules by name
    /// (all or nothing).
    Import {
        file: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        templates: TemplateArgs,
    },
    /// Dry run: what the rules of a file would do with the events of a
    /// file (a Swiftsell delivery, such as the samples), without storing
    /// or sending anything: whether each rule fires or which condition
    /// failed, the recipients after the recipient policy, the throttle and
    /// cap decisions, and the rendered subject and text.
    Test {
        file: PathBuf,
        /// The events: `{"events": [...]}`, a list of items, or one item.
        #[arg(long, conflicts_with = "sample", required_unless_present = "sample")]
        event: Option<PathBuf>,
        /// A shipped sample by name or number (`24`, `24-assignee_change`).
        #[arg(long)]
        sample: Option<String>,
        /// A JSON object of `conversation.*` fields as rules see them
        /// (`{"assignee": {"email": "a@example.com"}}`) that override the
        /// state the events give.
        #[arg(long)]
        conversation_state: Option<PathBuf>,
        #[command(flatten)]
        templates: TemplateArgs,
        #[arg(
            long,
            env = "HOOKLINE_ALLOWED_RECIPIENT_DOMAINS",
            value_delimiter = ','
        )]
        allowed_recipient_domains: Vec<String>,
        #[arg(long, env = "HOOKLINE_RECIPIENT_HOURLY_CAP", default_value_t = hookline_notifier::policy::DEFAULT_HOURLY_CAP)]
        recipient_hourly_cap: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print every stored rule as TOML that imports back to the same rules.
    Export {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// A folder of NAME.subject.hbs, NAME.text.hbs and NAME.html.hbs files
    /// that override or add to the built-in email templates.
    #[arg(long, env = "HOOKLINE_TEMPLATES_DIR")]
    pub templates_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MailArgs {
    /// SMTP server: smtp://[USER:PASS@]HOST[:PORT], smtps://..., or
    /// smtp://...?tls=required. Default: none, emails are written as .eml
    /// files to DATA_DIR/outbox.
    #[arg(long, env = "HOOKLINE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The From of every email.
    #[arg(
        long,
        env = "HOOKLINE_MAIL_FROM",
        default_value = "hookline <hookline@localhost>"
    )]
    pub mail_from: String,

    /// Folder for hookline's files (the .eml outbox when no SMTP is set).
    #[arg(long, env = "HOOKLINE_DATA_DIR", default_value = "hookline-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct TestEmailArgs {
    /// The address to send to.
    #[arg(long)]
    pub to: String,

    #[command(flatten)]
    pub mail: MailArgs,
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// sqlite://PATH (embedded, the default) or postgres://USER[:PASSWORD]@HOST[:PORT]/DB.
    #[arg(long, env = "HOOKLINE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file with any of these settings (see hookline.example.toml);
    /// environment variables and flags override it.
    #[arg(long, env = "HOOKLINE_CONFIG")]
    pub config: Option<PathBuf>,

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

    /// Accepted admin token(s) for the API and the pages, comma-separated.
    /// Default: a random token generated on first start, kept in the
    /// database and printed once.
    #[arg(
        long,
        env = "HOOKLINE_ADMIN_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_token: Vec<String>,

    /// Largest webhook body accepted, in bytes.
    #[arg(long, env = "HOOKLINE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// A webhook body must arrive within this many seconds (408 after).
    #[arg(long, env = "HOOKLINE_BODY_TIMEOUT_SECONDS", default_value_t = 10)]
    pub body_timeout_seconds: u64,

    #[command(flatten)]
    pub mail: MailArgs,

    #[command(flatten)]
    pub templates: TemplateArgs,

    /// hookline's address as users reach it, for links in emails
    /// (default: http://LISTEN).
    #[arg(long, env = "HOOKLINE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Attempts to send an email before it is given up as dead.
    #[arg(long, env = "HOOKLINE_SMTP_MAX_ATTEMPTS", default_value_t = 8)]
    pub smtp_max_attempts: i32,

    /// The first retry of a failed email waits this many seconds; each next
    /// one twice as long (8 attempts over about a day by default).
    #[arg(
        long,
        env = "HOOKLINE_SMTP_RETRY_BASE_SECONDS",
        default_value_t = 340.0
    )]
    pub smtp_retry_base_seconds: f64,

    /// How often the outbox looks for due emails besides being woken by
    /// ingest, in milliseconds.
    #[arg(long, env = "HOOKLINE_OUTBOX_POLL_MS", default_value_t = 1000)]
    pub outbox_poll_ms: u64,

    /// How long an email claimed for sending stays this instance's before
    /// another may send it, in seconds; renewed while the send is under way.
    /// A killed instance's emails go out from another after about this long.
    #[arg(
        long,
        env = "HOOKLINE_OUTBOX_LEASE_SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub outbox_lease_seconds: u64,

    /// How often the timer worker looks for due timers (time-based alerts),
    /// in milliseconds.
    #[arg(long, env = "HOOKLINE_TIMER_POLL_MS", default_value_t = 1000)]
    pub timer_poll_ms: u64,

    /// A timer overdue by more than this many seconds when hookline comes
    /// to it (it was not running) is not sent on its own: such timers go
    /// into one "missed while hookline was down" email per rule.
    #[arg(
        long,
        env = "HOOKLINE_TIMER_MAX_LATENESS_SECONDS",
        default_value_t = 3600
    )]
    pub timer_max_lateness_seconds: u64,

    /// Delete events, conversations and emails older than this many days
    /// (0: keep forever).
    #[arg(long, env = "HOOKLINE_RETENTION_DAYS", default_value_t = 0)]
    pub retention_days: u32,

    /// How often the retention task runs, in seconds.
    #[arg(
        long,
        env = "HOOKLINE_RETENTION_INTERVAL_SECONDS",
        default_value_t = 3600
    )]
    pub retention_interval_seconds: u64,

    /// Domains alert emails may go to, comma-separated (a domain admits its
    /// subdomains); recipients elsewhere are skipped. Default: any domain.
    #[arg(
        long,
        env = "HOOKLINE_ALLOWED_RECIPIENT_DOMAINS",
        value_delimiter = ','
    )]
    pub allowed_recipient_domains: Vec<String>,

    /// At most this many emails per recipient per hour over all rules;
    /// more are suppressed (0: no cap).
    #[arg(long, env = "HOOKLINE_RECIPIENT_HOURLY_CAP", default_value_t = 60)]
    pub recipient_hourly_cap: u32,

    /// When set, `/metrics` requires `Authorization: Bearer <this token>`
    /// (at least 32 characters).
    #[arg(long, env = "HOOKLINE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// SQLite: the bound on the write-ahead log file, in MiB. The log is
    /// checkpointed and started over whenever it passes a third of it.
    #[arg(
        long,
        env = "HOOKLINE_SQLITE_WAL_LIMIT_MB",
        default_value_t = 64,
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    pub sqlite_wal_limit_mb: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}
