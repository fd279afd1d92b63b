//! The configuration file: `--config hookline.toml` holds any setting of
//! `serve`. Layering: built-in defaults < file < `HOOKLINE_*` environment <
//! flags. clap knows where each value came from; a value that is still the
//! default is replaced by the file's.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::ArgMatches;
use hookline_storage::redact_url;
use serde::{Deserialize, Serialize};

use crate::cli::{LogFormat, ServeArgs};

/// Every key the file may hold; an unknown key is an error naming it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub webhook_token: Option<String>,
    pub admin_token: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub body_timeout_seconds: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub public_url: Option<String>,
    pub templates_dir: Option<PathBuf>,
    pub smtp_max_attempts: Option<i32>,
    pub smtp_retry_base_seconds: Option<f64>,
    pub outbox_poll_ms: Option<u64>,
    pub outbox_lease_seconds: Option<u64>,
    pub timer_poll_ms: Option<u64>,
    pub timer_max_lateness_seconds: Option<u64>,
    pub retention_days: Option<u32>,
    pub retention_interval_seconds: Option<u64>,
    pub allowed_recipient_domains: Option<Vec<String>>,
    pub recipient_hourly_cap: Option<u32>,
    pub metrics_token: Option<String>,
    pub sqlite_wal_limit_mb: Option<u64>,
    pub log_format: Option<LogFormat>,
}

impl FileSettings {
    pub fn load(path: &Path) -> anyhow::Result<FileSettings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the config file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }
}

/// True when the argument still has its built-in default (not given as a
/// flag or in the environment).
fn defaulted(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        None | Some(ValueSource::DefaultValue)
    )
}

fn split(tokens: &str) -> Vec<String> {
    tokens.split(',').map(str::to_owned).collect()
}

/// Fills every setting still at its default from the file. `top` holds the
/// global flags (the log format).
pub fn apply(
    args: &mut ServeArgs,
    matches: &ArgMatches,
    top: &ArgMatches,
    log_format: &mut LogFormat,
) -> anyhow::Result<()> {
    let Some(path) = args.config.clone() else {
        return Ok(());
    };
    let file = FileSettings::load(&path)?;
    macro_rules! layer {
        ($id:literal, $target:expr, $value:expr) => {
            if let Some(value) = $value {
                if defaulted(matches, $id) {
                    $target = value;
                }
            }
        };
    }
    layer!("listen", args.listen, file.listen);
    layer!(
        "database_url",
        args.database.database_url,
        file.database_url
    );
    layer!(
        "webhook_token",
        args.webhook_token,
        file.webhook_token.as_deref().map(split)
    );
    layer!(
        "admin_token",
        args.admin_token,
        file.admin_token.as_deref().map(split)
    );
    layer!("max_body_bytes", args.max_body_bytes, file.max_body_bytes);
    layer!(
        "body_timeout_seconds",
        args.body_timeout_seconds,
        file.body_timeout_seconds
    );
    layer!("data_dir", args.mail.data_dir, file.data_dir);
    layer!("smtp_url", args.mail.smtp_url, file.smtp_url.map(Some));
    layer!("mail_from", args.mail.mail_from, file.mail_from);
    layer!("public_url", args.public_url, file.public_url.map(Some));
    layer!(
        "templates_dir",
        args.templates.templates_dir,
        file.templates_dir.map(Some)
    );
    layer!(
        "smtp_max_attempts",
        args.smtp_max_attempts,
        file.smtp_max_attempts
    );
    layer!(
        "smtp_retry_base_seconds",
        args.smtp_retry_base_seconds,
        file.smtp_retry_base_seconds
    );
    layer!("outbox_poll_ms", args.outbox_poll_ms, file.outbox_poll_ms);
    layer!(
        "outbox_lease_seconds",
        args.outbox_lease_seconds,
        file.outbox_lease_seconds
    );
    layer!("timer_poll_ms", args.timer_poll_ms, file.timer_poll_ms);
    layer!(
        "timer_max_lateness_seconds",
        args.timer_max_lateness_seconds,
        file.timer_max_lateness_seconds
    );
    layer!("retention_days", args.retention_days, file.retention_days);
    layer!(
        "retention_interval_seconds",
        args.retention_interval_seconds,
        file.retention_interval_seconds
    );
    layer!(
        "allowed_recipient_domains",
        args.allowed_recipient_domains,
        file.allowed_recipient_domains
    );
    layer!(
        "recipient_hourly_cap",
        args.recipient_hourly_cap,
        file.recipient_hourly_cap
    );
    layer!(
        "metrics_token",
        args.metrics_token,
        file.metrics_token.map(Some)
    );
    layer!(
        "sqlite_wal_limit_mb",
        args.sqlite_wal_limit_mb,
        file.sqlite_wal_limit_mb
    );
    if let Some(format) = file.log_format {
        if defaulted(top, "log_format") {
            *log_format = format;
        }
    }
    Ok(())
}

