//! `rbtop serve`: probe the fleet for as long as it runs (the dashboard's
//! refresh engine, its settings and sources) and serve what it finds to
//! Prometheus at `/metrics`, to people at `/`, and to Nix as a live
//! machines file. The probing side renders the pages and publishes them;
//! the HTTP side only hands out the latest, so a slow or hostile scraper
//! can never hold up a probe.

mod http;
mod live_writer;
mod page;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::watch;

use rbtop::canary::{CanaryResult, CanarySettings};
use rbtop::dashboard::{FleetState, Refresher};
use rbtop::export::{BuilderSample, FleetExtras, LiveMachines};
use rbtop::machines::Machine;
use rbtop::probe::{Fleet, raise_open_file_limit};
use rbtop::sources::Resolved;

use crate::cli::ServeArgs;
use crate::config::Settings;
use crate::setup::{self, usage_error};
use crate::signals::shutdown_signal;
use http::Pages;
use live_writer::LiveWriter;

pub fn run(settings: &Settings, args: &ServeArgs) -> ExitCode {
    let listen = args.listen.unwrap_or(settings.serve.listen);
    let write_machines = args
        .write_machines
        .clone()
        .or_else(|| settings.serve.write_machines.clone());
    let mut hysteresis = settings.serve.hysteresis;
    hysteresis.out_after = args.out_after.unwrap_or(hysteresis.out_after);
    hysteresis.back_after = args.back_after.unwrap_or(hysteresis.back_after);
    let (extra_args, resolved) = match setup::headless(settings) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    if let Some(path) = &write_machines
        && let Some(source) = source_named(path, &resolved)
    {
        return usage_error(&format!(
            "--write-machines {} is where the machines are read from ({source}): \
             rbtop would read back its own output; read the full list from another \
             file (--machines) and point nix.conf's builders at the live one",
            path.display()
        ));
    }
    if let Some(path) = &write_machines {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            return usage_error(&format!(
                "--write-machines {}: its directory does not exist",
                path.display()
            ));
        }
    }
    setup::say_if_no_machines(&resolved);
    let machines = resolved.parsed.machines.clone();
    if let Some(warning) = raise_open_file_limit(machines.len()) {
        tracing::warn!("{warning}");
        say!("rbtop: warning: {warning}");
    }
    let refresh = args
        .refresh
        .map_or(settings.refresh, Duration::from_secs_f64);
    let build_every = args
        .build_every
        .map(Duration::from_secs_f64)
        .or(settings.serve.build_every);
    let probe_settings = settings.probe_settings(&args.probe, extra_args);
    let canary = build_every.map(|every| Canaries {
        every,
        settings: settings.canary_settings(&probe_settings, args.build_timeout),
    });
    let Some(runtime) = setup::runtime() else {
        return ExitCode::FAILURE;
    };
    let live = write_machines.map(|path| {
        let header = format!(
            "Written by rbtop serve: the builders usable now, from {}.\n\
             Rewritten as builders go down and come up: edit the source, not this file.",
            resolved.consulted.join("; ")
        );
        LiveWriter::new(path, header, LiveMachines::new(machines.len(), hysteresis))
    });
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(e) => return usage_error(&format!("cannot listen on {listen}: {e}")),
        };
        let address = listener.local_addr().unwrap_or(listen);
        say!(
            "rbtop serve: {} machine(s); metrics at http://{address}/metrics",
            machines.len()
        );
        tracing::info!(%address, machines = machines.len(), "serve started");
        let fleet = Fleet::new(&machines, probe_settings);
        let state = FleetState::new(machines.clone(), refresh);
        let (publish, pages) = watch::channel(Arc::new(render(&state, live.as_ref())));
        let server = tokio::spawn(http::serve(listener, pages));
        let refresher = Refresher::new(&fleet, machines.clone(), rbtop::slots::default_dir());
        let (stop, stopped) = watch::channel(false);
        let forever = probe_forever(
            refresher,
            state,
            live,
            publish,
            &machines,
            canary.as_ref(),
            stopped,
        );
        tokio::pin!(forever);
        let signal = tokio::select! {
            signal = shutdown_signal() => signal,
            () = &mut forever => unreachable!("the refresh loop ends only when told to"),
        };
        // Canaries being built are cancelled, on the builders too, and
        // waited for: nothing is left behind.
        let _ = stop.send(true);
        forever.await;
        server.abort();
        fleet.close().await;
        tracing::info!(?signal, "serve stopped");
        ExitCode::from(signal.exit_status())
    })
}

/// `--build-every`: how often, and how canaries run.
struct Canaries {
    every: Duration,
    settings: CanarySettings,
}

