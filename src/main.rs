use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use rbtop::cli::{BuildArgs, CheckArgs, Cli, Command, ExplainArgs};
use rbtop::commands::{build, check, explain, machines};
use rbtop::config::{self, Settings, SourceChoice};
use rbtop::jobs::launch::{BuildTool, LaunchRequest, Placement};
use rbtop::jobs::runner::{JobSettings, Supervisor, lock};
use rbtop::logging;
use rbtop::nix_version::NixVersion;
use rbtop::nixconf::NixConfEnv;
use rbtop::probe::ProbeSettings;
use rbtop::probe::fleet::raise_open_file_limit;
use rbtop::signals::shutdown_signal;
use rbtop::sources;
use rbtop::ssh::SshSettings;
use rbtop::ssh::options::{split_nix_sshopts, without_control_flags};

/// Exit status for bad flags, a bad config file or a bad log filter.
const USAGE: u8 = 2;

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
        Some(Command::Machines(args)) => run_machines(&settings, args.json),
        Some(Command::Check(args)) => run_check(&settings, &args),
        Some(Command::Build(args)) => run_build(&settings, &args),
        Some(Command::Explain(args)) => run_explain(&settings, &args),
        None => {
            let log_directory = _log_guard.as_ref().and(
                settings
                    .log_directory
                    .clone()
                    .or_else(logging::default_directory),
            );
            dashboard::run(&settings, &cli.dashboard, log_directory)
        }
    }
}

/// `NIX_SSHOPTS`, split as Nix splits it, without the flags that would take
/// over rbtop's own ControlMaster (each dropped one is passed to `warn`).
fn ssh_extra_args(mut warn: impl FnMut(String)) -> Result<Vec<String>, ExitCode> {
    match std::env::var_os("NIX_SSHOPTS").map(|v| v.into_string()) {
        None => Ok(Vec::new()),
        Some(Err(_)) => Err(usage_error("NIX_SSHOPTS is not valid UTF-8")),
        Some(Ok(value)) => match split_nix_sshopts(&value) {
            Ok(words) => {
                let (kept, warnings) = without_control_flags(&words);
                for warning in warnings {
                    tracing::warn!("{warning}");
                    warn(warning);
                }
                Ok(kept)
            }
            Err(e) => Err(usage_error(&e)),
        },
    }
}

