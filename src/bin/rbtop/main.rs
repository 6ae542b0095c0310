//! rbtop's front end: the command line and the terminal UI over the core
//! library (`rbtop`). This file is its table of contents: parse the flags,
//! layer the settings, start logging, run one command.

#[macro_use]
mod say;

mod cli;
mod commands;
mod config;
mod logging;
mod setup;
mod signals;
mod tui;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use commands::{build, check, explain, log as log_command, machines, serve};
use config::{Environment, Settings};
use setup::usage_error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let (Some(_), Some(flag)) = (&cli.command, cli.dashboard.first_given()) {
        return usage_error(&format!(
            "{flag} before a command is a dashboard option; to give it to the command, put it after the command's name"
        ));
    }
    let (file_config, config_path) = match config::load(cli.global.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => return usage_error(&e.to_string()),
    };
    let settings = Settings::layer(
        &cli.global,
        &file_config,
        config_path.as_deref(),
        &Environment::from_process(),
    );
    let log = match logging::start(&settings) {
        Ok(started) => started,
        Err(e) => return usage_error(&e),
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), ?settings.source, "rbtop starting");

    match cli.command {
        Some(Command::Machines(args)) => machines::run(&settings, &args),
        Some(Command::Check(args)) => check::run(&settings, &args),
        Some(Command::Build(args)) => build::run(&settings, &args),
        Some(Command::Explain(args)) => explain::run(&settings, &args),
        Some(Command::Log(args)) => log_command::run(&settings, &args),
        Some(Command::Serve(args)) => serve::run(&settings, &args),
        None => tui::dashboard::run(&settings, &cli.dashboard, log.directory()),
    }
}
