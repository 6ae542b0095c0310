//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rbtop",
    version,
    about = "top for your Nix remote builders",
    long_about = "top for your Nix remote builders.\n\n\
        Without a command, opens the live dashboard of every builder. \
        Reads the machines list exactly as Nix does (--builders, --machines, or nix.conf's \
        `builders`, default @/etc/nix/machines) and reports every bad line precisely."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Dashboard options (when no command is given).
    #[command(flatten)]
    pub dashboard: DashboardArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl DashboardArgs {
    /// The first dashboard flag given, to refuse it before a command (where
    /// `rbtop --timeout 3 check` would otherwise drop it silently).
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("--refresh", self.refresh.is_some()),
            ("--timeout", self.timeout.is_some()),
            ("--concurrency", self.concurrency.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// `rbtop` with no command: the live dashboard.
#[derive(Clone, Debug, Default, Args)]
pub struct DashboardArgs {
    /// Seconds between two probes of an up host, at least 0.5 [config: dashboard.refresh_interval] [default: 5]
    #[arg(long, value_name = "SECS", value_parser = parse_refresh)]
    pub refresh: Option<f64>,

    /// Per-host time limit in seconds for one probe [config: probe.timeout] [default: 10]
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<f64>,

    /// Hosts probed at the same time [config: probe.concurrency] [default: 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
}

#[derive(Clone, Debug, Default, Args)]
pub struct GlobalArgs {
    /// rbtop config file [default: $XDG_CONFIG_HOME/rbtop/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Builders in the syntax of `nix --builders` (entries separated by `;` or
    /// newlines, `@file` includes); replaces nix.conf's `builders`
    #[arg(
        long,
        global = true,
        value_name = "SPEC",
        conflicts_with = "machines",
        allow_hyphen_values = true
    )]
    pub builders: Option<String>,

    /// Read this machines file instead of nix.conf's `builders`
    #[arg(long, global = true, value_name = "FILE")]
    pub machines: Option<PathBuf>,

    /// Log filter, e.g. `debug` or `rbtop=trace` [env: RBTOP_LOG] [default: info]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the resolved machines and every problem found reading them.
    ///
    /// Exit status: 0 when every line was read, 1 when any line was rejected
    /// (the good ones are still printed), 2 for usage errors.
    Machines(MachinesArgs),

    /// Probe every builder at once over SSH and say which are up, and why not.
    ///
    /// Each store is reached as Nix reaches it (ssh://, ssh-ng://, local,
    /// daemon) and answers its protocol handshake. Exit status: 0 when every
    /// host is up, 1 when any is not (or a machines line was rejected, or no
    /// builder is configured), 2 for usage or configuration errors.
    Check(CheckArgs),

    /// Build with Nix, showing its progress and log; Ctrl-C cancels cleanly.
    ///
    /// ARGS: an installable, a .nix file or a .drv path, then extra arguments
    /// for the build command (all passed as given when the first starts with
    /// `-`). Nix chooses among the fleet unless --on pins the build to one
    /// machine (`--builders` = its line, `--max-jobs 0`). Exit status: 0 when
    /// the build succeeded, Nix's status when it failed, 130 when cancelled,
    /// 127 when the command could not be started, 2 for usage errors.
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build only on this machine: its store URI (`ssh://b1`) or host (`b1`)
    #[arg(long, value_name = "HOST")]
    pub on: Option<String>,

    /// The build command: "nix build", "nix-build" or "nix-store --realise"
    /// [config: jobs.command] [default: "nix build"]
    #[arg(long, value_name = "COMMAND")]
    pub command: Option<String>,

    /// What to build, then extra arguments for the command
    #[arg(
        value_name = "ARGS",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print JSON: {"hosts": [...], "summary": {"total": N, "up": N}}
    #[arg(long)]
    pub json: bool,

    /// Per-host time limit in seconds, for the whole probe [config: probe.timeout] [default: 10]
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<f64>,

    /// Hosts probed at the same time [config: probe.concurrency] [default: 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
}

/// A positive, finite number of seconds.
pub fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        Ok(_) => Err("must be a number of seconds above 0 (at most 86400)".to_string()),
        Err(_) => Err(format!("'{text}' is not a number of seconds")),
    }
}

/// A refresh interval: at least half a second, so that a typo cannot turn
/// the dashboard into a busy loop over the fleet.
pub fn parse_refresh(text: &str) -> Result<f64, String> {
    match parse_timeout(text)? {
        secs if secs >= 0.5 => Ok(secs),
        _ => Err("must be at least 0.5 seconds".to_string()),
    }
}

#[derive(Debug, Args)]
pub struct MachinesArgs {
    /// Print JSON: {"machines": [...], "errors": [...], "warnings": [...]}
    #[arg(long)]
    pub json: bool,
}
