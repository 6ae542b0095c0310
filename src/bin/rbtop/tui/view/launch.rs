//! Boxes over the dashboard for builds: the launch form and the cancel
//! question.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::style;
use crate::tui::app::Prompt;
use crate::tui::launch_form::LaunchForm;
use rbtop::jobs::launch::Placement;

pub fn render_form(frame: &mut Frame, area: Rect, form: &LaunchForm) {
    let label = |text: &str| Span::styled(format!(" {text:<9}"), style::title());
    let hint = |text: String| Span::styled(text, style::dim());
    let target = match form.placement() {
        Placement::Pinned { uri, .. } => format!("pin to {uri}"),
        Placement::Fleet { .. } => "let Nix choose among the fleet".to_string(),
    };
    let mut lines = vec![
        Line::from(vec![
            label("What"),
            Span::raw(form.what.clone()),
            Span::styled("█", style::key()),
        ]),
        Line::from(vec![
            label(""),
            hint("an installable, a .nix file or a .drv path, then extra arguments".into()),
        ]),
        Line::from(vec![
            label("Target"),
            Span::raw(format!("{target}  ")),
            hint(if form.pinned.is_some() {
                "(Tab toggles)".into()
            } else {
                "(no host selected to pin to)".into()
            }),
        ]),
        Line::from(vec![
            label("Command"),
            Span::raw(format!("{}  ", form.tool)),
            hint("(Ctrl-N: next command)".into()),
        ]),
        Line::raw(""),
    ];
    if let Some(error) = &form.error {
        lines.push(Line::from(vec![
            Span::styled(" error: ", style::error()),
            Span::raw(error.clone()),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(" Enter", style::key()),
        hint(" launch  ".into()),
        Span::styled("Esc", style::key()),
        hint(" close  ".into()),
        Span::styled("Ctrl-U", style::key()),
        hint(" erase".into()),
    ]));
    boxed(frame, area, " Launch a build ", lines);
}

pub fn render_confirm(frame: &mut Frame, area: Rect, prompt: &Prompt) {
    let lines = vec![Line::from(vec![
        Span::raw(" "),
        Span::styled(prompt.question.clone(), style::warning()),
    ])];
    boxed(frame, area, prompt.title, lines);
}

/// A bordered box as tall as its wrapped lines, centred in `area`.
fn boxed(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line>) {
    let width = area.width.saturating_sub(4).min(100);
    let inner = usize::from(width.saturating_sub(2).max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX).min(area.height);
    let at = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style::focused_border())
        .title(Span::styled(title.to_string(), style::title()));
    frame.render_widget(Clear, at);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        at,
    );
}
