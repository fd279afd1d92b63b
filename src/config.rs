//! Layering the settings of [`crate::settings::TABLE`]: built-in defaults <
//! the `--config` file < `HOOKLINE_*` environment < flags, each value
//! checked against its kind and range wherever it came from; and the texts
//! made from the table: `config show`, `hookline.example.toml` and
//! README's settings table.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use hookline_storage::redact_url;

use crate::settings::{Kind, Setting, Settings, TABLE};

/// A value as given: text (flag, environment, default) or from the file.
enum Given<'a> {
    Text(&'a [String]),
    File(&'a toml::Value),
}

/// Where a value came from, for errors.
fn source(setting: &Setting, given: &str, file: Option<&Path>) -> String {
    match given {
        "flag" => format!("from {}", setting.flag()),
        "env" => format!("from {}", setting.env()),
        "file" => format!(
            "in the config file {}",
            file.map(|f| f.display().to_string()).unwrap_or_default()
        ),
        _ => "its default".to_owned(),
    }
}

/// Reads the config file; an unknown key is an error naming it (and the
/// setting it probably meant).
pub fn load_file(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the config file {}", path.display()))?;
    parse_file(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

fn parse_file(text: &str) -> Result<toml::Table, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let keys: Vec<&str> = TABLE.iter().map(|s| s.key).collect();
    for key in table.keys() {
        if crate::settings::find(key).is_none() {
            let hint = hookline_notifier::lint::closest(key, keys.iter().copied())
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(format!(
                "unknown field `{key}`{hint} (hookline.example.toml lists every setting)"
            ));
        }
    }
    Ok(table)
}

/// The value of `setting` as TOML, checked against its kind and range.
fn typed(setting: &Setting, given: Given<'_>) -> Result<toml::Value, String> {
    use toml::Value;
    let list = |items: Vec<String>| {
        Value::Array(
            items
                .iter()
                .flat_map(|i| i.split(','))
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(|i| Value::String(i.to_owned()))
                .collect(),
        )
    };
    let one = |texts: &[String]| texts.last().cloned().unwrap_or_default();
    match (setting.kind, given) {
        (Kind::Secrets | Kind::List, Given::Text(texts)) => Ok(list(texts.to_vec())),
        (Kind::Secrets | Kind::List, Given::File(Value::String(text))) => {
            Ok(list(vec![text.clone()]))
        }
        (Kind::Secrets | Kind::List, Given::File(Value::Array(items))) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(list)
            .ok_or_else(|| "must be a list of strings".to_owned()),
        (Kind::Secrets | Kind::List, Given::File(_)) => Err("must be a list of strings".to_owned()),
        (Kind::Whole { min, max, unit }, given) => {
            let number = match given {
                Given::Text(texts) => {
                    let text = one(texts);
                    text.trim()
                        .parse::<i64>()
                        .map_err(|_| format!("must be a whole number; got {text:?}"))?
                }
                Given::File(Value::Integer(n)) => *n,
                Given::File(other) => return Err(format!("must be a whole number; got {other}")),
            };
            if !(min..=max).contains(&number) {
                return Err(format!(
                    "must be between {min} and {max}{unit}; got {number}"
                ));
            }
            Ok(Value::Integer(number))
        }
        (Kind::Number { min, max, unit }, given) => {
            let number = match given {
                Given::Text(texts) => {
                    let text = one(texts);
                    text.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("must be a number; got {text:?}"))?
                }
                Given::File(Value::Integer(n)) => *n as f64,
                Given::File(Value::Float(n)) => *n,
                Given::File(other) => return Err(format!("must be a number; got {other}")),
            };
            if !number.is_finite() || !(min..=max).contains(&number) {
                return Err(format!(
                    "must be between {min} and {max}{unit}; got {number}"
                ));
            }
            Ok(Value::Float(number))
        }
        (kind, given) => {
            let text = match given {
                Given::Text(texts) => one(texts),
                Given::File(Value::String(text)) => text.clone(),
                Given::File(other) => return Err(format!("must be a string; got {other}")),
            };
            if let Kind::Choice(words) = kind {
                if !words.contains(&text.as_str()) {
                    return Err(format!(
                        "must be {}; got {text:?}",
                        setting.range().unwrap_or_default()
                    ));
                }
            }
            Ok(Value::String(text))
        }
    }
}

/// The settings of the groups `groups` from the layers; the settings of
/// other groups keep their defaults. `env` reads one environment variable
/// (an empty one counts as unset).
pub fn resolve(
    groups: u32,
    file: Option<&Path>,
    flags: &BTreeMap<&'static str, Vec<String>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Settings> {
    let contents = file.map(load_file).transpose()?;
    let mut table = toml::Table::new();
    for setting in TABLE {
        let used = setting.group & groups != 0;
        let from_env = used
            .then(|| env(&setting.env()))
            .flatten()
            .filter(|v| !v.trim().is_empty())
            .map(|v| vec![v]);
        let from_file = contents
            .as_ref()
            .filter(|_| used)
            .and_then(|c| c.get(setting.key));
        let default = setting.default.map(|d| vec![d.to_owned()]);
        let (given, origin) = match (used.then(|| flags.get(setting.key)).flatten(), &from_env) {
            (Some(values), _) => (Some(Given::Text(values)), "flag"),
            (None, Some(values)) => (Some(Given::Text(values)), "env"),
            (None, None) => match (from_file, &default) {
                (Some(value), _) => (Some(Given::File(value)), "file"),
                (None, Some(values)) => (Some(Given::Text(values)), "default"),
                (None, None) => (None, "default"),
            },
        };
        let value = match given {
            Some(given) => typed(setting, given).map_err(|problem| {
                anyhow::anyhow!(
                    "{} {}: {problem}",
                    setting.named(),
                    source(setting, origin, file)
                )
            })?,
            None if setting.is_list() => toml::Value::Array(Vec::new()),
            None => continue,
        };
        table.insert(setting.key.to_owned(), value);
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e| anyhow::anyhow!("the settings do not fit together: {e}"))
}

/// One value as `config show` prints it: secrets masked, URLs without
/// their password; none for an unset setting.
fn shown(setting: &Setting, value: Option<&toml::Value>) -> Option<String> {
    use toml::Value;
    let value = value?;
    let text = match (setting.kind, value) {
        (Kind::Secrets, Value::Array(items)) if items.is_empty() => return None,
        (Kind::Secrets, Value::Array(items)) => {
            Value::String(vec!["********"; items.len()].join(",")).to_string()
        }
        (Kind::Secret, _) => Value::String("********".to_owned()).to_string(),
        (Kind::Url, Value::String(url)) => Value::String(redact_url(url)).to_string(),
        (_, value) => value.to_string(),
    };
    Some(text)
}

/// The effective settings as TOML, secrets masked; an unset setting as a
/// comment saying what that means.
pub fn show(settings: &Settings) -> String {
    let values = toml::Value::try_from(settings).unwrap_or(toml::Value::Table(Default::default()));
    let mut text = String::new();
    for setting in TABLE {
        match shown(setting, values.get(setting.key)) {
            Some(value) => text.push_str(&format!("{} = {value}\n", setting.key)),
            None => text.push_str(&format!("# {}: {}\n", setting.key, setting.unset)),
        }
    }
    text
}

/// `text` as `# ` comment lines of at most 76 characters.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 76 && line != "#" {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

const EXAMPLE_HEADER: &str = "\
# hookline configuration: every setting, with its default.
#
#   hookline serve --config hookline.toml
#
# Layering: built-in defaults < this file < HOOKLINE_* environment variables
# < command-line flags; every command that opens the database (and
# `rules check`, `templates`, `send-test-email`) takes --config too. Unknown
# keys are an error. `hookline config show --config hookline.toml` prints
# the effective settings, secrets masked. Commented-out settings have no
# default. Made by `hookline config example` from the settings table
# (src/settings.rs); a test keeps this file equal to it.
";

/// The built-in value of a setting as TOML.
fn default_toml(setting: &Setting) -> Option<String> {
    let default = [setting.default?.to_owned()];
    typed(setting, Given::Text(&default))
        .ok()
        .map(|v| v.to_string())
}

/// `hookline.example.toml`: every setting with its help, range, variable
/// and default (or a commented-out example).
pub fn example() -> String {
    let mut text = EXAMPLE_HEADER.to_owned();
    for setting in TABLE {
        let mut help = setting.help();
        if let Some(range) = setting.range() {
            help.push_str(&format!(" Allowed: {range}."));
        }
        if setting.default.is_none() {
            help.push_str(&format!(" Default: {}.", setting.unset));
        }
        help.push_str(&format!(" {}", setting.env()));
        text.push('\n');
        text.push_str(&comment(&help));
        match default_toml(setting) {
            Some(value) => text.push_str(&format!("{} = {value}\n", setting.key)),
            None => text.push_str(&format!("# {} = {}\n", setting.key, setting.example)),
        }
    }
    text
}

/// README's settings table (Markdown).
pub fn markdown_table() -> String {
    let mut text = String::from(
        "| file key | flag | environment | default | what it sets |\n|---|---|---|---|---|\n",
    );
    for setting in TABLE {
        let default = match default_toml(setting) {
            Some(value) => format!("`{value}`"),
            None => setting.unset.to_owned(),
        };
        let mut help = setting.help();
        if let Some(range) = setting.range() {
            help.push_str(&format!(" Allowed: {range}."));
        }
        text.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} | {} |\n",
            setting.key,
            setting.flag(),
            setting.env(),
            default.replace('|', "\\|"),
            help.replace('|', "\\|")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{group, LogFormat};

    const EXAMPLE: &str = include_str!("../hookline.example.toml");
    const README: &str = include_str!("../README.md");

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn resolve_text(groups: u32, file: &str, env: &dyn Fn(&str) -> Option<String>) -> Settings {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("hookline.toml");
        std::fs::write(&path, file).expect("write");
        resolve(groups, Some(&path), &BTreeMap::new(), env).expect("resolves")
    }

    #[test]
    fn the_shipped_example_is_what_the_table_generates() {
        assert!(
            EXAMPLE == example(),
            "hookline.example.toml is out of date: run `cargo run -- config example > hookline.example.toml`"
        );
    }

    #[test]
    fn readmes_settings_table_is_what_the_table_generates() {
        assert!(
            README.contains(&markdown_table()),
            "README's settings table is out of date: replace it with the output of `cargo run -- config table`"
        );
    }

    #[test]
    fn the_example_gives_the_built_in_defaults() {
        let from_example = resolve_text(group::ALL, EXAMPLE, &no_env);
        let built_in = resolve(group::ALL, None, &BTreeMap::new(), &no_env).expect("defaults");
        assert_eq!(show(&from_example), show(&built_in));
        assert_eq!(built_in.listen, "127.0.0.1:8080");
        assert_eq!(built_in.log_format, LogFormat::Human);
        assert_eq!(
            built_in.recipient_hourly_cap,
            hookline_notifier::policy::DEFAULT_HOURLY_CAP
        );
    }

    #[test]
    fn every_example_value_is_a_valid_setting() {
        let all_on: String = EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| !k.contains(' ')) =>
                {
                    format!("{rest}\n")
                }
                _ => format!("{line}\n"),
            })
            .collect();
        let settings = resolve_text(group::ALL, &all_on, &no_env);
        let shown = show(&settings);
        assert!(!shown.contains("# "), "every setting is set: {shown}");
        assert_eq!(
            settings.allowed_recipient_domains,
            ["example.com", "example.org"]
        );
    }

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let env = |name: &str| match name {
            "HOOKLINE_RETENTION_DAYS" => Some("8".to_owned()),
            "HOOKLINE_MAX_BODY_BYTES" => Some("6000".to_owned()),
            "HOOKLINE_LISTEN" => Some(String::new()),
            _ => None,
        };
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("hookline.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nmax_body_bytes = 5000\nretention_days = 7\nwebhook_token = \"a,b\"\n",
        )
        .expect("write");
        let flags = BTreeMap::from([("retention_days", vec!["9".to_owned()])]);
        let settings = resolve(group::ALL, Some(&path), &flags, &env).expect("resolves");
        assert_eq!(settings.retention_days, 9, "flag over environment");
        assert_eq!(settings.max_body_bytes, 6000, "environment over file");
        assert_eq!(
            settings.listen, "127.0.0.1:9999",
            "file over default; empty env is unset"
        );
        assert_eq!(settings.webhook_token, ["a", "b"]);
        assert_eq!(settings.outbox_poll_ms, 1000, "default");
    }

    #[test]
    fn a_command_reads_only_its_own_settings() {
        let env = |name: &str| (name == "HOOKLINE_OUTBOX_POLL_MS").then(|| "0".to_owned());
        let settings = resolve_text(group::DATABASE | group::LOG, "outbox_poll_ms = 0\n", &env);
        assert_eq!(settings.outbox_poll_ms, 1000);
        let error = resolve(group::ALL, None, &BTreeMap::new(), &env).unwrap_err();
        assert_eq!(
            error.to_string(),
            "outbox_poll_ms (--outbox-poll-ms / HOOKLINE_OUTBOX_POLL_MS) from HOOKLINE_OUTBOX_POLL_MS: must be between 10 and 60000 ms; got 0"
        );
    }

    #[test]
    fn bad_values_are_named_wherever_they_come_from() {
        for (file, said) in [
            ("outbox_lease_seconds = 0", "outbox_lease_seconds (--outbox-lease-seconds / HOOKLINE_OUTBOX_LEASE_SECONDS) in the config file"),
            ("smtp_retry_base_seconds = nan", "must be between 0.01 and 86400 s; got NaN"),
            ("max_body_bytes = \"big\"", "must be a whole number; got \"big\""),
            ("log_format = \"xml\"", "must be \"human\" or \"json\"; got \"xml\""),
            ("allowed_recipient_domains = [1]", "must be a list of strings"),
            ("listen = 8080", "listen (--listen / HOOKLINE_LISTEN) in the config file"),
        ] {
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join("hookline.toml");
            std::fs::write(&path, file).expect("write");
            let error = resolve(group::ALL, Some(&path), &BTreeMap::new(), &no_env)
                .unwrap_err()
                .to_string();
            assert!(error.contains(said), "{file}: {error}");
        }
    }

    #[test]
    fn unknown_keys_are_named_with_the_likely_one() {
        let error = parse_file("listen = \"x\"\nlisten_adress = \"y\"\n").unwrap_err();
        assert!(
            error.contains("unknown field `listen_adress`; did you mean `listen`?"),
            "{error}"
        );
    }

    #[test]
    fn show_masks_secrets_and_says_what_unset_means() {
        let env = |name: &str| match name {
            "HOOKLINE_WEBHOOK_TOKEN" => Some("s1-secret,s2-secret".to_owned()),
            "HOOKLINE_DATABASE_URL" => Some("postgres://u:hunter2@db/x".to_owned()),
            "HOOKLINE_METRICS_TOKEN" => Some("m-secret".to_owned()),
            _ => None,
        };
        let shown = show(&resolve(group::ALL, None, &BTreeMap::new(), &env).expect("resolves"));
        assert!(
            !shown.contains("secret") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(
            shown.contains("webhook_token = \"********,********\""),
            "{shown}"
        );
        assert!(shown.contains("metrics_token = \"********\""), "{shown}");
        assert!(
            shown.contains("# admin_token: generated on first start"),
            "{shown}"
        );
        assert!(
            shown.contains("# smtp_url: none: emails are written"),
            "{shown}"
        );
    }
}
