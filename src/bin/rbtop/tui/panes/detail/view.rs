//! The selected host in full: everything `rbtop check --json` says about
//! it, the machines line and where it was read, and its recent history.

use std::time::{Duration, Instant, SystemTime};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Wrap};

use crate::tui::app::{App, Focus};
use crate::tui::panes::hosts;
use crate::tui::view::parts::max_scroll;
use crate::tui::view::{format, style};
use rbtop::canary::CanaryStatus;
use rbtop::daemon_view::DAEMON_ACCOUNT;
use rbtop::dashboard::HISTORY;
use rbtop::dashboard::{Context, HostCanary, HostState};
use rbtop::probe::Status;
use rbtop::remote_builds::KillOutcome;
use rbtop::remote_builds::{self, Client, RemoteBuild};
use rbtop::slots;

/// Draw the selected host in `area`; returns the text's scroll, stopped at
/// its end, or `None` with no host selected.
pub fn render(frame: &mut Frame, area: Rect, app: &App, now: Instant) -> Option<u16> {
    let host = app.selected.and_then(|i| app.fleet.hosts.get(i))?;
    let shown = host.shown();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if app.focus == Focus::Detail {
            style::focused_border()
        } else {
            style::dim()
        })
        .title(Line::from(vec![
            Span::styled(format!(" {} ", host.name()), style::title()),
            Span::styled(
                format!("{} {} ", style::glyph(shown), shown.name()),
                style::status_style(shown),
            ),
        ]));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let [text_area, history_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(3)]).areas(inner);
    let index = app.selected.unwrap_or_default();
    let log_quiet = host
        .build_list()
        .iter()
        .map(|b| b.drv.as_deref().and_then(|drv| app.log_quiet_for(drv, now)))
        .collect();
    let triage = TriageInputs {
        log_quiet,
        selected_build: (app.focus == Focus::Detail).then_some(app.detail_build),
        stall_after: app.jobs.defaults.stall_after,
        upload_lock_after: app.jobs.defaults.upload_lock_after,
        kill_outcome: app
            .kill_outcome
            .as_ref()
            .filter(|(host, _)| *host == index)
            .map(|(_, outcome)| outcome),
        build_log_note: app
            .build_log_note
            .as_ref()
            .filter(|(host, _)| *host == index)
            .map(|(_, why)| why.as_str()),
        job_labels: host
            .build_list()
            .iter()
            .map(|b| {
                let (job, _) = app.job_building(b.drv.as_deref()?)?;
                Some(format!("rbtop job {job} (Enter: its log)"))
            })
            .collect(),
        slot_notes: host
            .load
            .iter()
            .flat_map(|load| &load.holders)
            .map(|holder| slot_note(app, holder.pid))
            .collect(),
    };
    let mut lines = lines(host, &app.context, now);
    lines.splice(
        slots_at(&lines),
        triage_lines(host, &triage, SystemTime::now()),
    );
    let mut scroll = app.detail_scroll;
    if app.reveal_build && triage_selected(&triage) {
        scroll = revealing_selected_build(&lines, scroll, text_area.width, text_area.height);
    }
    let scroll = scroll.min(max_scroll(&lines, text_area.width, text_area.height));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        text_area,
    );
    history(frame, history_area, host);
    Some(scroll)
}

/// What the probe measured. Over a kept session and channel a probe opens
/// nothing, so connect and handshake are the times measured when they were
/// opened, said as such.
fn timings(host: &HostState, report: &rbtop::probe::HostReport, now: Instant) -> String {
    let ms = |d: Option<std::time::Duration>| d.map_or("-".into(), format::latency);
    let opened = |now_measured: Option<Duration>, kept: Option<(Duration, Instant)>| match (
        now_measured,
        kept,
    ) {
        (Some(d), _) => format::latency(d),
        (None, Some((d, at))) if report.is_up() => format!(
            "{} (opened {} ago, kept)",
            format::latency(d),
            format::age(now.saturating_duration_since(at))
        ),
        _ => "-".into(),
    };
    format!(
        "connect {} · handshake {} · ping {}",
        opened(report.connect, host.opened.connect),
        opened(report.handshake, host.opened.handshake),
        ms(report.ping)
    )
}

