//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rbtop",
    version,
    about = "top for your Nix remote builders",
    long_about = "top for your Nix remote builders.\n\n\
        Reads the machines list exactly as Nix does (--builders, --machines, or nix.conf's \
        `builders`, default @/etc/nix/machines) and reports every bad line precisely.",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
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
}

#[derive(Debug, Args)]
pub struct MachinesArgs {
    /// Print JSON: {"machines": [...], "errors": [...], "warnings": [...]}
    #[arg(long)]
    pub json: bool,
}
