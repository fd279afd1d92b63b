//! The `hookline` binary: command line, logging, start-up.

mod cli;
mod rules_cmd;
mod serve;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};

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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Migrate(args) => serve::migrate(&args),
        Command::Serve(args) => actix_web::rt::System::new().block_on(serve::serve(args)),
        Command::Rules { command } => rules_cmd::run(command),
        Command::ResetAdminToken(args) => serve::reset_admin_token(&args),
        Command::SendTestEmail(args) => {
            actix_web::rt::System::new().block_on(rules_cmd::send_test_email(args))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookline: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
