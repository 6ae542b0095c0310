//! `rbtop check [--json | --format prometheus] [--output FILE]`: probe
//! every machine at once and say, per host, whether its store answers and,
//! if not, why.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{Cell, Color};
use humansize::{BINARY, format_size};
use serde::Serialize;

use rbtop::daemon_view::{DaemonHostView, LocalView};
use rbtop::export::{BuilderSample, FleetExtras};
use rbtop::machines::Machine;
use rbtop::probe::{self, Facts, HostReport, Status};
use rbtop::remote_builds::{self, RemoteBuild, Triage};
use rbtop::sanitize::{for_terminal, for_terminal_lines};
use rbtop::slots::{self, LocalLoad, LockHolder, SlotHolder};

use super::daemon_view;
use crate::cli::{CheckArgs, CheckFormat};
use crate::config::Settings;
use crate::setup::{self, ProbeStopped};

/// Exit status when every host is up.
pub const ALL_UP: u8 = 0;
/// Exit status when any host is not up, a machines line was rejected, or there are no machines.
pub const NOT_ALL_UP: u8 = 1;

/// `rbtop check`: probe every machine, print the table or JSON.
pub fn run(settings: &Settings, args: &CheckArgs) -> ExitCode {
    let (extra_args, resolved) = match setup::headless(settings) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let machines = &resolved.parsed.machines;
    let format = args.output_format();
    if setup::say_if_no_machines(&resolved) {
        if format != CheckFormat::Table {
            // Nothing was probed, checked or built: the bare document.
            let triage = Triage::read(&[], &[]);
            let text = match format {
                CheckFormat::Prometheus => render_prometheus(&[], &[], &triage, None),
                _ => render_json(&[], &[], &triage) + "\n",
            };
            if let Err(code) = emit(args, &text) {
                return code;
            }
        }
        return ExitCode::from(NOT_ALL_UP);
    }
    let probe_settings = settings.probe_settings(&args.probe, extra_args);
    let canary_settings = args
        .build
        .then(|| settings.canary_settings(&probe_settings, args.build_timeout));
    let local_view = LocalView::detect();
    // Root's view is checked beside the user's, in the same wall time.
    let daemon_pending = daemon_view::start(&local_view, machines, &probe_settings);
    // And the substituters, each within the same timeout.
    let substituters_pending = super::substituters::start(
        rbtop::substituters::configured(&resolved.nix_conf),
        &probe_settings,
    );
    // And each builder's own substituters (with builders-use-substitutes),
    // in sessions of their own: in the probe's wall time, not after it.
    let builder_substituters_pending =
        rbtop::substituters::from_builder::builders_use_substitutes(&resolved.nix_conf)
            .then(|| super::builder_substituters::start(machines, &probe_settings));
    // A signal after the probe's own listener is gone is kept for the
    // waits that follow it.
    let signals = crate::signals::SignalLatch::start();
    let started = std::time::Instant::now();
    let show_progress = format == CheckFormat::Table;
    let reports = match setup::probe_headless(machines, probe_settings, show_progress) {
        Ok(reports) => reports,
        Err(stopped) => {
            if let Some(pending) = daemon_pending {
                pending.cancel();
            }
            if let Some(pending) = substituters_pending {
                pending.cancel();
            }
            if let Some(pending) = builder_substituters_pending {
                pending.cancel();
            }
            return match stopped {
                ProbeStopped::Interrupted(code) => code,
                ProbeStopped::NoRuntime => ExitCode::from(NOT_ALL_UP),
            };
        }
    };
    tracing::info!(
        hosts = reports.len(),
        up = reports.iter().filter(|r| r.is_up()).count(),
        wall_ms = started.elapsed().as_millis() as u64,
        own_cpu_ms = rbtop::cpu_time::own().map(|d| d.as_millis() as u64),
        "check finished"
    );
    let daemon_check = daemon_pending.map(daemon_view::Pending::finish);
    let substituters = substituters_pending
        .map(super::substituters::Pending::finish)
        .unwrap_or_default();
    let triage = Triage::read(machines, &reports);
    // A signal since the probe ended: stop here.
    if let Some(signal) = signals.fired() {
        if let Some(pending) = builder_substituters_pending {
            pending.cancel();
        }
        return ExitCode::from(signal.exit_status());
    }
    let canaries = if let Some(canary_settings) = &canary_settings {
        let started = std::time::Instant::now();
        let Some(results) = super::canary::run(canary_settings, machines, &reports) else {
            if let Some(pending) = builder_substituters_pending {
                pending.cancel();
            }
            return ExitCode::from(NOT_ALL_UP);
        };
        tracing::info!(
            wall_ms = started.elapsed().as_millis() as u64,
            "canaries finished"
        );
        Some(results)
    } else {
        None
    };
    let builder_substituters =
        match builder_substituters_pending.map(|p| p.finish(&reports, &signals)) {
            None => None,
            Some(Ok(outcomes)) => Some(outcomes),
            Some(Err(signal)) => return ExitCode::from(signal.exit_status()),
        };
    let extras = Extras {
        local_view: &local_view,
        daemon_check: daemon_check.as_ref(),
        substituters: &substituters,
        builder_substituters: builder_substituters.as_deref(),
        canaries: canaries.as_deref(),
    };
    if let Err(code) = emit(args, &render(args, machines, &reports, &triage, &extras)) {
        return code;
    }
    let all_up = reports.iter().all(|r| r.is_up()) && !resolved.has_errors();
    let canary_failed = canaries.iter().flatten().any(|c| c.failed());
    let daemon_failed = daemon_view::any_failed(daemon_check.as_ref());
    ExitCode::from(if all_up && !canary_failed && !daemon_failed {
        ALL_UP
    } else {
        NOT_ALL_UP
    })
}

