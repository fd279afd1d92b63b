//! The command line. Each command takes `--config` and the settings it
//! uses, each as a flag and a `HOOKLINE_*` environment variable, from the
//! settings table (src/settings.rs); the flag wins.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Parser, Subcommand};

use crate::settings::{group, Kind, Setting, Settings, TABLE};

#[derive(Debug, Parser)]
#[command(
    name = "hookline",
    version,
    about = "Receives Swiftsell webhook events and stores them durably."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
        settings: DatabaseArgs,
    },
    /// Delete everything stored about one visitor, and report the counts.
    Erase {
        /// The visitor key (visitor.key in the payloads).
        #[arg(long)]
        visitor: String,
        #[command(flatten)]
        settings: DatabaseArgs,
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
        settings: TemplateArgs,
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
        settings: TemplateArgs,
    },
    /// The variables templates can use (from the samples' contexts).
    Variables(LogArgs),
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
    /// Print hookline.example.toml: every setting with its help and
    /// default, made from the settings table.
    Example,
    /// Print README's settings table (Markdown), made from the settings
    /// table.
    Table,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a rules file without changing anything.
    Check {
        file: PathBuf,
        /// The templates and the domains mail may go to, as `serve` has
        /// them: unknown templates and recipients outside them are reported.
        #[command(flatten)]
        settings: RuleCheckArgs,
    },
    /// Validate a rules file, then create or replace its rules by name
    /// (all or nothing).
    Import {
        file: PathBuf,
        #[command(flatten)]
        settings: ImportArgs,
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
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: RuleCheckArgs,
    },
    /// Print every stored rule as TOML that imports back to the same rules.
    Export {
        #[command(flatten)]
        settings: DatabaseArgs,
    },
}

/// The settings of a command (the groups `G` of
/// [`crate::settings::group`]): `--config`, and a flag and a `HOOKLINE_*`
/// variable for each setting of those groups, all from the settings table.
/// [`Configured::resolve`] layers them over the file and the defaults.
#[derive(Clone, Debug, Default)]
pub struct Configured<const G: u32> {
    pub config: Option<PathBuf>,
    /// The settings given as flags, by file key.
    pub flags: BTreeMap<&'static str, Vec<String>>,
}

impl<const G: u32> Configured<G> {
    /// The effective settings: defaults < file < environment < flags.
    pub fn resolve(&self) -> anyhow::Result<Settings> {
        crate::config::resolve(G, self.config.as_deref(), &self.flags, &|name| {
            std::env::var(name).ok()
        })
    }
}

/// The clap argument of a setting.
fn setting_arg(setting: &Setting) -> Arg {
    let mut arg = Arg::new(setting.key)
        .long(setting.key.replace('_', "-"))
        .env(setting.env())
        .value_name(setting.key.to_uppercase())
        .help(setting.help());
    if let Some(default) = setting.default {
        arg = arg.default_value(default);
    }
    if matches!(setting.kind, Kind::Secret | Kind::Secrets | Kind::Url) {
        arg = arg.hide_env_values(true);
    }
    if setting.is_list() {
        arg.value_delimiter(',').action(ArgAction::Append)
    } else {
        arg.action(ArgAction::Set)
    }
}

impl<const G: u32> clap::FromArgMatches for Configured<G> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = BTreeMap::new();
        for setting in TABLE.iter().filter(|s| s.group & G != 0) {
            if matches.value_source(setting.key) == Some(ValueSource::CommandLine) {
                let values = matches
                    .get_many::<String>(setting.key)
                    .map(|values| values.cloned().collect())
                    .unwrap_or_default();
                flags.insert(setting.key, values);
            }
        }
        Ok(Configured {
            config: matches.get_one::<PathBuf>("config").cloned(),
            flags,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<const G: u32> clap::Args for Configured<G> {
    fn augment_args(command: clap::Command) -> clap::Command {
        let command = command.arg(
            Arg::new("config")
                .long("config")
                .env("HOOKLINE_CONFIG")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("A TOML file with any of these settings (see hookline.example.toml); environment variables and flags override it"),
        );
        TABLE
            .iter()
            .filter(|s| s.group & G != 0)
            .fold(command, |command, setting| {
                command.arg(setting_arg(setting))
            })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// `serve` and `config show`: every setting.
pub type ServeArgs = Configured<{ group::ALL }>;
/// Commands that work on the database.
pub type DatabaseArgs = Configured<{ group::DATABASE | group::LOG }>;
/// Commands that read the email templates.
pub type TemplateArgs = Configured<{ group::TEMPLATES | group::LOG }>;
/// `rules check` and `rules test`: templates and the recipient policy.
pub type RuleCheckArgs = Configured<{ group::TEMPLATES | group::POLICY | group::LOG }>;
/// `rules import`: the database and the templates.
pub type ImportArgs = Configured<{ group::DATABASE | group::TEMPLATES | group::LOG }>;
/// `send-test-email`: the mail settings.
pub type MailArgs = Configured<{ group::MAIL | group::LOG }>;
/// Commands without settings of their own.
pub type LogArgs = Configured<{ group::LOG }>;

#[derive(Debug, Args)]
pub struct TestEmailArgs {
    /// The address to send to.
    #[arg(long)]
    pub to: String,

    #[command(flatten)]
    pub settings: MailArgs,
}
