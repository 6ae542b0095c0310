//! The bottom line: the keys that do something right now.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::style;
use crate::tui::action::Action;
use crate::tui::app::{App, Focus};
use crate::tui::popups::{Popup, Screen};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let line = match app.shutting_down {
        Some(n) => Line::from(vec![
            Span::styled(
                format!(" cancelling {n} build{}…", if n == 1 { "" } else { "s" }),
                style::warning(),
            ),
            Span::styled(
                format!(
                    "   {} again: stop waiting for the grace period",
                    app.keymap.first_key(Action::Quit)
                ),
                style::dim(),
            ),
        ]),
        // Otherwise the keys of whatever has the keyboard.
        None => match app.top_popup() {
            Some(Popup::Explain) => Line::styled(
                " Enter explain · Esc close · ↑↓ PgUp PgDn scroll · a system and features (x86_64-linux kvm), or a .drv path",
                style::dim(),
            ),
            Some(Popup::LaunchForm) => Line::styled(
                " Enter launch · Esc close · Tab target · Ctrl-N command · Ctrl-U erase",
                style::dim(),
            ),
            Some(Popup::Confirm) => confirm_line(app),
            Some(Popup::LogSearch) => typing(
                " search: ",
                app.log.as_ref().map_or("", |log| &log.search),
                "   Enter find · Esc cancel · Ctrl-U erase · case ignored",
            ),
            Some(Popup::Filter) => typing(
                " filter: ",
                &app.filter,
                "   Enter keep · Esc clear · Ctrl-U erase · words match host, URI, system, feature, status",
            ),
            Some(Popup::Command) => match app.command_line.as_ref().and_then(|c| c.error.clone()) {
                Some(error) => Line::styled(format!(" {error}"), style::warning()),
                None => typing(
                    " :",
                    app.command_line.as_ref().map_or("", |c| &c.text),
                    "   Enter run · Esc close · sort COLUMN[!] · filter WORDS · build WHAT · quit",
                ),
            },
            Some(Popup::Overlay(_)) | None => actions_line(app, area),
        },
    };
    frame.render_widget(line, area);
}

/// The log pane shows a log read only (`--open-log`, a followed build).
fn reading_a_log(app: &App) -> bool {
    app.log
        .as_ref()
        .and_then(|pane| app.jobs.find(pane.job))
        .is_some_and(|job| rbtop::jobs::runner::lock(job).read_only)
}

/// A yes/no question: the key that says yes, and what it does.
fn confirm_line(app: &App) -> Line<'static> {
    let yes = app.confirm.as_ref().map_or("", |prompt| prompt.yes);
    Line::from(vec![
        Span::styled(
            format!(" {}", app.keymap.first_key(Action::Confirm)),
            style::key(),
        ),
        Span::styled(format!(" {yes} · any other key keeps it"), style::dim()),
    ])
}

/// A line being typed, its cursor, and its keys.
fn typing(label: &'static str, text: &str, keys: &'static str) -> Line<'static> {
    Line::from(vec![
        Span::styled(label, style::key()),
        Span::raw(text.to_string()),
        Span::styled("█", style::key()),
        Span::styled(keys, style::dim()),
    ])
}

