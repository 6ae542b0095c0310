use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use rbtop::cli::{Cli, Command};
use rbtop::commands::machines;
use rbtop::config::{self, Settings, SourceChoice};
use rbtop::logging;
use rbtop::nix_version::NixVersion;
use rbtop::nixconf::NixConfEnv;
use rbtop::sources;

/// Exit status for bad flags, a bad config file or a bad log filter.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (file_config, config_path) = match config::load(cli.global.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => return usage_error(&e.to_string()),
    };
    let settings = Settings::layer(
        &cli.global,
        &file_config,
        config_path.as_deref(),
        std::env::var("RBTOP_LOG").ok(),
    );
    let filter = match logging::parse_filter(&settings.log_filter) {
        Ok(filter) => filter,
        Err(e) => return usage_error(&e),
    };
    // Logging is best effort: a read-only home must not stop a headless check.
    let _log_guard = settings
        .log_directory
        .clone()
        .or_else(logging::default_directory)
        .and_then(|dir| match logging::init(filter, &dir) {
            Ok(guard) => Some(guard),
            Err(e) => {
                eprintln!("rbtop: logging disabled: {e}");
                None
            }
        });
    tracing::info!(version = env!("CARGO_PKG_VERSION"), ?settings.source, "rbtop starting");

    match cli.command {
        Command::Machines(args) => run_machines(&settings, args.json),
    }
}

fn run_machines(settings: &Settings, json: bool) -> ExitCode {
    if let SourceChoice::File(path) = &settings.source
        && !path.exists()
    {
        return usage_error(&format!("machines file {} does not exist", path.display()));
    }
    let resolved = sources::resolve(
        &settings.source,
        &NixConfEnv::from_process(),
        NixVersion::local(),
    );
    tracing::info!(
        machines = resolved.parsed.machines.len(),
        diagnostics = resolved.parsed.diagnostics.len(),
        "machines resolved"
    );
    let stdout = if json {
        machines::render_json(&resolved) + "\n"
    } else {
        machines::render_table(&resolved)
    };
    // A closed pipe (`rbtop machines | head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(stdout.as_bytes());
    if !json {
        let _ = std::io::stderr().write_all(machines::render_diagnostics(&resolved).as_bytes());
    }
    ExitCode::from(u8::from(resolved.has_errors()))
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("rbtop: {message}");
    ExitCode::from(USAGE)
}