/// Read the machines as Nix would; `None` (after a usage error) when a
/// `--machines` file does not exist.
fn resolve_machines(settings: &Settings) -> Result<sources::Resolved, ExitCode> {
    if let SourceChoice::File(path) = &settings.source
        && !path.exists()
    {
        return Err(usage_error(&format!(
            "machines file {} does not exist",
            path.display()
        )));
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
    Ok(resolved)
}

/// What every headless command starts with: `NIX_SSHOPTS` (warnings on
/// stderr) and the machines, with their problems printed on stderr.
fn headless_setup(settings: &Settings) -> Result<(Vec<String>, sources::Resolved), ExitCode> {
    let extra_args = ssh_extra_args(|warning| eprintln!("rbtop: warning: {warning}"))?;
    let resolved = resolve_machines(settings)?;
    let _ = std::io::stderr().write_all(machines::render_diagnostics(&resolved).as_bytes());
    Ok((extra_args, resolved))
}

/// With no machine configured, say on stderr where rbtop looked and how
/// to add one; returns whether that was the case.
fn say_if_no_machines(resolved: &sources::Resolved) -> bool {
    let empty = resolved.parsed.machines.is_empty();
    if empty {
        let help = machines::render_empty(resolved);
        let _ = std::io::stderr().write_all(help.as_bytes());
    }
    empty
}

fn run_check(settings: &Settings, args: &CheckArgs) -> ExitCode {
    let choice = settings
        .probe
        .with_flags(args.probe.timeout, args.probe.concurrency);
    let (extra_args, resolved) = match headless_setup(settings) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let machines_list = &resolved.parsed.machines;
    if say_if_no_machines(&resolved) {
        if args.json {
            let triage = check::Triage::read(&[], &[]);
            println!("{}", check::render_json(&[], &[], &triage));
        }
        return ExitCode::from(check::NOT_ALL_UP);
    }
    let probe_settings = ProbeSettings::new(
        choice.timeout,
        choice.concurrency,
        SshSettings::new(extra_args, choice.host_key_policy),
    );
    let started = std::time::Instant::now();
    let reports = match probe_headless(machines_list, probe_settings, !args.json) {
        Ok(reports) => reports,
        Err(code) => return code.unwrap_or(ExitCode::from(check::NOT_ALL_UP)),
    };
    tracing::info!(
        hosts = reports.len(),
        up = reports.iter().filter(|r| r.is_up()).count(),
        wall_ms = started.elapsed().as_millis() as u64,
        own_cpu_ms = rbtop::cpu_time::own().map(|d| d.as_millis() as u64),
        "check finished"
    );
    let triage = check::Triage::read(machines_list, &reports);
    let stdout = if args.json {
        check::render_json(machines_list, &reports, &triage) + "\n"
    } else {
        check::render_table(machines_list, &reports, &triage, check::use_color())
    };
    let _ = std::io::stdout().write_all(stdout.as_bytes());
    let all_up = reports.iter().all(|r| r.is_up()) && !resolved.has_errors();
    ExitCode::from(if all_up {
        check::ALL_UP
    } else {
        check::NOT_ALL_UP
    })
}

/// Probe `machines` at once for a headless command, with a progress count
/// on stderr when it is a terminal and `show_progress`. `Err(Some(code))`
/// when interrupted (every session closed), `Err(None)` when the runtime
/// could not start.
fn probe_headless(
    machines: &[rbtop::machines::Machine],
    settings: ProbeSettings,
    show_progress: bool,
) -> Result<Vec<rbtop::probe::HostReport>, Option<ExitCode>> {
    if let Some(warning) = raise_open_file_limit(machines.len()) {
        tracing::warn!("{warning}");
        eprintln!("rbtop: warning: {warning}");
    }
    let runtime = runtime().ok_or(None)?;
    let show_progress = show_progress && std::io::stderr().is_terminal();
    let progress = |done: usize, total: usize| {
        if show_progress {
            eprint!("\r\x1b[Kprobed {done}/{total}");
        }
    };
    let reports = runtime.block_on(check::probe_fleet(
        machines,
        settings,
        progress,
        shutdown_signal(),
    ));
    if show_progress {
        eprint!("\r\x1b[K");
    }
    reports.map_err(|signal| {
        eprintln!("rbtop: interrupted; every SSH session closed");
        Some(ExitCode::from(signal.exit_status()))
    })
}

fn run_explain(settings: &Settings, args: &ExplainArgs) -> ExitCode {
    let resolved_query = explain::query(args).and_then(|query| query.resolve());
    let (requirement, subject) = match resolved_query {
        Ok(resolved) => resolved,
        Err(e) => return usage_error(&e),
    };
    let (extra_args, resolved) = match headless_setup(settings) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let machines_list = &resolved.parsed.machines;
    say_if_no_machines(&resolved);
    let probed = explain::to_probe(machines_list, &requirement);
    let reports = if args.no_probe {
        None
    } else {
        let choice = settings
            .probe
            .with_flags(args.probe.timeout, args.probe.concurrency);
        let probe_settings = ProbeSettings::new(
            choice.timeout,
            choice.concurrency,
            SshSettings::new(extra_args, choice.host_key_policy),
        );
        let eligible: Vec<_> = probed.iter().map(|&i| machines_list[i].clone()).collect();
        match probe_headless(&eligible, probe_settings, !args.json) {
            Ok(reports) => Some(reports),
            Err(code) => return code.unwrap_or(ExitCode::from(explain::NOT_READY)),
        }
    };
    // Read after probing: the slots as close as can be to the answer.
    let load = rbtop::slots::read(&rbtop::slots::default_dir(), machines_list);
    let (observed, slots_problem) =
        explain::observations(machines_list.len(), &probed, reports, &load);
    let local = rbtop::dashboard::LocalCapacity::of(&resolved.nix_conf);
    let explanation = rbtop::explain::explain(rbtop::explain::Inputs {
        requirement,
        subject,
        machines: machines_list,
        observed,
        slots_problem,
        local: &local,
        nix_version: NixVersion::local(),
    });
    let stdout = if args.json {
        explain::render_json(&explanation) + "\n"
    } else {
        explain::render_text(&explanation, check::use_color())
    };
    let _ = std::io::stdout().write_all(stdout.as_bytes());
    ExitCode::from(explain::exit_status(&explanation))
}

/// What jobs need from the settings and the machine.
fn job_settings(settings: &Settings, ssh: SshSettings) -> JobSettings {
    let choice = &settings.jobs;
    JobSettings {
        graces: choice.graces,
        line_cap: choice.line_cap,
        log_dir: choice.log_directory.clone(),
        ssh,
        local_nix: NixVersion::local(),
    }
}

fn run_build(settings: &Settings, args: &BuildArgs) -> ExitCode {
    let tool = match args.command.as_deref().map(BuildTool::parse) {
        None => settings.jobs.tool,
        Some(Ok(tool)) => tool,
        Some(Err(e)) => return usage_error(&format!("--command: {e}")),
    };
    let (extra_args, resolved) = match headless_setup(settings) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let machines_list = resolved.parsed.machines;
    let placement = match &args.on {
        Some(name) => match build::find_machine(&machines_list, name) {
            Ok(machine) => build::pinned(machine),
            Err(e) => return usage_error(&e),
        },
        None => Placement::fleet(&settings.source),
    };
    let request = LaunchRequest {
        args: args.args.clone(),
        placement,
        tool,
    };
    let ssh = SshSettings::new(extra_args, settings.probe.host_key_policy);
    let jobs = job_settings(settings, ssh);
    let Some(runtime) = runtime() else {
        return ExitCode::from(1);
    };
    runtime.block_on(headless_build(
        jobs,
        machines_list,
        request,
        settings.jobs.stall_after,
    ))
}

async fn headless_build(
    jobs: JobSettings,
    machines_list: Vec<rbtop::machines::Machine>,
    request: LaunchRequest,
    stall_after: std::time::Duration,
) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut supervisor, mut changed) = Supervisor::new(jobs, machines_list);
    let id = match supervisor.launch(request) {
        Ok(id) => id,
        Err(e) => return usage_error(&e),
    };
    let job = supervisor.job(id).expect("just launched").clone();
    if let Some(path) = &lock(&job).log_file {
        eprintln!("rbtop: log file: {}", path.display());
    }
    let mut printer = build::Printer::new(std::io::stdout().is_terminal());
    let mut stop_signals = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ]
    .map(|kind| signal(kind).ok());
    let mut cancels = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        let stop = async {
            let waits: Vec<_> = stop_signals
                .iter_mut()
                .flatten()
                .map(|s| Box::pin(s.recv()))
                .collect();
            // select_all of nothing would panic: no handler, no signal.
            if waits.is_empty() {
                std::future::pending::<()>().await;
            }
            futures_util::future::select_all(waits).await;
        };
        tokio::select! {
            Some(_) = changed.recv() => {
                // Take every pending change at once: one print per burst.
                while changed.try_recv().is_ok() {}
                let (text, finished) = {
                    let job = lock(&job);
                    (printer.update(&job), job.is_finished())
                };
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
                if finished {
                    break;
                }
            }
            _ = tick.tick() => {
                let text = printer.stall_check(&lock(&job), std::time::Instant::now(), stall_after);
                let _ = std::io::stdout().write_all(text.as_bytes());
            }
            _ = stop => {
                cancels += 1;
                eprintln!(
                    "rbtop: cancelling the build{}",
                    if cancels == 1 { " (again to stop waiting for it)" } else { "" }
                );
                supervisor.cancel(id);
            }
        }
    }
    let job = lock(&job);
    let _ = std::io::stdout().write_all(build::summary(&job).as_bytes());
    ExitCode::from(job.exit_status().unwrap_or(1))
}

