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
    // Whether "up" holds for Nix (the account checked, the daemon's view,
    // the canaries) before the clock too: it is what the header is for.
    first.extend(account(app));
    first.extend(canaries(app));
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
    second.extend(substituters(app));
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
    warnings_at
}

/// The canaries asked for (`c`, `C`) in a few words, when there are any.
fn canaries(app: &App) -> Vec<Span<'static>> {
    let canaries = app.fleet.canary_summary();
    if canaries.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        Span::styled("  │ canaries ", style::dim()),
        Span::styled(format!("{} ok", canaries.ok), Style::new().fg(Color::Green)),
    ];
    if canaries.failed > 0 {
        out.push(Span::raw(", "));
        out.push(Span::styled(
            format!("{} failed", canaries.failed),
            style::error(),
        ));
    }
    if canaries.running > 0 {
        out.push(Span::styled(
            format!(", {} building", canaries.running),
            style::warning(),
        ));
    }
    out
}

/// Which account was checked when it is not the daemon's, or how many
/// hosts fail for the daemon (root) when its view was checked.
fn account(app: &App) -> Vec<Span<'static>> {
    if let Some(short) = app.context.checked_as.as_ref().and_then(|v| v.short()) {
        return vec![
            Span::styled("  │ ", style::dim()),
            Span::styled(short, style::warning()),
        ];
    }
    match &app.context.daemon_view {
        Some(Ok(_)) => {
            let failing = app.fleet.daemon_view_failures();
            if failing == 0 {
                vec![Span::styled(
                    "  │ the daemon (root) reaches every host",
                    style::dim(),
                )]
            } else {
                vec![
                    Span::styled("  │ ", style::dim()),
                    Span::styled(
                        format!(
                            "{failing} host{} fail{} for the daemon (root)",
                            if failing == 1 { "" } else { "s" },
                            if failing == 1 { "s" } else { "" }
                        ),
                        style::error(),
                    ),
                ]
            }
        }
        Some(Err(_)) => vec![Span::styled(
            "  │ the daemon's view could not be checked",
            style::warning(),
        )],
        None => Vec::new(),
    }
}

/// How many substituters are usable, once checked (details: `d`).
fn substituters(app: &App) -> Vec<Span<'static>> {
    let Some(checks) = app.context.substituters.as_ref().filter(|c| !c.is_empty()) else {
        return Vec::new();
    };
    let up = checks.iter().filter(|c| c.is_up()).count();
    vec![
        Span::styled("  │ substituters ", style::dim()),
        Span::styled(
            format!("{up}/{} usable", checks.len()),
            if up == checks.len() {
                Style::new().fg(Color::Green)
            } else {
                style::warning()
            },
        ),
    ]
}
