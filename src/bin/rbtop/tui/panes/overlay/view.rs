//! Full-body text over the dashboard: help and the machines diagnostics.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::Overlay;
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::view::parts::max_scroll;
use crate::tui::view::style;
use rbtop::diagnostics::Severity;

/// Draw `overlay` over `area` (the body); returns its scroll, stopped at
/// the end of the text.
pub fn render(frame: &mut Frame, area: Rect, app: &App, overlay: Overlay) -> u16 {
    let (title, lines) = match overlay {
        Overlay::Help => (" Help: keys (j/k scroll, any other key closes) ", help(app)),
        Overlay::Diagnostics => (
            " Machines diagnostics (j/k scroll, any other key closes) ",
            diagnostics(app),
        ),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style::focused_border())
        .title(Span::styled(title, style::title()));
    let inner = block.inner(area);
    let scroll = app
        .overlay_scroll
        .min(max_scroll(&lines, inner.width, inner.height));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
    scroll
}

fn help(app: &App) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for action in Action::ALL {
        let keys = app.keymap.keys_of(action).join(" ");
        lines.push(Line::from(vec![
            Span::styled(format!("  {keys:<14}"), style::key()),
            Span::raw(action.describe()),
            Span::styled(format!("  [{}]", action.name()), style::dim()),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<14}", "mouse"), style::key()),
        Span::raw("click a host or a job to select it, the warning count for diagnostics; wheel scrolls (a log too)"),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<14}", "filter"), style::key()),
        Span::raw("words match host, URI, system, feature or status (`down`: any failure); all must match"),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<14}", "features"), style::key()),
        Span::raw("a feature marked * is mandatory: only builds that require it go there"),
    ]));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "  Keys are rebound in the config file's [keys] table, e.g. down = [\"j\", \"ctrl-n\"].",
        style::dim(),
    ));
    lines.push(Line::styled(
        "  Status: ● up  ◌ probing  ◷ timeout  ✗ refused/dns/auth/hostkey/nonix/protocol/error",
        style::dim(),
    ));
    if let Some(dir) = &app.context.log_directory {
        lines.push(Line::styled(
            format!("  Log files: {}", dir.display()),
            style::dim(),
        ));
    }
    lines
}

fn diagnostics(app: &App) -> Vec<Line<'static>> {
    let context = &app.context;
    let mut lines = Vec::new();
    if context.diagnostics.is_empty()
        && context.notices.is_empty()
        && app.fleet.load_problem.is_none()
    {
        lines.push(Line::raw(
            "  Every machines line was read without a problem.",
        ));
    }
    // Rejected lines first: they are missing builders.
    let ordered = context
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .chain(context.diagnostics.iter().filter(|d| !d.is_error()));
    for diagnostic in ordered {
        let (word, style) = match diagnostic.severity {
            Severity::Error => ("error", style::error()),
            Severity::Warning => ("warning", style::warning()),
        };
        let rendered = diagnostic.render();
        let mut parts = rendered.lines();
        if let Some(first) = parts.next() {
            let first = first.strip_prefix(&format!("{word}: ")).unwrap_or(first);
            lines.push(Line::from(vec![
                Span::styled(format!("  {word}: "), style),
                Span::raw(first.to_string()),
            ]));
        }
        for rest in parts {
            lines.push(Line::raw(format!("  {rest}")));
        }
    }
    for notice in &context.notices {
        lines.push(Line::from(vec![
            Span::styled("  rbtop: ", style::warning()),
            Span::raw(notice.clone()),
        ]));
    }
    if let Some(problem) = &app.fleet.load_problem {
        lines.push(Line::from(vec![
            Span::styled("  local slots: ", style::warning()),
            Span::raw(problem.clone()),
        ]));
    }
    if let Some(checks) = context.substituters.as_ref().filter(|c| !c.is_empty()) {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "  Substituters (nix.conf), checked at start:",
            style::dim(),
        ));
        for check in checks {
            let status = Span::styled(
                format!("    {:<16}", check.status),
                if check.is_up() {
                    Style::new().fg(Color::Green)
                } else {
                    style::warning()
                },
            );
            let mut text = check.uri.clone();
            if let Some(priority) = check.priority {
                text.push_str(&format!(" (priority {priority})"));
            }
            if let Some(reason) = &check.reason {
                text.push_str(&format!(": {reason}"));
            }
            lines.push(Line::from(vec![status, Span::raw(text)]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "  Machines were read from, in order:",
        style::dim(),
    ));
    for place in &context.consulted {
        lines.push(Line::styled(format!("    - {place}"), style::dim()));
    }
    lines
}
