//! The `hookline` binary: command line, logging, start-up.

mod cli;
mod config;
mod maintenance;
mod memory;
mod rules_cmd;
mod serve;
mod settings;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, ConfigCommand, Configured, WebhookTokenCommand};
use crate::settings::{LogFormat, Settings};

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("HOOKLINE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A command's settings, resolved, with logging started as they say.
pub fn start<const G: u32>(args: &Configured<G>) -> anyhow::Result<Settings> {
    let settings = args.resolve()?;
    init_logging(settings.log_format);
    Ok(settings)
}

fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            let settings = start(&args)?;
            actix_web::rt::System::new().block_on(serve::serve(settings))
        }
        Command::Config { command } => {
            match command {
                ConfigCommand::Show(args) => print!("{}", config::show(&args.resolve()?)),
                ConfigCommand::Example => print!("{}", config::example()),
                ConfigCommand::Table => print!("{}", config::markdown_table()),
            }
            Ok(())
        }
        Command::Migrate(args) => serve::migrate(&start(&args)?),
        Command::Rules { command } => rules_cmd::run(command),
        Command::Templates { command } => rules_cmd::templates(command),
        Command::ResetAdminToken(args) => serve::reset_admin_token(&start(&args)?),
        Command::WebhookToken {
            command: WebhookTokenCommand::Show(args),
        } => serve::show_webhook_token(&start(&args)?),
        Command::Purge { before, settings } => maintenance::purge(&before, &start(&settings)?),
        Command::Erase { visitor, settings } => maintenance::erase(&visitor, &start(&settings)?),
        Command::SendTestEmail(args) => {
            let settings = start(&args.settings)?;
            actix_web::rt::System::new().block_on(rules_cmd::send_test_email(&args.to, &settings))
        }
    }
}

/// The error and its causes on one line, each cause once: a cause whose
/// text a message already includes is not repeated.
fn said_once(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookline: {}", said_once(&error));
            std::process::ExitCode::FAILURE
        }
    }
}
