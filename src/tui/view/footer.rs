//! The bottom line: the keys that do something right now.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::style;
use crate::tui::action::Action;
use crate::tui::app::{App, Focus};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let line = if app.editing_filter {
        Line::from(vec![
            Span::styled(" filter: ", style::key()),
            Span::raw(app.filter.clone()),
            Span::styled("█", style::key()),
            Span::styled(
                "   Enter keep · Esc clear · Ctrl-U erase · words match host, URI, system, feature, status",
                style::dim(),
            ),
        ])
    } else {
        let actions: &[Action] = if app.overlay.is_some() {
            &[Action::Down, Action::Up, Action::Back, Action::Quit]
        } else if app.fleet.hosts.is_empty() {
            &[Action::Diagnostics, Action::Help, Action::Quit]
        } else if app.focus == Focus::Detail {
            &[
                Action::Down,
                Action::Up,
                Action::NextPane,
                Action::Back,
                Action::Refresh,
                Action::Help,
                Action::Quit,
            ]
        } else {
            &[
                Action::Down,
                Action::Up,
                Action::Detail,
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
            let scrolling = app.overlay.is_some() || app.focus == Focus::Detail;
            let entry = match action {
                Action::Up if scrolling => continue,
                Action::Down if scrolling => (
                    format!(
                        "{}/{}",
                        app.keymap.first_key(Action::Down),
                        app.keymap.first_key(Action::Up)
                    ),
                    "scroll",
                ),
                Action::Back if app.overlay.is_some() => {
                    (app.keymap.first_key(Action::Back), "close")
                }
                _ => (app.keymap.first_key(*action), action.label()),
            };
            entries.push(entry);
        }
        let width = |(key, label): &(String, &str)| key.chars().count() + label.chars().count() + 3;
        // Help and quit always fit, and the diagnostics while there are warnings.
        let warnings = app.context.warning_count() > 0 || app.fleet.load_problem.is_some();
        let always = |label: &str| {
            label == "help" || label == "quit" || (warnings && label == "diagnostics")
        };
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
    };
    frame.render_widget(line, area);
}
