//! Every setting of hookline, defined once. The table below gives each
//! setting's file key, type, group, default and help; from it come the
//! command-line flags (`--outbox-poll-ms`), the environment variables
//! (`HOOKLINE_OUTBOX_POLL_MS`), the keys of the configuration file, the
//! range checks, `config show`, `hookline.example.toml` and README's
//! settings table (src/config.rs: layering and the generated texts).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which commands use a setting: each command takes the groups it needs
/// (flags, environment and file keys of the others are not read).
pub mod group {
    pub const DATABASE: u32 = 1;
    pub const HTTP: u32 = 1 << 1;
    pub const MAIL: u32 = 1 << 2;
    pub const TEMPLATES: u32 = 1 << 3;
    pub const OUTBOX: u32 = 1 << 4;
    pub const TIMERS: u32 = 1 << 5;
    pub const RETENTION: u32 = 1 << 6;
    pub const POLICY: u32 = 1 << 7;
    pub const STORAGE: u32 = 1 << 8;
    /// Every command logs.
    pub const LOG: u32 = 1 << 9;
    pub const ALL: u32 = (1 << 10) - 1;
}

/// How a setting is written and checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Text,
    /// A URL: `config show` hides its password.
    Url,
    /// A secret: `config show` masks it.
    Secret,
    /// Comma-separated secrets as a flag or variable; a string or a list
    /// in the file; masked by `config show`.
    Secrets,
    /// Comma-separated as a flag or variable; a list in the file.
    List,
    /// A whole number from `min` to `max`.
    Whole {
        min: i64,
        max: i64,
        unit: &'static str,
    },
    /// A number from `min` to `max`.
    Number {
        min: f64,
        max: f64,
        unit: &'static str,
    },
    /// One of these words.
    Choice(&'static [&'static str]),
}

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// The file key; the flag and environment variable are made from it.
    pub key: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub group: u32,
    /// The built-in value, written as a flag would give it (none: unset).
    pub default: Option<&'static str>,
    /// What leaving a setting without default unset means.
    pub unset: &'static str,
    /// A value (TOML) for the commented-out line of the example file.
    pub example: &'static str,
}

impl Setting {
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }

    pub fn env(&self) -> String {
        format!("HOOKLINE_{}", self.key.to_uppercase())
    }

    /// `key (--flag / ENV)`, for errors.
    pub fn named(&self) -> String {
        format!("{} ({} / {})", self.key, self.flag(), self.env())
    }

    /// The help text on one line, without the doc comment's spaces.
    pub fn help(&self) -> String {
        self.help.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// "(10 to 60000 ms)", the range of a number.
    pub fn range(&self) -> Option<String> {
        match self.kind {
            Kind::Whole { min, max, unit } => Some(format!("{min} to {max}{unit}")),
            Kind::Number { min, max, unit } => Some(format!("{min} to {max}{unit}")),
            Kind::Choice(words) => Some(
                words
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
            _ => None,
        }
    }

    pub fn is_list(&self) -> bool {
        matches!(self.kind, Kind::List | Kind::Secrets)
    }
}

/// The setting of a file key.
pub fn find(key: &str) -> Option<&'static Setting> {
    TABLE.iter().find(|s| s.key == key)
}

macro_rules! optional {
    () => {
        None
    };
    ($value:literal) => {
        Some($value)
    };
}

macro_rules! text_or_empty {
    () => {
        ""
    };
    ($value:literal) => {
        $value
    };
}

/// The table and the typed struct, from one list.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty, $group:ident, $kind:expr
            $(, default $default:literal)?
            $(, unset $unset:literal, example $example:literal)?;
    )+) => {
        /// The effective settings of a command: built-in defaults < file <
        /// `HOOKLINE_*` environment < flags.
        #[derive(Clone, Debug, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
        }

        /// Every setting, in the order the example file and README list
        /// them.
        pub const TABLE: &[Setting] = &[$(
            Setting {
                key: stringify!($key),
                help: concat!($($doc),+),
                kind: $kind,
                group: group::$group,
                default: optional!($($default)?),
                unset: text_or_empty!($($unset)?),
                example: text_or_empty!($($example)?),
            },
        )+];
    };
}