/// What `check` found beside the probe: whose view was checked (and the
/// daemon's, as root), the substituters, the canaries (with `--build`).
pub struct Extras<'a> {
    pub local_view: &'a LocalView,
    pub daemon_check: Option<&'a Result<daemon_view::DaemonCheck, String>>,
    pub substituters: &'a [rbtop::substituters::SubstituterCheck],
    /// Each builder's own substituters (with `builders-use-substitutes`).
    pub builder_substituters: Option<&'a [Option<rbtop::substituters::from_builder::Outcome>]>,
    pub canaries: Option<&'a [rbtop::canary::CanaryResult]>,
}

/// The output in the format asked for (colour only for a table going to a terminal).
fn render(
    args: &CheckArgs,
    machines: &[Machine],
    reports: &[HostReport],
    triage: &Triage,
    extras: &Extras,
) -> String {
    match args.output_format() {
        CheckFormat::Table => {
            let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
            // On a terminal the table fits its width; piped or to a file, it is whole.
            let width = to_terminal
                .then(|| crossterm::terminal::size().ok())
                .flatten()
                .map(|(w, _)| usize::from(w));
            let mut text = render_table_fitting(
                machines,
                reports,
                triage,
                use_color() && args.output.is_none(),
                width,
            );
            text.push_str(&daemon_view::render(
                extras.local_view,
                extras.daemon_check,
                machines,
                reports,
            ));
            text.push_str(&super::substituters::render(extras.substituters));
            if let Some(outcomes) = extras.builder_substituters {
                text.push_str(&super::builder_substituters::render(machines, outcomes));
            }
            if let Some(canaries) = extras.canaries {
                let via_daemon = rbtop::canary::request::daemon_socket().is_some();
                text.push_str(&super::canary::render(machines, canaries, via_daemon));
            }
            text
        }
        CheckFormat::Json => {
            let mut doc = report(machines, reports, triage);
            doc.checked_as = Some(daemon_view::CheckedAs::of(
                extras.local_view,
                extras.daemon_check,
            ));
            if let Some(Ok(check)) = extras.daemon_check {
                for (host, daemon) in doc.hosts.iter_mut().zip(&check.hosts) {
                    host.daemon = daemon.as_ref();
                }
            }
            doc.substituters = Some(
                extras
                    .substituters
                    .iter()
                    .map(super::substituters::SubstituterJson::of)
                    .collect(),
            );
            if let Some(canaries) = extras.canaries {
                for (host, canary) in doc.hosts.iter_mut().zip(canaries) {
                    host.canary = Some(super::canary::CanaryJson::of(canary));
                }
            }
            if let Some(outcomes) = extras.builder_substituters {
                for (host, outcome) in doc.hosts.iter_mut().zip(outcomes) {
                    host.builder_substituters = outcome
                        .as_ref()
                        .map(super::builder_substituters::BuilderSubstitutersJson::of);
                }
            }
            serde_json::to_string_pretty(&doc).expect("plain data serialises") + "\n"
        }
        CheckFormat::Prometheus => render_prometheus(machines, reports, triage, extras.canaries),
    }
}