/// The pinned and presented fingerprints and the fix for this machines line.
fn host_key_lines(machine: &rbtop::machines::Machine, stderr: Option<&str>) -> Vec<Line<'static>> {
    let advice = rbtop::probe::host_key_advice::advise(machine, stderr.unwrap_or_default());
    let unknown = "(not said)".to_string();
    let mut out = vec![
        field(
            "pinned key",
            match (&advice.pinned, machine.public_host_key.is_some()) {
                (Some(fp), _) => fp.clone(),
                (None, true) => "unusable (see diagnostics)".into(),
                (None, false) => "none: checked against known_hosts".into(),
            },
        ),
        field("presented", advice.presented.clone().unwrap_or(unknown)),
    ];
    for (i, step) in advice.fix.iter().enumerate() {
        out.push(field(if i == 0 { "fix" } else { "" }, step.clone()));
    }
    out
}

fn field(name: &str, value: impl Into<String>) -> Line<'static> {
    styled_field(name, value, Style::new())
}

/// A field whose value stands out (an error, a warning).
fn styled_field(name: &str, value: impl Into<String>, value_style: Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<12}"), style::dim()),
        Span::styled(value.into(), value_style),
    ])
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn lines(host: &HostState, app_context: &Context, now: Instant) -> Vec<Line<'static>> {
    let machine = &host.machine;
    let report = host.report.as_ref();
    let mut out = Vec::new();
    match report {
        None => out.push(field("status", "probing: no answer yet")),
        Some(report) => {
            let status = Line::from(vec![
                Span::styled(format!("{:<12}", "status"), style::dim()),
                Span::styled(report.status.name(), style::status_style(host.shown())),
                Span::raw(format!(
                    " via {}",
                    serde_json::to_value(report.via)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                )),
                Span::styled(
                    host.since.map_or_else(String::new, |since| {
                        format!(
                            " · {} for {}",
                            if report.is_up() { "up" } else { "down" },
                            format::age(now.saturating_duration_since(since))
                        )
                    }),
                    style::dim(),
                ),
            ]);
            out.push(status);
            if let Some(reason) = &report.reason {
                out.push(styled_field("reason", reason.clone(), style::error()));
            }
            if report.status == rbtop::probe::Status::Hostkey {
                out.extend(host_key_lines(machine, report.stderr.as_deref()));
            }
        }
    }
    out.push(field(
        "machines",
        format!("{}  {}", machine.location, machine.uri()),
    ));
    out.push(field("line", machine.line.trim().to_string()));
    if let Some(stderr) = report.and_then(|r| r.stderr.as_deref()) {
        let who = if matches!(report.map(|r| r.via), Some(rbtop::probe::Via::Ssh)) {
            "ssh said"
        } else {
            "stderr"
        };
        out.push(field(who, ""));
        for line in stderr.lines() {
            out.push(Line::styled(format!("  {line}"), style::dim()));
        }
    }
    if let Some(report) = report {
        out.push(field("timings", timings(host, report, now)));
        out.push(field(
            "store",
            format!(
                "{} protocol {} · Nix {} · trusted {}",
                hosts::view::protocol(machine),
                opt(report.protocol_version.as_deref()),
                opt(report.nix_version.as_deref()),
                match (report.trusted, report.is_up()) {
                    (Some(true), _) => "yes",
                    (Some(false), _) => "no",
                    (None, true) => "unknown",
                    (None, false) => "-",
                }
            ),
        ));
        if report.is_up() && report.trusted == Some(false) {
            let who =
                rbtop::probe::text::ssh_user(machine.store.user.as_deref(), machine.host_name());
            out.push(Line::styled(
                format!("  {}", rbtop::probe::text::not_trusted(&who)),
                style::warning(),
            ));
        }
    }
    out.extend(daemon_lines(host, app_context));
    out.extend(builder_substituters_lines(host));
    out.extend(canary_lines(host, now));
    let jobs = match &host.load {
        Some(load) => format!("{}/{} busy here", load.busy, machine.max_jobs),
        None => format!("max {}", machine.max_jobs),
    };
    out.push(field(
        "builds",
        format!(
            "{} · jobs {jobs} · speed factor {}",
            machine.systems.join(" "),
            machine.speed_factor
        ),
    ));
    out.push(field(
        "features",
        format!(
            "{} · mandatory: {}",
            words(&machine.supported_features),
            words(&machine.mandatory_features)
        ),
    ));
    if let Some(facts) = report.and_then(|r| r.facts.as_ref()) {
        let mut parts = vec![
            format!(
                "{} {}",
                opt(facts.arch.as_deref()),
                opt(facts.kernel.as_deref())
            ),
            format!("{} CPUs", opt(facts.cpus)),
        ];
        if let Some([l1, l5, l15]) = facts.load {
            parts.push(format!("load {l1:.2} {l5:.2} {l15:.2}"));
        }
        if let (Some(available), Some(total)) = (facts.mem_available, facts.mem_total) {
            parts.push(format!(
                "memory {} free of {}",
                format::bytes(available),
                format::bytes(total)
            ));
        }
        if let Some(free) = facts.store_free {
            parts.push(format!("store {} free", format::bytes(free)));
        }
        if let Some(up) = facts.uptime_s {
            parts.push(format!(
                "up {}",
                format::age(std::time::Duration::from_secs(up))
            ));
        }
        out.push(field("host", parts.join(" · ")));
    }
    let mut probe = match host.reported_at {
        Some(at) => format!("last result {}", format::clock(at)),
        None => "first probe running".to_string(),
    };
    if host.in_flight {
        probe.push_str(" · probing now");
    } else if let Some(wait) = host.retry_in(now) {
        // The countdown is redrawn once a second: under one second is "now".
        let when = if wait.as_secs() == 0 {
            "now".to_string()
        } else {
            format!("in {}", format::age(wait))
        };
        probe.push_str(&format!(
            " · {} failure{} in a row, next try {when}",
            host.failures,
            if host.failures == 1 { "" } else { "s" },
        ));
    }
    if host.reconnects > 0 {
        probe.push_str(&format!(" · reconnected {} time(s)", host.reconnects));
    }
    out.push(field("probe", probe));
    if !host.events.is_empty() {
        out.push(field("events", ""));
        for event in host.events.iter().rev() {
            out.push(Line::from(vec![
                Span::styled(format!("  {} ", format::clock(event.wall)), style::dim()),
                Span::raw(event.text.clone()),
            ]));
        }
    }
    out
}

