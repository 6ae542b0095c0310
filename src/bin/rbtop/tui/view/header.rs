//! The top two lines: how the fleet is doing, at a glance. Returns where
//! the warning count is, for a click to open the diagnostics.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{format, style};
use crate::tui::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) -> Rect {
    let summary = app.fleet.summary();
    let mut first = vec![
        Span::styled(" rbtop ", style::title().fg(Color::Black).bg(Color::Cyan)),
        Span::raw("  hosts "),
        Span::styled(
            format!("{}/{} up", summary.up, summary.total),
            if summary.up == summary.total {
                Style::new().fg(Color::Green)
            } else {
                style::title()
            },
        ),
    ];
    if summary.down > 0 {
        first.push(Span::raw(", "));
        first.push(Span::styled(
            format!("{} down", summary.down),
            style::error(),
        ));
    }
    if summary.probing > 0 {
        first.push(Span::styled(
            format!(", {} probing", summary.probing),
            style::dim(),
        ));
    }
    // The warning count comes before the clock, so narrow terminals keep it.
    let warnings = app.context.warning_count() + usize::from(app.fleet.load_problem.is_some());
    let mut warnings_at = Rect::default();
    if warnings > 0 {
        first.push(Span::styled("  │ ", style::dim()));
        let used: usize = first.iter().map(|s| s.width()).sum();
        let text = format!(
            "⚠ {warnings} warning{} ({})",
            if warnings == 1 { "" } else { "s" },
            app.keymap
                .first_key(crate::tui::action::Action::Diagnostics)
        );
        let x = area.x + used.min(usize::from(area.width)) as u16;
        warnings_at = Rect::new(x, area.y, text.chars().count() as u16, 1).intersection(area);
        first.push(Span::styled(text, style::warning()));
    }
    let refreshed = match app.fleet.last_result {
        Some(at) => format!("last result {}", format::clock(at)),
        None => "waiting for the first results".to_string(),
    };
    first.push(Span::styled(
        format!(
            "  │ {refreshed}, every {}s",
            app.fleet.refresh.as_secs_f64()
        ),
        style::dim(),
    ));

    // Only up hosts' slots can be had; the configured total follows when it differs.
    let mut second = vec![Span::styled(" slots busy/usable ", style::dim())];
    if summary.slots.is_empty() {
        second.push(Span::styled("none yet", style::dim()));
    }
    for (n, slots) in summary.slots.iter().enumerate() {
        if n > 0 {
            second.push(Span::styled(" · ", style::dim()));
        }
        second.push(Span::raw(format!("{} ", slots.system)));
        second.push(Span::styled(
            format!("{}/{}", slots.busy, slots.usable),
            if slots.busy >= slots.usable {
                style::warning()
            } else {
                style::title()
            },
        ));
        if slots.usable != slots.total {
            second.push(Span::styled(
                format!(" of {} configured", slots.total),
                style::dim(),
            ));
        }
    }
    if app.fleet.load_problem.is_some() {
        second.push(Span::styled(
            "  (local slots unreadable: see diagnostics)",
            style::warning(),
        ));
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
    warnings_at
}