/// The refresh loop: probe what is due, merge results, keep the live
/// file, run the canaries when asked, publish the pages. Returns once
/// `stop` turns true and no canary is left running.
async fn probe_forever(
    mut refresher: Refresher<'_>,
    mut state: FleetState,
    mut live: Option<LiveWriter>,
    publish: watch::Sender<Arc<Pages>>,
    machines: &[Machine],
    canaries: Option<&Canaries>,
    mut stop: watch::Receiver<bool>,
) {
    state.apply_load(refresher.load().clone());
    refresher.start_due(&mut state, false);
    // This machine's build slots are read again as often as a host is probed.
    let mut slots = tokio::time::interval(state.refresh);
    slots.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The first canaries once the first probes have said who is up.
    let mut canary_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + state.refresh,
        canaries.map_or(Duration::from_secs(3600), |c| c.every),
    );
    canary_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut canary_run: Option<BoxFuture<'_, Vec<CanaryResult>>> = None;
    let mut stopping = false;
    loop {
        let wake = Refresher::wake(&state);
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                if canary_run.is_none() {
                    return;
                }
                // The canaries' own stop sees it and cancels them.
                stopping = true;
                continue;
            }
            _ = canary_tick.tick(), if canaries.is_some() && canary_run.is_none() && !stopping => {
                let Some(canaries) = canaries else { continue };
                // The first round waits for every host's first probe (a
                // slow one would otherwise miss a whole --build-every).
                if state.hosts.iter().any(|h| h.report.is_none()) {
                    canary_tick.reset_after(Duration::from_secs(1));
                    continue;
                }
                // Only hosts that are up: a down host keeps its last result.
                let up: Vec<usize> = (0..state.hosts.len())
                    .filter(|&i| state.hosts[i].is_up())
                    .collect();
                let started = state.start_canaries(&up, std::time::Instant::now());
                let eligible: Vec<Option<String>> = (0..machines.len())
                    .map(|i| (!started.contains(&i)).then(|| "not up".to_string()))
                    .collect();
                tracing::info!(hosts = started.len(), "canary builds started");
                let mut stop = stop.clone();
                canary_run = Some(
                    async move {
                        rbtop::canary::run_fleet(machines, &eligible, &canaries.settings, async move {
                            let _ = stop.wait_for(|stop| *stop).await;
                        })
                        .await
                    }
                    .boxed(),
                );
            }
            results = async { canary_run.as_mut().expect("guarded").await }, if canary_run.is_some() => {
                canary_run = None;
                let now = std::time::SystemTime::now();
                for (index, result) in results.into_iter().enumerate() {
                    if result.tried() {
                        tracing::info!(host = index, status = ?result.status, reason = ?result.reason, "canary finished");
                        state.finish_canary(index, result, now);
                    }
                }
                if stopping {
                    return;
                }
            }
            batch = refresher.next_batch() => {
                if let Some(live) = &mut live {
                    for finished in &batch.finished {
                        live.observe(finished.event.index, &finished.event.report);
                    }
                    live.write_if_changed(machines);
                }
                batch.apply_to(&mut state);
            }
            _ = tokio::time::sleep_until(wake) => {
                refresher.start_due(&mut state, false);
                continue;
            }
            _ = slots.tick() => {
                state.apply_load(refresher.read_load().clone());
            }
        }
        publish.send_replace(Arc::new(render(&state, live.as_ref())));
    }
}

/// Both pages from one state.
fn render(state: &FleetState, live: Option<&LiveWriter>) -> Pages {
    let samples: Vec<BuilderSample> = state
        .hosts
        .iter()
        .enumerate()
        .map(|(index, host)| BuilderSample {
            live_kept: live.and_then(|l| l.kept(index)),
            ..BuilderSample::of_host(host)
        })
        .collect();
    let extras = FleetExtras {
        live_all_down: live.map(LiveWriter::all_down),
    };
    Pages::new(
        rbtop::export::render_metrics(&samples, &extras),
        page::render(state, &samples, live.map(LiveWriter::path)),
    )
}

/// The source `path` would overwrite, if it is one of the places the
/// machines were read from.
fn source_named(path: &Path, resolved: &Resolved) -> Option<String> {
    let target = comparable(path);
    let mut sources: Vec<PathBuf> = Vec::new();
    let files = resolved
        .parsed
        .machines
        .iter()
        .map(|m| &m.location.origin)
        .chain(
            resolved
                .parsed
                .diagnostics
                .iter()
                .map(|d| &d.location.origin),
        );
    for origin in files {
        if let rbtop::diagnostics::Origin::File(file) = origin {
            sources.push(file.to_path_buf());
        }
    }
    sources
        .into_iter()
        .find(|source| comparable(source) == target)
        .map(|source| source.display().to_string())
}

/// A path as the filesystem names it (the file itself may not exist yet).
fn comparable(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent
                .canonicalize()
                .map_or_else(|_| path.to_path_buf(), |p| p.join(name))
        }
        _ => path.to_path_buf(),
    }
}