fn triage_selected(triage: &TriageInputs) -> bool {
    triage.selected_build.is_some()
}

/// The scroll that shows the selected build's line (`▸`) and the line
/// under it (a `log` note) when `scroll` does not: selecting a build with
/// the slots above it wrapped over many rows must not hide it.
fn revealing_selected_build(lines: &[Line], scroll: u16, width: u16, height: u16) -> u16 {
    let Some(at) = lines.iter().position(|l| {
        l.spans
            .first()
            .is_some_and(|s| s.content == SELECTED_MARKER)
    }) else {
        return scroll;
    };
    let rows = |line: &Line| line.width().div_ceil(usize::from(width.max(1))).max(1);
    let top: usize = lines[..at].iter().map(rows).sum();
    let tall: usize = lines[at..].iter().take(2).map(rows).sum();
    let (scroll, height) = (usize::from(scroll), usize::from(height));
    let revealed = if top < scroll {
        top
    } else if top + tall > scroll + height {
        (top + tall).saturating_sub(height).min(top)
    } else {
        scroll
    };
    u16::try_from(revealed).unwrap_or(u16::MAX)
}

/// Which account the probe ran as when the daemon's is another, or the
/// daemon's (root's) view of this host when it was checked.
fn daemon_lines(host: &HostState, context: &Context) -> Vec<Line<'static>> {
    if let Some(view) = context.checked_as.as_ref().filter(|v| v.user_view_only()) {
        return vec![styled_field(
            "checked as",
            format!(
                "{}: the nix-daemon connects as {DAEMON_ACCOUNT}, with its own SSH identity and known_hosts (run rbtop as {DAEMON_ACCOUNT} to check them, or c for a canary build)",
                view.account.name
            ),
            style::warning(),
        )];
    }
    let Some(daemon) = &host.daemon_view else {
        return Vec::new();
    };
    let identity = daemon.identity.as_ref().map_or_else(
        || "no identity file".to_string(),
        |path| format!("identity {}", path.display()),
    );
    if daemon.status == Status::Up {
        vec![field(
            "daemon",
            format!("up as {DAEMON_ACCOUNT} · {identity}"),
        )]
    } else {
        vec![styled_field(
            "daemon",
            format!(
                "{} as {DAEMON_ACCOUNT}: {} · {identity}",
                daemon.status.name(),
                daemon.reason.as_deref().unwrap_or("")
            ),
            style::error(),
        )]
    }
}

