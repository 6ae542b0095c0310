//! `rbtop` with no command: the live dashboard, from its start (a
//! terminal, the fleet, the builds) to its shutdown (the terminal back
//! first, then every build cancelled and every session closed).

use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::FutureExt;
use rbtop::canary::CanarySettings;
use rbtop::daemon_view::LocalView;
use rbtop::dashboard::{Context, FleetState};
use rbtop::jobs::launch::Placement;
use rbtop::jobs::runner::Supervisor;
use rbtop::probe::Fleet;
use rbtop::probe::raise_open_file_limit;

use super::canaries::Canaries;
use super::keymap::Keymap;
use super::panes::jobs::{JobDefaults, JobsPane};
use super::run::{Builds, DashboardEnd};
use super::side_checks::{SideChecks, SideInputs};
use super::{App, run as event_loop, terminal};
use crate::cli::DashboardArgs;
use crate::config::Settings;
use crate::setup::{resolve_machines, runtime, usage_error};
use crate::signals::shutdown_signal;

/// Run the dashboard until the operator quits or a signal comes.
pub fn run(settings: &Settings, args: &DashboardArgs, log_directory: Option<PathBuf>) -> ExitCode {
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
    let extra_args = match settings.ssh_extra_args(|warning| notices.push(warning)) {
        Ok(args) => args,
        Err(e) => return usage_error(&e),
    };
    let resolved = match resolve_machines(settings) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let machines = resolved.parsed.machines.clone();
    let substituter_list = rbtop::substituters::configured(&resolved.nix_conf);
    let builders_substitute =
        rbtop::substituters::from_builder::builders_use_substitutes(&resolved.nix_conf);
    if let Some(warning) = raise_open_file_limit(machines.len()) {
        tracing::warn!("{warning}");
        notices.push(warning);
    }
    let mut context = Context::of(&resolved);
    context.notices = notices;
    context.log_directory = log_directory;
    let local_view = LocalView::detect();
    context.checked_as = Some(local_view.clone());
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
    let probe_settings = settings.probe_settings(&args.probe_flags(), extra_args);
    let jobs = settings.job_settings(probe_settings.ssh.clone());
    app.nix_version = jobs.local_nix;
    let canary_settings = CanarySettings::new(
        rbtop::canary::DEFAULT_TIMEOUT,
        probe_settings.concurrency,
        jobs.clone(),
    );
    let (mut supervisor, mut changed) = Supervisor::new(jobs, machines.clone());
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let slots_dir = rbtop::slots::default_dir();
    let ended = runtime.block_on(async {
        if let Some(path) = &args.open_log {
            let id = supervisor.open_log(path.clone());
            app.launched(Ok(supervisor.job(id).expect("just opened").clone()));
        }
        let mut canaries = Canaries::new(canary_settings, machines.clone());
        // The substituters, root's view and the builders' own
        // substituters, beside the first probes and again on each `r`.
        let mut side_checks = SideChecks::new(SideInputs {
            substituters: substituter_list,
            machines: machines.clone(),
            local_view: local_view.clone(),
            settings: probe_settings.clone(),
            builders_substitute,
        });
        side_checks.start();
        let fleet = Fleet::new(&machines, probe_settings);
        // A panic is caught here only to close the SSH sessions; the
        // panic hook has already restored the terminal and said why.
        let ended = AssertUnwindSafe(async {
            let mut tui = terminal::enter()?;
            let _restore = terminal::Guard;
            let builds = Builds {
                supervisor: &mut supervisor,
                changed: &mut changed,
                canaries: &mut canaries,
                side_checks: &mut side_checks,
            };
            let ended = event_loop::run(
                &mut tui,
                &mut app,
                &fleet,
                builds,
                &slots_dir,
                shutdown_signal(),
            )
            .await;
            if !matches!(
                ended,
                Ok(DashboardEnd::Quit | DashboardEnd::Signal(130 | 143))
            ) {
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
            say!("rbtop: cancelling {active} build(s)…");
        }
        tokio::select! {
            () = async {
                tokio::join!(
                    supervisor.shutdown(),
                    canaries.shutdown(),
                    side_checks.shutdown()
                );
                fleet.close().await;
            } => {}
            signal = shutdown_signal() => {
                say!("rbtop: interrupted again; exiting without waiting for the SSH sessions");
                std::process::exit(signal.exit_status().into());
            }
        }
        ended.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    tracing::info!(?ended, "dashboard finished");
    // The terminal is back: say what quitting cancelled.
    if matches!(ended, Ok(DashboardEnd::Quit)) && !app.cancelled_on_quit.is_empty() {
        say!(
            "rbtop: cancelled on quit: {}",
            app.cancelled_on_quit.join(", ")
        );
    }
    match ended {
        Ok(DashboardEnd::Quit) => ExitCode::SUCCESS,
        Ok(DashboardEnd::Signal(status)) => ExitCode::from(status),
        Err(e) => {
            say!("rbtop: terminal error: {e}");
            ExitCode::FAILURE
        }
    }
}