/// To stdout, or to `--output FILE` atomically.
fn emit(args: &CheckArgs, text: &str) -> Result<(), ExitCode> {
    match &args.output {
        None => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            Ok(())
        }
        Some(path) => rbtop::export::write_atomically(path, text.as_bytes()).map_err(|e| {
            say!("rbtop: cannot write {}: {e}", path.display());
            ExitCode::from(NOT_ALL_UP)
        }),
    }
}

/// Prometheus text exposition of one probe of every host (no probe
/// duration: a one-shot check probes all hosts at once).
pub fn render_prometheus(
    machines: &[Machine],
    reports: &[HostReport],
    triage: &Triage,
    canaries: Option<&[rbtop::canary::CanaryResult]>,
) -> String {
    let samples: Vec<BuilderSample> = machines
        .iter()
        .zip(reports)
        .enumerate()
        .map(|(index, (machine, report))| BuilderSample {
            machine,
            report: Some(report),
            probe_duration: None,
            consecutive_failures: u32::from(!report.is_up()),
            last_probe: Some(std::time::SystemTime::now()),
            busy_slots: triage.machine_load(index).map(|load| load.busy),
            builds: triage
                .builds(index)
                .and_then(|b| b.as_ref().ok())
                .map(Vec::as_slice),
            live_kept: None,
            canary: canaries.and_then(|c| c.get(index)).filter(|c| c.tried()),
        })
        .collect();
    rbtop::export::render_metrics(&samples, &FleetExtras::default())
}

/// The `--json` document. Field order and names are a stable interface.
#[derive(Debug, Serialize)]
pub struct CheckReport<'a> {
    pub hosts: Vec<HostJson<'a>>,
    pub summary: Summary,
    /// Why this machine's build slots could not be read (then every host's
    /// `slots` and `upload_lock` are null).
    pub slots_error: Option<&'a str>,
    /// Which account was checked, and whether the nix-daemon's view was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_as: Option<daemon_view::CheckedAs>,
    /// Every configured substituter, checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substituters: Option<Vec<super::substituters::SubstituterJson<'a>>>,
}

#[derive(Debug, Serialize)]
pub struct HostJson<'a> {
    pub uri: &'a str,
    pub host: &'a str,
    pub status: Status,
    pub reason: Option<&'a str>,
    pub connect_ms: Option<f64>,
    pub handshake_ms: Option<f64>,
    pub protocol_version: Option<&'a str>,
    pub nix_version: Option<&'a str>,
    pub trusted: Option<bool>,
    pub systems: &'a [String],
    pub max_jobs: u32,
    pub speed_factor: f64,
    pub supported_features: &'a [String],
    pub mandatory_features: &'a [String],
    pub facts: Option<&'a Facts>,
    /// This machine's build slots on the host (its local build hooks').
    pub slots: Option<SlotsJson<'a>>,
    /// Who is copying inputs to the host, if anyone.
    pub upload_lock: Option<&'a LockHolder>,
    /// The builds running on the host; null when it could not be asked.
    pub builds: Option<&'a [RemoteBuild]>,
    /// Why the host's builds could not be listed.
    pub builds_error: Option<String>,
    /// The canary build's result (`--build` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::canary::CanaryJson<'a>>,
    /// The nix-daemon's (root's) view of the host, checked without
    /// building (as root, with a daemon; SSH hosts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon: Option<&'a DaemonHostView>,
    /// The substituters as the host itself reaches them (with
    /// `builders-use-substitutes`; hosts up over SSH only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builder_substituters: Option<super::builder_substituters::BuilderSubstitutersJson<'a>>,
}

#[derive(Debug, Serialize)]
pub struct SlotsJson<'a> {
    pub busy: u32,
    pub max: u32,
    pub holders: &'a [SlotHolder],
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub total: usize,
    pub up: usize,
}

/// Milliseconds with one decimal, as the JSON shows them.
fn millis(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0)
}