/// The substituters as the host itself reaches them (with
/// `builders-use-substitutes`): how many are usable, and a line for each
/// that is not.
fn builder_substituters_lines(host: &HostState) -> Vec<Line<'static>> {
    use rbtop::sanitize::for_terminal;
    const NAME: &str = "caches";
    let Some(outcome) = &host.builder_substituters else {
        return Vec::new();
    };
    let found = match outcome {
        Err(why) => {
            return vec![styled_field(
                NAME,
                format!(
                    "substituters not checked from the builder: {}",
                    for_terminal(why)
                ),
                style::dim(),
            )];
        }
        Ok(found) if found.checks.is_empty() && found.not_checked == 0 => {
            return vec![field(NAME, "no substituters configured on the builder")];
        }
        Ok(found) => found,
    };
    let more = match found.not_checked {
        0 => String::new(),
        n => format!(", {n} more not checked"),
    };
    let usable = found.usable();
    let summary = format!(
        "{usable}/{} substituters usable from the builder (builders-use-substitutes){more}",
        found.checks.len()
    );
    let mut out = vec![if usable == found.checks.len() {
        field(NAME, summary)
    } else {
        styled_field(NAME, summary, style::warning())
    }];
    for check in found.checks.iter().filter(|c| !c.is_up()) {
        out.push(Line::styled(
            format!(
                "  {}: {}: {}",
                for_terminal(&check.uri),
                check.status,
                for_terminal(check.reason.as_deref().unwrap_or(""))
            ),
            style::warning(),
        ));
    }
    out
}

/// The latest canary build (`c`): running, or its stages, or its class,
/// Nix's words and the fix.
fn canary_lines(host: &HostState, now: Instant) -> Vec<Line<'static>> {
    let ms = |d: Option<Duration>| d.map_or("-".into(), format::latency);
    let Some(canary) = &host.canary else {
        return Vec::new();
    };
    let (result, at) = match canary {
        HostCanary::Running { since } => {
            return vec![styled_field(
                "canary",
                format!(
                    "building for {}…",
                    format::age(now.saturating_duration_since(*since))
                ),
                style::warning(),
            )];
        }
        HostCanary::Done { result, at } => (result, format::clock(*at)),
    };
    let message = result.message.as_deref().unwrap_or("");
    let mut out = Vec::new();
    match result.status {
        CanaryStatus::Ok => {
            out.push(styled_field(
                "canary",
                format!(
                    "ok at {at} in {} · upload {} · build {} · copy back {}",
                    ms(result.total),
                    ms(result.upload),
                    ms(result.build),
                    ms(result.download)
                ),
                Style::new().fg(Color::Green),
            ));
            out.push(Line::styled(format!("  {message}"), style::dim()));
        }
        CanaryStatus::Failed => {
            let class = result.reason.map_or("?", |c| c.name());
            out.push(styled_field(
                "canary",
                format!("failed ({class}) at {at}"),
                style::error(),
            ));
            for line in message.lines() {
                out.push(Line::styled(format!("  {line}"), style::dim()));
            }
            if let Some(fix) = result.fix() {
                out.push(Line::from(vec![
                    Span::styled("  fix: ", style::dim()),
                    Span::raw(fix),
                ]));
            }
        }
        CanaryStatus::Skipped => out.push(field("canary", format!("skipped: {message}"))),
    }
    out
}

