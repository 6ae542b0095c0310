//! Command-line definitions.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

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
            ("--open-log", self.open_log.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }

    /// The dashboard's probe flags, as the commands' `ProbeFlags`.
    pub fn probe_flags(&self) -> ProbeFlags {
        ProbeFlags {
            timeout: self.timeout,
            concurrency: self.concurrency,
        }
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

    /// Open this internal-json build log as a read-only job (as `rbtop log` reads it)
    #[arg(long, value_name = "FILE")]
    pub open_log: Option<PathBuf>,
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

    /// Say which builders Nix would send a build to, and why not the others.
    ///
    /// The build is given as --system SYSTEM [--features A,B], or as a .drv
    /// file (its system and requiredSystemFeatures), not both. Every machine
    /// gets a verdict with each rule it fails (its systems lack the system; a
    /// required feature is neither supported nor mandatory; a mandatory
    /// feature is not required). The eligible ones are probed as `rbtop
    /// check` probes (unless --no-probe) and their busy slots read from this
    /// host's build hook; those up with a free slot are ranked as Nix ranks
    /// them (load / speed factor, in whole numbers before Nix 2.20). Then
    /// what Nix would do: build on the first, postpone, or decline. Exit
    /// status: 0 when an eligible machine is up with a free slot (with
    /// --no-probe: not known to be down), 1 when none is, 2 for usage errors
    /// and an unreadable .drv.
    Explain(ExplainArgs),

    /// Follow the internal-json log of a Nix build rbtop did not start.
    ///
    /// `nix build --log-format internal-json -v … |& rbtop log`, or a saved
    /// log: the same per-derivation, per-host output as `rbtop build`, read
    /// until the input ends. Exit status: 0 when nothing failed, 1 when a
    /// derivation failed or Nix reported an error, 2 for usage errors and an
    /// unreadable input.
    Log(LogArgs),

    /// Keep probing the fleet and serve it to Prometheus; optionally keep a
    /// live machines file of the usable builders.
    ///
    /// Probes as the dashboard does (kept SSH sessions, the same refresh and
    /// backoff) and serves Prometheus text exposition at
    /// http://ADDR/metrics and a status page at http://ADDR/. With
    /// --write-machines PATH, keeps PATH holding the machines lines of the
    /// builders usable now (point nix.conf's `builders = @PATH` at it): a
    /// builder leaves after --out-after failed probes in a row and comes
    /// back after --back-after good ones; when every builder is down the
    /// last file is kept. Runs until SIGINT/SIGTERM (exit 130/143).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The log file; `-` or nothing for standard input
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Print only JSON at the end (fields documented in README.md, `rbtop log`)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// ADDRESS:PORT to serve on [config: serve.listen] [default: 127.0.0.1:9945]
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<std::net::SocketAddr>,

    /// Keep this file holding the lines of the usable builders, rewritten
    /// atomically (mode 0644) [config: serve.write_machines]
    #[arg(long, value_name = "PATH")]
    pub write_machines: Option<PathBuf>,

    /// Failed probes in a row before a builder leaves the live file [config: serve.out_after] [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub out_after: Option<u32>,

    /// Good probes in a row before it comes back [config: serve.back_after] [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub back_after: Option<u32>,

    /// Seconds between two probes of an up host, at least 0.5 [config: dashboard.refresh_interval] [default: 5]
    #[arg(long, value_name = "SECS", value_parser = parse_refresh)]
    pub refresh: Option<f64>,

    /// Also run a canary build (as `rbtop check --build`) on every host that
    /// is up, every SECS seconds (at least 60), exported as
    /// rbtop_builder_canary_success and _duration_seconds
    /// [config: serve.build_every] [default: never]
    #[arg(long, value_name = "SECS", value_parser = parse_build_every)]
    pub build_every: Option<f64>,

    /// Per-host deadline of a canary build in seconds [default: 60]
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub build_timeout: Option<f64>,

    #[command(flatten)]
    pub probe: ProbeFlags,
}

/// `--build-every`: a canary builds on every builder, so not more often
/// than once a minute.
pub fn parse_build_every(text: &str) -> Result<f64, String> {
    match parse_timeout(text)? {
        secs if secs >= 60.0 => Ok(secs),
        _ => Err("must be at least 60 seconds".to_string()),
    }
}

/// An `ADDRESS:PORT` to listen on (`[::1]:9945` for IPv6).
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("'{text}' is not ADDRESS:PORT (e.g. 127.0.0.1:9945 or [::1]:9945)"))
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("build").required(true).args(["drv", "system"])))]
pub struct ExplainArgs {
    /// A .drv file: explain a build of it; or a .nix file, instantiated
    /// with the local nix-instantiate first
    #[arg(value_name = "DRV|FILE.nix")]
    pub drv: Option<PathBuf>,

    /// With a .nix file: the attribute to instantiate (nix-instantiate -A)
    #[arg(value_name = "ATTR", requires = "drv")]
    pub attr: Option<String>,

    /// The system the build needs, e.g. x86_64-linux (`builtin` is accepted everywhere)
    #[arg(long, value_name = "SYSTEM")]
    pub system: Option<String>,

    /// Features the build requires, comma-separated (with --system)
    #[arg(long, value_name = "A,B", requires = "system")]
    pub features: Option<String>,

    /// Print JSON (fields documented in README.md, `rbtop explain`)
    #[arg(long)]
    pub json: bool,

    /// Do not probe: rank by the local slots alone, every machine's status "unknown"
    #[arg(long)]
    pub no_probe: bool,

    #[command(flatten)]
    pub probe: ProbeFlags,
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
    /// Print JSON: {"hosts": [...], "summary": {"total": N, "up": N}} (same as --format json)
    #[arg(long)]
    pub json: bool,

    /// What to print: a table, JSON, or Prometheus text exposition (for
    /// node_exporter's textfile collector) [default: table]
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "json")]
    pub format: Option<CheckFormat>,

    /// Write the output to FILE instead of stdout, atomically (a temporary
    /// file renamed over it, mode 0644), so a reader never sees half of it
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also build a tiny canary derivation on every host that is up, pinned
    /// to it as `rbtop build --on` pins, through the local nix-daemon when
    /// one runs: proof that Nix can build there. Each host gets `ok` with
    /// its stage times or `failed` with a class (hostkey, auth, not-trusted,
    /// system, feature, store-full, not-pinned, timeout, remote-error) and a
    /// fix; exit status 1 when any canary failed.
    #[arg(long)]
    pub build: bool,

    /// Per-host deadline of a canary build in seconds; a canary past it is
    /// cancelled, leaving nothing behind [default: 60]
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, requires = "build")]
    pub build_timeout: Option<f64>,

    #[command(flatten)]
    pub probe: ProbeFlags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Table,
    Json,
    Prometheus,
}

impl CheckArgs {
    pub fn output_format(&self) -> CheckFormat {
        match (self.json, self.format) {
            (true, _) => CheckFormat::Json,
            (false, format) => format.unwrap_or(CheckFormat::Table),
        }
    }
}

/// How a headless command probes the fleet.
#[derive(Clone, Debug, Default, Args)]
pub struct ProbeFlags {
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
