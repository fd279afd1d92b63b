//! The `hookline` binary: command line, logging, start-up.

mod cli;
mod config;
mod maintenance;
mod memory;
mod rules_cmd;
mod serve;

use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, ConfigCommand, LogFormat, WebhookTokenCommand};

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

fn run() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    let mut log_format = cli.log_format;
    match cli.command {
        Command::Serve(mut args) => {
            if let Some(sub) = matches.subcommand_matches("serve") {
                config::apply(&mut args, sub, &matches, &mut log_format)?;
            }
            init_logging(log_format);
            actix_web::rt::System::new().block_on(serve::serve(args))
        }
        Command::Config {
            command: ConfigCommand::Show(mut args),
        } => {
            let sub = matches
                .subcommand_matches("config")
                .and_then(|c| c.subcommand_matches("show"));
            if let Some(sub) = sub {
                config::apply(&mut args, sub, &matches, &mut log_format)?;
            }
            print!("{}", config::show(&args, log_format));
            Ok(())
        }
        command => {
            init_logging(log_format);
            match command {
                Command::Migrate(args) => serve::migrate(&args),
                Command::Rules { command } => rules_cmd::run(command),
                Command::Templates { command } => rules_cmd::templates(command),
                Command::ResetAdminToken(args) => serve::reset_admin_token(&args),
                Command::WebhookToken {
                    command: WebhookTokenCommand::Show(args),
                } => serve::show_webhook_token(&args),
                Command::Purge { before, database } => maintenance::purge(&before, &database),
                Command::Erase { visitor, database } => maintenance::erase(&visitor, &database),
                Command::SendTestEmail(args) => {
                    actix_web::rt::System::new().block_on(rules_cmd::send_test_email(args))
                }
                Command::Serve(_) | Command::Config { .. } => Ok(()),
            }
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