pub fn report<'a>(
    machines: &'a [Machine],
    reports: &'a [HostReport],
    triage: &'a Triage,
) -> CheckReport<'a> {
    let hosts: Vec<HostJson> = machines
        .iter()
        .zip(reports)
        .enumerate()
        .map(|(index, (m, r))| HostJson {
            uri: &m.store.uri,
            host: m.host_name(),
            status: r.status,
            reason: r.reason.as_deref(),
            connect_ms: millis(r.connect),
            handshake_ms: millis(r.handshake),
            protocol_version: r.protocol_version.as_deref(),
            nix_version: r.nix_version.as_deref(),
            trusted: r.trusted,
            systems: &m.systems,
            max_jobs: m.max_jobs,
            speed_factor: m.speed_factor,
            supported_features: &m.supported_features,
            mandatory_features: &m.mandatory_features,
            facts: r.facts.as_ref(),
            slots: triage.machine_load(index).map(|load| SlotsJson {
                busy: load.busy,
                max: load.max,
                holders: &load.holders,
            }),
            upload_lock: triage
                .machine_load(index)
                .and_then(|load| load.upload_lock.as_ref()),
            builds: triage
                .builds(index)
                .and_then(|b| b.as_ref().ok())
                .map(Vec::as_slice),
            builds_error: triage
                .builds(index)
                .and_then(|b| b.as_ref().err())
                .map(ToString::to_string),
            canary: None,
            daemon: None,
            builder_substituters: None,
        })
        .collect();
    let up = reports.iter().filter(|r| r.is_up()).count();
    let slots_error = match &triage.load {
        LocalLoad::Unreadable { reason, .. } => Some(reason.as_str()),
        LocalLoad::Readable { .. } => None,
    };
    CheckReport {
        summary: Summary {
            total: hosts.len(),
            up,
        },
        hosts,
        slots_error,
        checked_as: None,
        substituters: None,
    }
}

pub fn render_json(machines: &[Machine], reports: &[HostReport], triage: &Triage) -> String {
    serde_json::to_string_pretty(&report(machines, reports, triage)).expect("plain data serialises")
}

/// Colour for a status word (the word itself always says it: never colour alone).
fn status_color(status: Status) -> Color {
    match status {
        Status::Up => Color::Green,
        Status::Timeout => Color::Yellow,
        _ => Color::Red,
    }
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty.
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn ms_cell(d: Option<Duration>) -> String {
    match d {
        Some(d) if d < Duration::from_millis(10) => format!("{:.1}ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.0}ms", d.as_secs_f64() * 1e3),
        None => "-".into(),
    }
}

fn bytes(n: Option<u64>) -> String {
    n.map_or("-".into(), |n| format_size(n, BINARY))
}

/// The human table, hosts in machines-file order, then one line per
/// failure; whole, as piped output gets it.
#[cfg(test)]
pub fn render_table(
    machines: &[Machine],
    reports: &[HostReport],
    triage: &Triage,
    color: bool,
) -> String {
    render_table_fitting(machines, reports, triage, color, None)
}

/// Dropped first to last when the table is wider than the terminal; HOST
/// and STATUS always stay (the reasons follow under the table).
const DROP_ORDER: [&str; 12] = [
    "MEM FREE",
    "SPEED",
    "HANDSHAKE",
    "TRUSTED",
    "PROTO",
    "BUILDS",
    "LOAD/CPU",
    "SYSTEMS",
    "NIX",
    "STORE FREE",
    "CONNECT",
    "JOBS",
];

/// The table in at most `width` columns (when given): the least useful
/// columns go first.
pub fn render_table_fitting(
    machines: &[Machine],
    reports: &[HostReport],
    triage: &Triage,
    color: bool,
    width: Option<usize>,
) -> String {
    let header = [
        "HOST",
        "STATUS",
        "CONNECT",
        "HANDSHAKE",
        "PROTO",
        "NIX",
        "TRUSTED",
        "SYSTEMS",
        "JOBS",
        "BUILDS",
        "SPEED",
        "LOAD/CPU",
        "MEM FREE",
        "STORE FREE",
    ];
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    for (index, (m, r)) in machines.iter().zip(reports).enumerate() {
        let status = Cell::new(r.status.name());
        let status = if color {
            status.fg(status_color(r.status))
        } else {
            status
        };
        let facts = r.facts.as_ref();
        rows.push(vec![
            Cell::new(for_terminal(m.host_name())),
            status,
            Cell::new(ms_cell(r.connect)),
            Cell::new(ms_cell(r.handshake)),
            Cell::new(for_terminal(r.protocol_version.as_deref().unwrap_or("-"))),
            Cell::new(for_terminal(r.nix_version.as_deref().unwrap_or("-"))),
            Cell::new(match r.trusted {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }),
            Cell::new(for_terminal(&super::machines::or_dash(&m.systems))),
            Cell::new(match triage.machine_load(index) {
                Some(load) => format!("{}/{}", load.busy, m.max_jobs),
                None => format!("?/{}", m.max_jobs),
            }),
            Cell::new(match triage.builds(index) {
                Some(Ok(builds)) => remote_builds::text::count(builds),
                Some(Err(_)) => "?".into(),
                None => "-".into(),
            }),
            Cell::new(m.speed_factor),
            Cell::new(
                facts
                    .and_then(Facts::load_per_cpu)
                    .map_or("-".into(), |l| format!("{l:.2}")),
            ),
            Cell::new(bytes(facts.and_then(|f| f.mem_available))),
            Cell::new(bytes(facts.and_then(|f| f.store_free))),
        ]);
    }
    let mut kept: Vec<usize> = (0..header.len()).collect();
    let make = |kept: &[usize]| {
        let mut table = super::plain_table();
        table.set_header(kept.iter().map(|&i| header[i]));
        if color {
            table.enforce_styling();
        }
        for row in &rows {
            table.add_row(kept.iter().map(|&i| row[i].clone()));
        }
        table
    };
    let mut table = make(&kept);
    if let Some(width) = width {
        let widest = |table: &comfy_table::Table| {
            super::plain_table_text(table)
                .lines()
                .map(|l| strip_ansi_escapes::strip_str(l).chars().count())
                .max()
                .unwrap_or(0)
        };
        for drop in DROP_ORDER {
            if widest(&table) <= width {
                break;
            }
            kept.retain(|&i| header[i] != drop);
            table = make(&kept);
        }
    }
    let mut out = super::plain_table_text(&table);
    let up = reports.iter().filter(|r| r.is_up()).count();
    out.push_str(&format!("\n{up} of {} up\n", reports.len()));
    for (m, r) in machines.iter().zip(reports).filter(|(_, r)| !r.is_up()) {
        let line = format!(
            "{} ({}): {}",
            m.host_name(),
            m.location,
            probe::text::failure(r.status, r.reason.as_deref().unwrap_or(""))
        );
        out.push_str(&for_terminal(&line));
        out.push('\n');
        if r.status == Status::Hostkey {
            let advice = probe::host_key_advice::advise(m, r.stderr.as_deref().unwrap_or_default());
            let fp = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "  pinned key {} · presented {}\n",
                fp(&advice.pinned),
                fp(&advice.presented)
            ));
            for step in &advice.fix {
                out.push_str(&format!("  {}\n", for_terminal(step)));
            }
        }
    }
    for (m, r) in machines.iter().zip(reports) {
        if r.is_up() && r.trusted == Some(false) {
            let who = probe::text::ssh_user(m.store.user.as_deref(), m.host_name());
            let line = format!(
                "{} ({}): {}",
                m.host_name(),
                m.location,
                probe::text::not_trusted(&who)
            );
            out.push_str(&for_terminal(&line));
            out.push('\n');
        }
    }
    // The failure lines and the triage quote hosts' answers: every line
    // shown, never obeyed (the table's own colours are added above).
    let below = render_triage(machines, triage);
    out.push_str(&for_terminal_lines(&below));
    out
}