/// One thread is plenty: the work is waiting on sockets and child processes.
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .inspect_err(|e| eprintln!("rbtop: cannot start the async runtime: {e}"))
        .ok()
}

mod dashboard {
    //! `rbtop` with no command: the live dashboard.

    use std::io::IsTerminal;
    use std::panic::AssertUnwindSafe;
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Duration;

    use futures_util::FutureExt;
    use rbtop::cli::DashboardArgs;
    use rbtop::config::Settings;
    use rbtop::dashboard::{Context, FleetState};
    use rbtop::jobs::launch::Placement;
    use rbtop::jobs::runner::Supervisor;
    use rbtop::probe::fleet::raise_open_file_limit;
    use rbtop::probe::{Fleet, ProbeSettings};
    use rbtop::ssh::SshSettings;
    use rbtop::tui::jobs_pane::{JobDefaults, JobsPane};
    use rbtop::tui::keymap::Keymap;
    use rbtop::tui::run::{Builds, Ended};
    use rbtop::tui::{App, run, terminal};

    use super::{job_settings, resolve_machines, shutdown_signal, ssh_extra_args, usage_error};

    pub fn run(
        settings: &Settings,
        args: &DashboardArgs,
        log_directory: Option<PathBuf>,
    ) -> ExitCode {
        // Configuration mistakes first: they need fixing wherever rbtop runs.
        let keymap = match Keymap::with_overrides(&settings.keys) {
            Ok(keymap) => keymap,
            Err(e) => return usage_error(&format!("config file: {e}")),
        };
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            return usage_error(
                "the dashboard needs a terminal; for scripts use `rbtop check` (or `rbtop check --json`)",
            );
        }
        let mut notices = Vec::new();
        let extra_args = match ssh_extra_args(|warning| notices.push(warning)) {
            Ok(args) => args,
            Err(code) => return code,
        };
        let resolved = match resolve_machines(settings) {
            Ok(resolved) => resolved,
            Err(code) => return code,
        };
        let machines = resolved.parsed.machines.clone();
        if let Some(warning) = raise_open_file_limit(machines.len()) {
            tracing::warn!("{warning}");
            notices.push(warning);
        }
        let mut context = Context::of(&resolved);
        context.notices = notices;
        context.log_directory = log_directory;
        let refresh = args
            .refresh
            .map_or(settings.refresh, Duration::from_secs_f64);
        let mut app = App::new(FleetState::new(machines.clone(), refresh), context, keymap);
        app.jobs = JobsPane::new(JobDefaults {
            fleet: Placement::fleet(&settings.source),
            tool: settings.jobs.tool,
            stall_after: settings.jobs.stall_after,
            upload_lock_after: settings.jobs.upload_lock_after,
        });
        let choice = settings.probe.with_flags(args.timeout, args.concurrency);
        let ssh = SshSettings::new(extra_args, choice.host_key_policy);
        let jobs = job_settings(settings, ssh.clone());
        app.nix_version = jobs.local_nix;
        let (mut supervisor, mut changed) = Supervisor::new(jobs, machines.clone());
        let probe_settings = ProbeSettings::new(choice.timeout, choice.concurrency, ssh);
        let Some(runtime) = super::runtime() else {
            return ExitCode::FAILURE;
        };
        let slots_dir = rbtop::slots::default_dir();
        let ended = runtime.block_on(async {
            let fleet = Fleet::new(&machines, probe_settings);
            // A panic is caught here only to close the SSH sessions; the
            // panic hook has already restored the terminal and said why.
            let ended = AssertUnwindSafe(async {
                let mut tui = terminal::enter()?;
                let _restore = terminal::Guard;
                let builds = Builds {
                    supervisor: &mut supervisor,
                    changed: &mut changed,
                };
                let ended = run::run(
                    &mut tui,
                    &mut app,
                    &fleet,
                    builds,
                    &slots_dir,
                    shutdown_signal(),
                )
                .await;
                if !matches!(ended, Ok(Ended::Quit | Ended::Signal(130 | 143))) {
                    // The terminal may be gone (hangup): dropping ratatui's
                    // handle would complain on stderr that it cannot show the cursor.
                    std::mem::forget(tui);
                }
                ended
            })
            .catch_unwind()
            .await;
            // The terminal is back before the sessions close (bounded, a
            // couple of seconds at worst), so the prompt returns at once.
            terminal::restore();
            // Builds still running (after a signal, an error or a panic)
            // are cancelled, their builders checked, before the sessions go.
            let active = supervisor.active();
            if active > 0 {
                eprintln!("rbtop: cancelling {active} build(s)…");
            }
            tokio::select! {
                () = async {
                    supervisor.shutdown().await;
                    fleet.close().await;
                } => {}
                signal = shutdown_signal() => {
                    eprintln!("rbtop: interrupted again; exiting without waiting for the SSH sessions");
                    std::process::exit(signal.exit_status().into());
                }
            }
            ended.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        tracing::info!(?ended, "dashboard finished");
        match ended {
            Ok(Ended::Quit) => ExitCode::SUCCESS,
            Ok(Ended::Signal(status)) => ExitCode::from(status),
            Err(e) => {
                eprintln!("rbtop: terminal error: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

fn run_machines(settings: &Settings, json: bool) -> ExitCode {
    let resolved = match resolve_machines(settings) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
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