fn mask(tokens: &[String]) -> Option<String> {
    (!tokens.is_empty()).then(|| {
        tokens
            .iter()
            .map(|_| "********")
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// A setting out of its range: which one, its ways in, the range, the value.
fn out_of_range(
    name: &str,
    flag_env: &str,
    range: &str,
    got: impl std::fmt::Display,
) -> anyhow::Error {
    anyhow::anyhow!("{name} ({flag_env}) must be {range}; got {got}")
}

/// Checks every numeric setting against its documented range, so that no
/// value is accepted that breaks something later (an overflow, a panic, a
/// worker that never runs). The error names the setting.
pub fn validate(args: &ServeArgs) -> anyhow::Result<()> {
    fn check<T: PartialOrd + std::fmt::Display + Copy>(
        value: T,
        min: T,
        max: T,
        name: &str,
        flag_env: &str,
        unit: &str,
    ) -> anyhow::Result<()> {
        if value < min || value > max {
            return Err(out_of_range(
                name,
                flag_env,
                &format!("between {min} and {max}{unit}"),
                value,
            ));
        }
        Ok(())
    }
    check(
        args.max_body_bytes,
        1_024,
        256 * 1024 * 1024,
        "max_body_bytes",
        "--max-body-bytes / HOOKLINE_MAX_BODY_BYTES",
        " bytes",
    )?;
    check(
        args.body_timeout_seconds,
        1,
        3_600,
        "body_timeout_seconds",
        "--body-timeout-seconds / HOOKLINE_BODY_TIMEOUT_SECONDS",
        " seconds",
    )?;
    check(
        args.smtp_max_attempts,
        1,
        100,
        "smtp_max_attempts",
        "--smtp-max-attempts / HOOKLINE_SMTP_MAX_ATTEMPTS",
        "",
    )?;
    let base = args.smtp_retry_base_seconds;
    if !base.is_finite() || !(0.01..=86_400.0).contains(&base) {
        return Err(out_of_range(
            "smtp_retry_base_seconds",
            "--smtp-retry-base-seconds / HOOKLINE_SMTP_RETRY_BASE_SECONDS",
            "between 0.01 and 86400 seconds (1 day)",
            base,
        ));
    }
    check(
        args.outbox_poll_ms,
        10,
        60_000,
        "outbox_poll_ms",
        "--outbox-poll-ms / HOOKLINE_OUTBOX_POLL_MS",
        " ms",
    )?;
    check(
        args.outbox_lease_seconds,
        1,
        86_400,
        "outbox_lease_seconds",
        "--outbox-lease-seconds / HOOKLINE_OUTBOX_LEASE_SECONDS",
        " seconds",
    )?;
    check(
        args.timer_poll_ms,
        10,
        60_000,
        "timer_poll_ms",
        "--timer-poll-ms / HOOKLINE_TIMER_POLL_MS",
        " ms",
    )?;
    check(
        args.timer_max_lateness_seconds,
        1,
        30 * 86_400,
        "timer_max_lateness_seconds",
        "--timer-max-lateness-seconds / HOOKLINE_TIMER_MAX_LATENESS_SECONDS",
        " seconds (30 days)",
    )?;
    check(
        args.sqlite_wal_limit_mb,
        1,
        65_536,
        "sqlite_wal_limit_mb",
        "--sqlite-wal-limit-mb / HOOKLINE_SQLITE_WAL_LIMIT_MB",
        " MiB",
    )?;
    check(
        args.retention_days,
        0,
        36_500,
        "retention_days",
        "--retention-days / HOOKLINE_RETENTION_DAYS",
        " days (100 years)",
    )?;
    check(
        args.retention_interval_seconds,
        1,
        30 * 86_400,
        "retention_interval_seconds",
        "--retention-interval-seconds / HOOKLINE_RETENTION_INTERVAL_SECONDS",
        " seconds",
    )?;
    check(
        args.recipient_hourly_cap,
        0,
        1_000_000,
        "recipient_hourly_cap",
        "--recipient-hourly-cap / HOOKLINE_RECIPIENT_HOURLY_CAP",
        "",
    )?;
    Ok(())
}

/// The effective settings as TOML, secrets masked.
pub fn show(args: &ServeArgs, log_format: LogFormat) -> String {
    let settings = FileSettings {
        listen: Some(args.listen.clone()),
        database_url: Some(redact_url(&args.database.database_url)),
        webhook_token: mask(&args.webhook_token),
        admin_token: mask(&args.admin_token),
        max_body_bytes: Some(args.max_body_bytes),
        body_timeout_seconds: Some(args.body_timeout_seconds),
        data_dir: Some(args.mail.data_dir.clone()),
        smtp_url: args.mail.smtp_url.as_deref().map(redact_url),
        mail_from: Some(args.mail.mail_from.clone()),
        public_url: args.public_url.clone(),
        templates_dir: args.templates.templates_dir.clone(),
        smtp_max_attempts: Some(args.smtp_max_attempts),
        smtp_retry_base_seconds: Some(args.smtp_retry_base_seconds),
        outbox_poll_ms: Some(args.outbox_poll_ms),
        outbox_lease_seconds: Some(args.outbox_lease_seconds),
        timer_poll_ms: Some(args.timer_poll_ms),
        timer_max_lateness_seconds: Some(args.timer_max_lateness_seconds),
        retention_days: Some(args.retention_days),
        retention_interval_seconds: Some(args.retention_interval_seconds),
        allowed_recipient_domains: Some(args.allowed_recipient_domains.clone()),
        recipient_hourly_cap: Some(args.recipient_hourly_cap),
        metrics_token: args.metrics_token.as_ref().map(|_| "********".to_owned()),
        sqlite_wal_limit_mb: Some(args.sqlite_wal_limit_mb),
        log_format: Some(log_format),
    };
    let mut text = toml::to_string(&settings).unwrap_or_default();
    if args.webhook_token.is_empty() {
        text.push_str("# webhook_token: generated and kept in the database\n");
    }
    if args.admin_token.is_empty() {
        text.push_str("# admin_token: generated and kept in the database\n");
    }
    if args.mail.smtp_url.is_none() {
        text.push_str("# smtp_url: none, emails are written to DATA_DIR/outbox\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::cli::{Cli, Command};

    const EXAMPLE: &str = include_str!("../hookline.example.toml");

    /// The example with every commented-out setting switched on.
    fn all_on() -> String {
        EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| !k.contains(' ')) =>
                {
                    rest.to_owned()
                }
                _ => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_example_names_every_setting_and_nothing_else() {
        let parsed: FileSettings =
            toml::from_str(&all_on()).expect("every key of the example is a setting");
        let value = serde_json::to_value(&parsed).expect("json");
        let missing: Vec<&String> = value
            .as_object()
            .expect("object")
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k)
            .collect();
        assert!(
            missing.is_empty(),
            "hookline.example.toml does not document {missing:?}"
        );
    }

    #[test]
    fn the_example_shows_the_defaults_of_the_code() {
        let example: FileSettings = toml::from_str(EXAMPLE).expect("example parses");
        let matches = Cli::command()
            .try_get_matches_from(["hookline", "serve"])
            .expect("defaults parse");
        let Command::Serve(defaults) = Cli::from_arg_matches(&matches).expect("cli").command else {
            panic!("not serve");
        };
        assert_eq!(example.listen.as_deref(), Some(defaults.listen.as_str()));
        assert_eq!(
            example.database_url.as_deref(),
            Some(defaults.database.database_url.as_str())
        );
        assert_eq!(example.max_body_bytes, Some(defaults.max_body_bytes));
        assert_eq!(
            example.body_timeout_seconds,
            Some(defaults.body_timeout_seconds)
        );
        assert_eq!(
            example.data_dir.as_deref(),
            Some(defaults.mail.data_dir.as_path())
        );
        assert_eq!(
            example.mail_from.as_deref(),
            Some(defaults.mail.mail_from.as_str())
        );
        assert_eq!(example.smtp_max_attempts, Some(defaults.smtp_max_attempts));
        assert_eq!(
            example.smtp_retry_base_seconds,
            Some(defaults.smtp_retry_base_seconds)
        );
        assert_eq!(example.outbox_poll_ms, Some(defaults.outbox_poll_ms));
        assert_eq!(
            example.outbox_lease_seconds,
            Some(defaults.outbox_lease_seconds)
        );
        assert_eq!(example.retention_days, Some(defaults.retention_days));
        assert_eq!(
            example.retention_interval_seconds,
            Some(defaults.retention_interval_seconds)
        );
        assert_eq!(
            example.recipient_hourly_cap,
            Some(defaults.recipient_hourly_cap)
        );
        assert_eq!(
            example.allowed_recipient_domains.as_deref(),
            Some(defaults.allowed_recipient_domains.as_slice())
        );
        assert_eq!(
            example.sqlite_wal_limit_mb,
            Some(defaults.sqlite_wal_limit_mb)
        );
        assert_eq!(example.log_format, Some(LogFormat::Human));
        // Settings without a default are commented out.
        assert!(
            example.webhook_token.is_none()
                && example.admin_token.is_none()
                && example.metrics_token.is_none()
        );
        assert!(
            example.smtp_url.is_none()
                && example.public_url.is_none()
                && example.templates_dir.is_none()
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let error =
            toml::from_str::<FileSettings>("listen = \"x\"\nlisten_adress = \"y\"\n").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `listen_adress`"),
            "{error}"
        );
    }
}