/// After the table: whatever holds a slot or the upload lock, each build,
/// and what could not be read.
fn render_triage(machines: &[Machine], triage: &Triage) -> String {
    let mut out = String::new();
    if let LocalLoad::Unreadable { reason, .. } = &triage.load {
        out.push_str(&format!("build slots: {reason}\n"));
    }
    for (index, m) in machines.iter().enumerate() {
        let host = m.host_name();
        if let Some(load) = triage.machine_load(index) {
            for holder in &load.holders {
                let holder = slots::text::slot_holder(holder, &slots::text::since(holder.since));
                out.push_str(&format!("{host}: slot {holder}\n"));
            }
            if let Some(lock) = &load.upload_lock {
                let holder = slots::text::upload_lock_holder(lock, &slots::text::since(lock.since));
                out.push_str(&format!("{host}: upload lock {holder}\n"));
            }
        }
        match triage.builds(index) {
            Some(Ok(builds)) => {
                for b in builds {
                    out.push_str(&format!("{host}: {}\n", remote_builds::text::build(b)));
                }
            }
            Some(Err(why)) => out.push_str(&format!(
                "{host}: builds {}\n",
                remote_builds::text::unknown(why)
            )),
            None => {}
        }
    }
    if out.is_empty() {
        out
    } else {
        format!("\n{out}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::machines;
    use super::*;
    use rbtop::probe::Via;
    use rbtop::remote_builds::Client;
    use rbtop::slots::MachineLoad;

    fn up() -> HostReport {
        HostReport {
            status: Status::Up,
            reason: None,
            via: Via::Ssh,
            connect: Some(Duration::from_micros(231_040)),
            handshake: Some(Duration::from_micros(3_149)),
            ping: Some(Duration::from_micros(240)),
            protocol_version: Some("2.7".into()),
            nix_version: Some("2.8.0".into()),
            trusted: None,
            facts: Some(Facts {
                arch: Some("x86_64".into()),
                kernel: Some("Linux 6.1.0".into()),
                cpus: Some(2),
                load: Some([0.1, 0.2, 0.3]),
                mem_total: Some(4 << 30),
                mem_available: Some(1 << 30),
                store_free: Some(10 << 30),
                uptime_s: Some(3600),
                nix_version: Some("2.8.0".into()),
                processes: None,
            }),
            stderr: None,
        }
    }

    /// No slot held, no build listed.
    fn idle(machines: &[Machine]) -> Triage {
        Triage {
            load: LocalLoad::Readable {
                machines: machines
                    .iter()
                    .map(|m| MachineLoad {
                        busy: 0,
                        max: m.max_jobs,
                        holders: Vec::new(),
                        upload_lock: None,
                    })
                    .collect(),
            },
            builds: vec![None; machines.len()],
        }
    }

    /// b1 (of b1, b2): slot 0 and the upload lock held by hook 4242, and
    /// its build running there.
    fn busy_b1() -> Triage {
        let since = Some(
            std::time::UNIX_EPOCH
                + Duration::from_secs(
                    chrono::DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
                        .unwrap()
                        .timestamp() as u64,
                ),
        );
        let b1 = MachineLoad {
            busy: 1,
            max: 2,
            holders: vec![SlotHolder {
                slot: 0,
                pid: 4242,
                since,
            }],
            upload_lock: Some(LockHolder { pid: 4242, since }),
        };
        let b2 = MachineLoad {
            busy: 0,
            max: 1,
            holders: Vec::new(),
            upload_lock: None,
        };
        let build = RemoteBuild {
            drv: Some("/nix/store/aaaa-hello.drv".into()),
            name: "hello".into(),
            pid: 5120,
            user: "nixbld1".into(),
            elapsed_s: 50,
            client: Client::ThisMachine,
            out: Some("/nix/store/bbbb-hello".into()),
            cpu_s: 1.5,
            serving_pid: Some(5100),
            slot: Some(0),
            detail: "slot 0 of this machine (hook 4242)".into(),
            cpu_idle_s: None,
            start_ticks: 95_000,
            serving_start_ticks: Some(90_010),
        };
        Triage {
            load: LocalLoad::Readable {
                machines: vec![b1, b2],
            },
            builds: vec![Some(Ok(vec![build])), None],
        }
    }

    #[test]
    fn an_untrusted_user_shows_no_and_is_flagged_under_the_table() {
        let ms = machines("ssh://nixremote@b1 x86_64-linux - 2\nssh://b2\nssh://b3");
        let trusted = |t| HostReport { trusted: t, ..up() };
        let reports = [trusted(Some(false)), trusted(Some(true)), trusted(None)];
        let table = render_table(&ms, &reports, &idle(&ms), false);
        let column = |row: usize| {
            let header = table.lines().next().unwrap();
            let at = header.find("TRUSTED").unwrap();
            table.lines().nth(row).unwrap()[at..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            [column(1), column(2), column(3)],
            ["no", "yes", "-"],
            "{table}"
        );
        let flagged: Vec<&str> = table
            .lines()
            .filter(|l| l.contains("builds will fail: not privileged"))
            .collect();
        assert_eq!(flagged.len(), 1, "{table}");
        assert!(
            flagged[0].starts_with("b1 (--builders): builds will fail: not privileged (the builder's nix-daemon does not trust nixremote@b1;"),
            "{table}"
        );
        // A host that is down is not flagged, whatever its last trust said.
        let down = HostReport {
            status: Status::Refused,
            reason: Some("refused".into()),
            ..trusted(Some(false))
        };
        let table = render_table(&ms, &[down, up(), up()], &idle(&ms), false);
        assert!(!table.contains("not privileged"), "{table}");
    }

    #[test]
    fn the_table_says_who_holds_slots_and_what_builds() {
        let ms = machines("ssh://b1 x86_64-linux - 2\nssh-ng://b2");
        let table = render_table(&ms, &[up(), up()], &busy_b1(), false);
        let b1_row = table.lines().nth(1).unwrap();
        assert!(b1_row.contains("1/2") && b1_row.contains(" 1 "), "{table}");
        for line in [
            "b1: slot 0 held by pid 4242 since 2026-11-21T10:00:00Z",
            "b1: upload lock held by pid 4242 since 2026-11-21T10:00:00Z",
            "b1: building hello (pid 5120, user nixbld1, 50 s, this-machine): slot 0",
        ] {
            assert!(table.contains(line), "{line} in\n{table}");
        }
        let unreadable = Triage {
            load: LocalLoad::Unreadable {
                dir: "/nix/var/nix/current-load".into(),
                reason: "permission denied reading it".into(),
            },
            builds: vec![
                Some(Err(rbtop::remote_builds::ListingError::Unsupported(
                    "this host has no Linux /proc".into(),
                ))),
                None,
            ],
        };
        let table = render_table(&ms, &[up(), up()], &unreadable, false);
        assert!(table.contains("?/2"), "{table}");
        assert!(table.contains("build slots: permission denied"), "{table}");
        assert!(
            table.contains("b1: builds unknown: this host has no Linux /proc"),
            "{table}"
        );
    }

    #[test]
    fn json_has_exactly_the_documented_shape() {
        let ms = machines("ssh://b1 x86_64-linux,i686-linux - 2 1 kvm big-parallel\nssh-ng://b2");
        let reports = [
            up(),
            HostReport::failed(
                Status::Refused,
                Via::Ssh,
                "ssh: connect to host b2 port 22: Connection refused",
            ),
        ];
        let text = render_json(&ms, &reports, &busy_b1());
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let host = &json["hosts"][0];
        // Key order as documented: sort the keys by where they first appear in the text.
        let first_host = &text[..text.find("\"ssh-ng://b2\"").unwrap()];
        let mut keys: Vec<&str> = host
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_by_key(|k| first_host.find(&format!("\"{k}\":")).unwrap());
        assert_eq!(
            keys,
            [
                "uri",
                "host",
                "status",
                "reason",
                "connect_ms",
                "handshake_ms",
                "protocol_version",
                "nix_version",
                "trusted",
                "systems",
                "max_jobs",
                "speed_factor",
                "supported_features",
                "mandatory_features",
                "facts",
                "slots",
                "upload_lock",
                "builds",
                "builds_error"
            ]
        );
        assert_eq!(
            host["slots"],
            serde_json::json!({"busy": 1, "max": 2, "holders": [
                {"slot": 0, "pid": 4242, "since": "2026-11-21T10:00:00Z"}
            ]})
        );
        assert_eq!(
            host["upload_lock"],
            serde_json::json!({"pid": 4242, "since": "2026-11-21T10:00:00Z"})
        );
        let build = &host["builds"][0];
        for (key, value) in [
            ("drv", serde_json::json!("/nix/store/aaaa-hello.drv")),
            ("name", serde_json::json!("hello")),
            ("pid", serde_json::json!(5120)),
            ("user", serde_json::json!("nixbld1")),
            ("elapsed_s", serde_json::json!(50)),
            ("client", serde_json::json!("this-machine")),
        ] {
            assert_eq!(build[key], value, "{key}");
        }
        assert_eq!(host["builds_error"], serde_json::Value::Null);
        assert_eq!(json["hosts"][1]["slots"]["busy"], 0);
        assert_eq!(json["hosts"][1]["builds"], serde_json::Value::Null);
        assert_eq!(json["slots_error"], serde_json::Value::Null);
        assert_eq!(host["uri"], "ssh://b1");
        assert_eq!(host["host"], "b1");
        assert_eq!(host["status"], "up");
        assert_eq!(host["reason"], serde_json::Value::Null);
        assert_eq!(host["connect_ms"], 231.0);
        assert_eq!(host["handshake_ms"], 3.1);
        assert_eq!(host["protocol_version"], "2.7");
        assert_eq!(host["trusted"], serde_json::Value::Null);
        assert_eq!(
            host["systems"],
            serde_json::json!(["i686-linux", "x86_64-linux"])
        );
        assert_eq!(host["max_jobs"], 2);
        assert_eq!(host["speed_factor"], 1.0);
        assert_eq!(host["supported_features"], serde_json::json!(["kvm"]));
        assert_eq!(
            host["mandatory_features"],
            serde_json::json!(["big-parallel"])
        );
        let mut facts: Vec<&str> = host["facts"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        facts.sort_by_key(|k| first_host.find(&format!("\"{k}\":")).unwrap());
        assert_eq!(
            facts,
            [
                "arch",
                "kernel",
                "cpus",
                "load",
                "mem_total",
                "mem_available",
                "store_free",
                "uptime_s"
            ]
        );
        assert_eq!(host["facts"]["load"], serde_json::json!([0.1, 0.2, 0.3]));
        let down = &json["hosts"][1];
        assert_eq!(down["status"], "refused");
        assert_eq!(down["facts"], serde_json::Value::Null);
        assert_eq!(down["connect_ms"], serde_json::Value::Null);
        assert!(
            down["reason"]
                .as_str()
                .unwrap()
                .contains("Connection refused")
        );
        assert_eq!(json["summary"], serde_json::json!({"total": 2, "up": 1}));
    }

    #[test]
    fn the_table_fits_80_columns_by_dropping_the_least_useful_columns() {
        let ms = machines(
            "ssh://a-rather-long-builder-name.example x86_64-linux,aarch64-linux - 2 1\nssh://b x86_64-linux - 2 1",
        );
        let reports = [
            up(),
            HostReport::failed(
                Status::Refused,
                Via::Ssh,
                "ssh: connect to host b port 22: Connection refused",
            ),
        ];
        let whole = render_table(&ms, &reports, &idle(&ms), false);
        let header = |t: &str| t.lines().next().unwrap().to_string();
        assert!(whole.lines().next().unwrap().len() > 80, "{whole}");
        let fitted = render_table_fitting(&ms, &reports, &idle(&ms), false, Some(80));
        let table_lines: Vec<&str> = fitted.lines().take(3).collect();
        assert!(
            table_lines.iter().all(|l| l.chars().count() <= 80),
            "{fitted}"
        );
        assert!(header(&fitted).starts_with("HOST"), "{fitted}");
        assert!(
            header(&fitted).contains("STATUS") && header(&fitted).contains("JOBS"),
            "{fitted}"
        );
        assert!(!header(&fitted).contains("MEM FREE"), "{fitted}");
        // The reasons still follow the table, whole.
        assert!(fitted.contains("Connection refused"), "{fitted}");
    }

    #[test]
    fn a_refused_host_key_gets_both_fingerprints_and_the_fix_under_the_table() {
        // base64 -w0 of an ed25519 .pub line (ssh-keygen -lf: SHA256:QuT7…8NQ).
        let pin = "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUJjMU9XMVU2TVgweW1GQm5MdzdFVGxYSW5KNkpJbFdoSG5yVG5Edks5WkI=";
        let ms = machines(&format!("ssh://root@w:2222 x86_64-linux - 2 1 - - {pin}"));
        let mut report = HostReport::failed(Status::Hostkey, Via::Ssh, "host key does not match");
        report.stderr = Some(
            "The fingerprint for the ED25519 key sent by the remote host is\n\
             SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM.\n\
             Host key verification failed."
                .into(),
        );
        let table = render_table(&ms, &[report], &idle(&ms), false);
        assert!(
            table.contains(
                "  pinned key SHA256:QuT7QRdgR5vOzaXYG1Tt8W5WilY0cCutuqcZEV1f8NQ · presented SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM\n"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "ssh-keyscan -p 2222 -t ed25519 w 2>/dev/null | cut -d' ' -f2- | base64 -w0"
            ),
            "{table}"
        );
    }

    #[test]
    fn table_keeps_file_order_and_explains_each_failure() {
        let ms = machines("ssh://b1\nssh://b2\nlocal");
        let reports = [
            HostReport::failed(
                Status::Timeout,
                Via::Ssh,
                "no answer within 3 s while connecting over SSH",
            ),
            up(),
            HostReport::failed(
                Status::Nonix,
                Via::LocalProcess,
                "cannot run local 'nix-store'",
            ),
        ];
        let table = render_table(&ms, &reports, &idle(&ms), false);
        let rows: Vec<&str> = table.lines().skip(1).take(3).collect();
        assert!(
            rows[0].starts_with("b1") && rows[0].contains("timeout"),
            "{table}"
        );
        assert!(
            rows[1].starts_with("b2") && rows[1].contains("up"),
            "{table}"
        );
        assert!(
            rows[1].contains("1 GiB") && rows[1].contains("10 GiB"),
            "{table}"
        );
        assert!(
            rows[2].starts_with("local") && rows[2].contains("nonix"),
            "{table}"
        );
        assert!(table.contains("1 of 3 up"), "{table}");
        assert!(
            table.contains(
                "b1 (--builders): timeout: no answer within 3 s while connecting over SSH"
            ),
            "{table}"
        );
        assert!(!table.contains('\x1b'), "no colour unless asked");
        assert!(render_table(&ms, &reports, &idle(&ms), true).contains('\x1b'));
    }
}