/// What the detail pane shows of slots and remote builds, from the app.
struct TriageInputs<'a> {
    /// For each build this machine's jobs are building: time since its
    /// last log line.
    log_quiet: Vec<Option<Duration>>,
    /// The build selected with Up/Down while the pane has the focus.
    selected_build: Option<usize>,
    stall_after: Duration,
    upload_lock_after: Duration,
    kill_outcome: Option<&'a KillOutcome>,
    /// Why Enter opened no log for the selected build.
    build_log_note: Option<&'a str>,
    /// For each build: `rbtop job #1` when it is one of rbtop's jobs.
    job_labels: Vec<Option<String>>,
    /// For each slot holder: the local user and command behind its hook.
    slot_notes: Vec<String>,
}

/// ` · for alice: nix-build hello.nix`, and ` · rbtop job #1` when the
/// process behind the hook is one of rbtop's jobs; empty when unknown.
fn slot_note(app: &App, hook_pid: u32) -> String {
    let Some(behind) = (app.behind_hook)(hook_pid) else {
        return String::new();
    };
    let job = app
        .job_of_pid(behind.pid)
        .map(|job| format!(" · rbtop job {job}"))
        .unwrap_or_default();
    format!(" · for {}: {}{job}", behind.user, behind.command)
}

/// Slots and builds go right after the status line (and its reason, for a
/// host that is down): what is running there is what triage looks at first.
fn slots_at(lines: &[Line]) -> std::ops::Range<usize> {
    let at = lines
        .iter()
        .position(|l| {
            l.spans
                .first()
                .is_some_and(|s| s.content.starts_with("machines"))
        })
        .unwrap_or(lines.len());
    at..at
}

/// This machine's slots on the host (who holds them, since when), the
/// upload lock, and every build running there with its client.
fn triage_lines(host: &HostState, triage: &TriageInputs, wall: SystemTime) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let held_for = |since: Option<SystemTime>| {
        slots::text::held_for(
            &since
                .and_then(|s| wall.duration_since(s).ok())
                .map_or("?".into(), format::age),
        )
    };
    if let Some(load) = &host.load {
        for (i, holder) in load.holders.iter().enumerate() {
            let note = triage.slot_notes.get(i).cloned().unwrap_or_default();
            out.push(field(
                "slot",
                format!(
                    "{}{note}",
                    slots::text::slot_holder(holder, &held_for(holder.since))
                ),
            ));
        }
        if let Some(lock) = &load.upload_lock {
            let held = lock.since.and_then(|s| wall.duration_since(s).ok());
            let slow = held.is_some_and(|h| h >= triage.upload_lock_after);
            let text = format!(
                "{}{}",
                slots::text::upload_lock_holder(lock, &held_for(lock.since)),
                if slow {
                    " · SLOW: inputs still being copied"
                } else {
                    ""
                }
            );
            let value_style = if slow { style::warning() } else { Style::new() };
            out.push(styled_field("upload", text, value_style));
        }
    }
    let mut note = triage.build_log_note;
    match &host.builds {
        Some(Ok(builds)) if builds.is_empty() => out.push(field("running", "no build")),
        Some(Ok(builds)) => {
            out.push(field(
                "running",
                format!(
                    "{} build{} (K kills the selected one)",
                    builds.len(),
                    if builds.len() == 1 { "" } else { "s" }
                ),
            ));
            let selected = triage
                .selected_build
                .map(|i| i.min(builds.len().saturating_sub(1)));
            for (i, build) in builds.iter().enumerate() {
                let log_quiet = triage.log_quiet.get(i).copied().flatten();
                let mut line =
                    build_line(build, selected == Some(i), log_quiet, triage.stall_after);
                if let Some(label) = triage.job_labels.get(i).cloned().flatten() {
                    line.spans
                        .push(Span::styled(format!("  {label}"), style::key()));
                }
                out.push(line);
                // Why Enter found no log: under the build it was asked for.
                if selected == Some(i)
                    && let Some(why) = note.take()
                {
                    out.push(log_note(why));
                }
            }
        }
        Some(Err(why)) => out.push(field("running", remote_builds::text::unknown(why))),
        None => {}
    }
    if let Some(outcome) = triage.kill_outcome {
        out.push(match outcome {
            Ok(done) => field("killed", done.to_string()),
            Err(why) => styled_field("kill", why.to_string(), style::error()),
        });
    }
    if let Some(why) = note {
        out.push(log_note(why));
    }
    out
}

