//! The explain pane over the dashboard: the line being typed, then every
//! machine's verdict, why the unranked ones are not ranked, and what Nix
//! would do. A pure function of [`ExplainPane`].

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::ExplainPane;
use crate::tui::view::parts::max_scroll;
use crate::tui::view::style;
use rbtop::dashboard::Shown;
use rbtop::explain::{Availability, Explanation, MachineVerdict, Reachability, text};
use rbtop::probe::Status;

/// Draw the pane over `area` (the dashboard's body); returns its scroll,
/// stopped at the end of the text.
pub fn render(frame: &mut Frame, area: Rect, pane: &ExplainPane) -> u16 {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style::focused_border())
        .title(Span::styled(
            " Explain a build (Enter explains, ↑↓ scroll, Esc closes) ",
            style::title(),
        ));
    let inner = block.inner(area);
    // The prompt stays put; only the result under it scrolls.
    let prompt_height = 2.min(inner.height);
    let prompt_area = Rect {
        height: prompt_height,
        ..inner
    };
    let body_area = Rect {
        y: inner.y + prompt_height,
        height: inner.height - prompt_height,
        ..inner
    };
    let body = body_lines(pane);
    let scroll = pane
        .scroll
        .min(max_scroll(&body, body_area.width, body_area.height));
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(prompt(&pane.input)), prompt_area);
    frame.render_widget(
        Paragraph::new(body)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        body_area,
    );
    scroll
}

/// The result, a hint before the first Enter, or why the line failed.
fn body_lines(pane: &ExplainPane) -> Vec<Line<'static>> {
    match &pane.result {
        None => vec![Line::styled(
            "  Type a system and features (x86_64-linux kvm,big-parallel) or a .drv path.",
            style::dim(),
        )],
        Some(Err(error)) => vec![Line::from(vec![
            Span::styled("  error: ", style::error()),
            Span::raw(error.clone()),
        ])],
        Some(Ok(explanation)) => explanation_lines(explanation),
    }
}

/// The input line and a blank line under it.
fn prompt(input: &str) -> Vec<Line<'static>> {
    vec![
        Line::from(vec![
            Span::styled(" Build: ", style::title()),
            Span::raw(input.to_string()),
            Span::styled("█", style::key()),
        ]),
        Line::raw(""),
    ]
}

/// An explanation as lines: what was asked, what Nix would do (first, so
/// it shows without scrolling), a row per machine, the reasons, and the
/// ranking rule.
pub fn explanation_lines(e: &Explanation) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(vec![
        Span::styled("  Needs ", style::dim()),
        Span::raw(text::requirement(e)),
    ])];
    for line in text::subject(e) {
        lines.push(Line::styled(format!("    {line}"), style::dim()));
    }
    lines.push(Line::raw(""));
    for sentence in text::outcome(e) {
        lines.push(Line::styled(format!("  {sentence}"), style::title()));
    }
    lines.push(Line::raw(""));
    if e.machines.is_empty() {
        lines.push(Line::raw("  No machines are configured."));
    } else {
        lines.extend(table(&e.machines));
    }
    let reasons: Vec<Line> = e
        .machines
        .iter()
        .flat_map(|m| {
            text::why_not(m).into_iter().map(move |reason| {
                Line::from(vec![
                    Span::styled(format!("  {}: ", m.host), standing_style(m)),
                    Span::raw(reason),
                ])
            })
        })
        .collect();
    if !reasons.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("  Not ranked", style::title()));
        lines.extend(reasons);
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!("  {}", text::ranking(e)),
        style::dim(),
    ));
    lines
}

/// The machines as aligned columns, each cell styled by what it says.
fn table(machines: &[MachineVerdict]) -> Vec<Line<'static>> {
    let rows: Vec<[String; 7]> = machines.iter().map(text::row).collect();
    let mut widths = text::COLUMNS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let cell =
        |text: &str, width: usize, style: Style| Span::styled(format!("  {text:<width$}"), style);
    let header: Vec<Span> = text::COLUMNS
        .iter()
        .zip(widths)
        .map(|(title, width)| cell(title, width, style::dim()))
        .collect();
    let mut lines = vec![Line::from(header)];
    for (m, row) in machines.iter().zip(rows) {
        let styles = [
            Style::new(),
            if m.is_eligible() {
                ok()
            } else {
                style::error()
            },
            reachability_style(&m.reachability),
            Style::new(),
            Style::new(),
            Style::new(),
            standing_style(m),
        ];
        let spans: Vec<Span> = row
            .iter()
            .zip(widths)
            .zip(styles)
            .map(|((text, width), style)| cell(text, width, style))
            .collect();
        lines.push(Line::from(spans));
    }
    lines
}

/// The green of an up host.
fn ok() -> Style {
    style::status_style(Shown::Known(Status::Up))
}

fn reachability_style(reachability: &Reachability) -> Style {
    match reachability {
        Reachability::Up => ok(),
        Reachability::Down { .. } => style::error(),
        Reachability::Unknown { .. } => style::dim(),
    }
}

fn standing_style(m: &MachineVerdict) -> Style {
    match m.availability {
        Availability::Free if m.rank == Some(1) => ok().add_modifier(Modifier::BOLD),
        Availability::Free => ok(),
        Availability::NotEligible | Availability::Down => style::error(),
        Availability::Full | Availability::NoSlots => style::warning(),
    }
}