/// The actions that do something on the overlay or the screen, as many
/// as fit.
fn actions_line(app: &App, area: Rect) -> Line<'static> {
    let overlay = matches!(app.top_popup(), Some(Popup::Overlay(_)));
    let log = app.screen() == Screen::Log;
    let actions: &[Action] = if overlay {
        &[Action::Down, Action::Up, Action::Back, Action::Quit]
    } else if log {
        &[
            Action::Down,
            Action::Up,
            Action::Follow,
            Action::Filter,
            Action::NextMatch,
            Action::PreviousMatch,
            Action::ScrollRight,
            Action::Wrap,
            Action::Cancel,
            Action::Back,
            Action::Help,
            Action::Quit,
        ]
    } else if app.focus == Focus::Jobs {
        &[
            Action::Down,
            Action::Up,
            Action::Log,
            Action::Cancel,
            Action::Explain,
            Action::Launch,
            Action::NextPane,
            Action::Back,
            Action::Help,
            Action::Quit,
        ]
    } else if app.fleet.hosts.is_empty() {
        &[Action::Diagnostics, Action::Help, Action::Quit]
    } else if app.focus == Focus::Detail && !app.selected_builds().is_empty() {
        &[
            Action::Down,
            Action::Up,
            Action::Log,
            Action::KillBuild,
            Action::NextPane,
            Action::Back,
            Action::Refresh,
            Action::Help,
            Action::Quit,
        ]
    } else if app.focus == Focus::Detail {
        &[
            Action::Down,
            Action::Up,
            Action::Canary,
            Action::NextPane,
            Action::Back,
            Action::Refresh,
            Action::Help,
            Action::Quit,
        ]
    } else if !app.selected_builds().is_empty() {
        // Builds on the selected host: K is one Tab away.
        &[
            Action::Down,
            Action::Up,
            Action::Detail,
            Action::Launch,
            Action::Explain,
            Action::KillBuild,
            Action::Filter,
            Action::NextSort,
            Action::Refresh,
            Action::Diagnostics,
            Action::Help,
            Action::Quit,
        ]
    } else {
        &[
            Action::Down,
            Action::Up,
            Action::Detail,
            Action::Launch,
            Action::Explain,
            Action::NextPane,
            Action::Filter,
            Action::NextSort,
            Action::ReverseSort,
            Action::Refresh,
            Action::Diagnostics,
            Action::Help,
            Action::Quit,
        ]
    };
    // Scrolling keys are one entry; help and quit always fit, the
    // others are dropped from the right when the line is too narrow.
    let mut entries: Vec<(String, &str)> = Vec::new();
    for action in actions {
        let scrolling = overlay || log || app.focus == Focus::Detail;
        let entry = match action {
            // Tab only matters once there is a pane to go to.
            Action::NextPane if app.focus == Focus::Hosts && app.jobs.is_empty() => continue,
            Action::Filter if log => (app.keymap.first_key(*action), "search"),
            Action::Up if scrolling => continue,
            Action::Down if scrolling => (
                format!(
                    "{}/{}",
                    app.keymap.first_key(Action::Down),
                    app.keymap.first_key(Action::Up)
                ),
                // In the detail pane with builds, they select one.
                if app.focus == Focus::Detail
                    && !overlay
                    && !log
                    && !app.selected_builds().is_empty()
                {
                    "select build"
                } else {
                    "scroll"
                },
            ),
            Action::Back if overlay => (app.keymap.first_key(Action::Back), "close"),
            // A log being read has no build to cancel.
            Action::Cancel if log && reading_a_log(app) => continue,
            // Enter on the selected remote build: its log.
            Action::Log if app.focus == Focus::Detail && !log && !overlay => {
                (app.keymap.first_key(Action::Detail), "build log")
            }
            _ => (app.keymap.first_key(*action), action.label()),
        };
        entries.push(entry);
    }
    let width = |(key, label): &(String, &str)| key.chars().count() + label.chars().count() + 3;
    // Help and quit always fit, and the diagnostics while there are warnings.
    let warnings = app.context.warning_count() > 0 || app.fleet.load_problem.is_some();
    let always =
        |label: &str| label == "help" || label == "quit" || (warnings && label == "diagnostics");
    let reserved: usize = entries
        .iter()
        .filter(|(_, label)| always(label))
        .map(width)
        .sum();
    let mut room = usize::from(area.width).saturating_sub(1 + reserved);
    let mut spans = vec![Span::raw(" ")];
    for entry in &entries {
        if !always(entry.1) {
            if width(entry) > room {
                continue;
            }
            room -= width(entry);
        }
        spans.push(Span::styled(entry.0.clone(), style::key()));
        spans.push(Span::styled(format!(" {}  ", entry.1), style::dim()));
    }
    Line::from(spans)
}