/// `log  no log to follow for process 4200: …`, sanitised: it holds paths
/// and names read from another process.
fn log_note(why: &str) -> Line<'static> {
    let why = rbtop::sanitize::for_terminal(why).into_owned();
    styled_field("log", why, style::warning())
}

/// The first span of the selected build's line.
const SELECTED_MARKER: &str = "  ▸ ";

/// `▸ hello-2.12  pid 5120 nixbld1  3m 20s  cpu idle 10m  log quiet 2m  orphan: why`
fn build_line(
    build: &RemoteBuild,
    selected: bool,
    log_quiet: Option<Duration>,
    stall_after: Duration,
) -> Line<'static> {
    let stalled = hosts::view::is_stalled(build, stall_after);
    let marker = if selected { SELECTED_MARKER } else { "    " };
    let mut spans = vec![
        Span::raw(marker),
        Span::styled(build.name.clone(), style::title()),
        Span::raw(format!(
            "  pid {} {}  {}",
            build.pid,
            build.user,
            format::age(Duration::from_secs(build.elapsed_s))
        )),
    ];
    if let Some(idle) = build.cpu_idle_s.filter(|&idle| idle > 0) {
        let text = format!("  cpu idle {}", format::age(Duration::from_secs(idle)));
        spans.push(if stalled {
            Span::styled(format!("{text} STALLED"), style::warning())
        } else {
            Span::styled(text, style::dim())
        });
    }
    // Our own job's log: no line for stall_after is a stall too.
    if let Some(quiet) = log_quiet.filter(|q| q.as_secs() > 0) {
        let text = format!("  log quiet {}", format::age(quiet));
        spans.push(if quiet >= stall_after {
            Span::styled(format!("{text} STALLED"), style::warning())
        } else {
            Span::styled(text, style::dim())
        });
    }
    let client = format!("  {}", build.client.name());
    spans.push(if build.client == Client::Orphan {
        Span::styled(client, style::error())
    } else {
        Span::raw(client)
    });
    spans.push(Span::styled(format!(": {}", build.detail), style::dim()));
    let line = Line::from(spans);
    if selected {
        line.style(style::selected())
    } else {
        line
    }
}

fn words(list: &[String]) -> String {
    if list.is_empty() {
        "-".to_string()
    } else {
        list.join(" ")
    }
}

/// Latency sparkline and the up/down timeline, oldest left.
fn history(frame: &mut Frame, area: Rect, host: &HostState) {
    let [label_area, chart_area] =
        Layout::horizontal([Constraint::Length(12), Constraint::Min(1)]).areas(area);
    let width = usize::from(chart_area.width).min(HISTORY);
    let recent: Vec<_> = host
        .history
        .iter()
        .skip(host.history.len().saturating_sub(width))
        .collect();
    let peak = recent.iter().filter_map(|s| s.ping).max();
    frame.render_widget(
        Paragraph::new(vec![
            Line::styled("latency", style::dim()),
            Line::styled(
                peak.map_or_else(|| "  none".into(), |p| format!("  ≤{}", format::latency(p))),
                style::dim(),
            ),
            Line::styled("up/down", style::dim()),
        ]),
        label_area,
    );
    let [spark_area, timeline_area] =
        Layout::vertical([Constraint::Length(2), Constraint::Length(1)]).areas(chart_area);
    let data: Vec<Option<u64>> = recent
        .iter()
        .map(|s| s.ping.map(|d| d.as_micros() as u64))
        .collect();
    frame.render_widget(
        Sparkline::default()
            .data(data)
            .style(Style::new().fg(Color::Cyan)),
        spark_area,
    );
    // Height as well as colour tells up from down.
    let timeline: Vec<Span> = recent
        .iter()
        .map(|s| {
            if s.up {
                Span::styled("█", Style::new().fg(Color::Green))
            } else {
                Span::styled("▁", Style::new().fg(Color::Red))
            }
        })
        .collect();
    frame.render_widget(Line::from(timeline), timeline_area);
}