settings! {
    /// Address to listen on (port 0 picks a free port).
    listen: String, HTTP, Kind::Text, default "127.0.0.1:8080";

    /// sqlite://PATH (embedded) or postgres://USER[:PASSWORD]@HOST[:PORT]/DB.
    database_url: String, DATABASE, Kind::Url, default "sqlite://hookline-data/hookline.db";

    /// Accepted webhook token(s), comma-separated (rotation); at least 32
    /// characters each.
    webhook_token: Vec<String>, HTTP, Kind::Secrets,
        unset "generated on first start, kept in the database and printed (`hookline webhook-token show`)",
        example "\"a-long-random-secret-of-32-characters-or-more\"";

    /// Accepted admin token(s) for the API and the pages, comma-separated;
    /// at least 32 characters each.
    admin_token: Vec<String>, HTTP, Kind::Secrets,
        unset "generated on first start, printed once, kept only as a salted hash",
        example "\"another-long-random-secret-of-32-characters\"";

    /// Largest webhook body accepted, in bytes.
    max_body_bytes: usize, HTTP, Kind::Whole { min: 1024, max: 268_435_456, unit: " bytes" },
        default "1048576";

    /// A webhook body must arrive within this many seconds, or the request
    /// is answered 408.
    body_timeout_seconds: u64, HTTP, Kind::Whole { min: 1, max: 3600, unit: " s" },
        default "10";

    /// Folder for hookline's files (the .eml outbox when no SMTP server is
    /// set).
    data_dir: PathBuf, MAIL, Kind::Text, default "hookline-data";

    /// SMTP server: smtp://[USER:PASS@]HOST[:PORT] (STARTTLS when offered),
    /// smtps://..., or smtp://...?tls=required.
    smtp_url: Option<String>, MAIL, Kind::Url,
        unset "none: emails are written as .eml files to DATA_DIR/outbox",
        example "\"smtp://user:password@smtp.example.com:587\"";

    /// The From of every email.
    mail_from: String, MAIL, Kind::Text, default "hookline <hookline@localhost>";

    /// hookline's address as users reach it, for links in emails and the
    /// secure flag of the session cookie (https).
    public_url: Option<String>, HTTP, Kind::Text,
        unset "http://LISTEN (the start-up banner warns: recipients elsewhere cannot open such links)",
        example "\"https://hookline.example.com\"";

    /// The time zone the admin pages show times in (an IANA name); each
    /// time's exact UTC is in its tooltip.
    time_zone: String, HTTP, Kind::Text, default "UTC";

    /// A folder of email templates (NAME.subject.hbs, NAME.text.hbs,
    /// NAME.html.hbs) and page templates (pages/NAME.hbs) that override or
    /// add to the built-in ones.
    templates_dir: Option<PathBuf>, TEMPLATES, Kind::Text,
        unset "none: the built-in templates",
        example "\"templates\"";

    /// Attempts to send an email before it is given up as dead.
    smtp_max_attempts: i32, OUTBOX, Kind::Whole { min: 1, max: 100, unit: "" }, default "8";

    /// The first retry of a failed email waits this many seconds; each next
    /// one twice as long, at most 7 days.
    smtp_retry_base_seconds: f64, OUTBOX, Kind::Number { min: 0.01, max: 86_400.0, unit: " s" },
        default "340.0";

    /// How often the outbox looks for due emails besides being woken by
    /// ingest, in milliseconds.
    outbox_poll_ms: u64, OUTBOX, Kind::Whole { min: 10, max: 60_000, unit: " ms" }, default "1000";

    /// How long an email claimed for sending stays this instance's before
    /// another may send it, in seconds; renewed while the send is under
    /// way. A killed instance's emails go out from another after about this
    /// long.
    outbox_lease_seconds: u64, OUTBOX, Kind::Whole { min: 1, max: 86_400, unit: " s" },
        default "60";

    /// How often the timer worker (time-based alerts) looks for due timers,
    /// in milliseconds.
    timer_poll_ms: u64, TIMERS, Kind::Whole { min: 10, max: 60_000, unit: " ms" }, default "1000";

    /// A timer overdue by more than this many seconds when hookline comes to
    /// it (it was not running) is not sent on its own: those go into one
    /// "missed while hookline was down" email per rule.
    timer_max_lateness_seconds: u64, TIMERS, Kind::Whole { min: 1, max: 2_592_000, unit: " s" },
        default "3600";

    /// Delete events (and conversations and emails) older than this many
    /// days; 0 keeps everything forever.
    retention_days: u32, RETENTION, Kind::Whole { min: 0, max: 36_500, unit: " days" },
        default "0";

    /// How often the retention task runs, in seconds.
    retention_interval_seconds: u64, RETENTION, Kind::Whole { min: 1, max: 2_592_000, unit: " s" },
        default "3600";

    /// Domains alert emails may go to, comma-separated (a domain admits its
    /// subdomains); a recipient elsewhere is skipped with the reason. Empty:
    /// any domain, and then whoever holds the webhook token decides who
    /// gets mail from payload data.
    allowed_recipient_domains: Vec<String>, POLICY, Kind::List,
        unset "none: any domain",
        example "[\"example.com\", \"example.org\"]";

    /// At most this many emails per recipient per hour, over all rules;
    /// more are suppressed with the reason. 0: no cap.
    recipient_hourly_cap: u32, POLICY, Kind::Whole { min: 0, max: 1_000_000, unit: "" },
        default "60";

    /// When set, /metrics requires "Authorization: Bearer <token>" (at
    /// least 32 characters).
    metrics_token: Option<String>, HTTP, Kind::Secret,
        unset "none: /metrics is open",
        example "\"a-long-random-secret-for-prometheus-scrapes\"";

    /// SQLite: the bound on the write-ahead log file, in MiB. Under
    /// sustained ingest the log is checkpointed and started over whenever
    /// it passes a third of this.
    sqlite_wal_limit_mb: u64, STORAGE, Kind::Whole { min: 1, max: 65_536, unit: " MiB" },
        default "64";

    /// Log output: human-readable lines or JSON objects.
    log_format: LogFormat, LOG, Kind::Choice(&["human", "json"]), default "human";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_default_or_says_what_unset_means() {
        for setting in TABLE {
            let described = match setting.default {
                Some(_) => setting.unset.is_empty() && setting.example.is_empty(),
                None => !setting.unset.is_empty() && !setting.example.is_empty(),
            };
            assert!(
                described,
                "{}: a default, or what unset means and an example",
                setting.key
            );
            assert!(setting.help().ends_with('.'), "{}", setting.key);
        }
    }
}
