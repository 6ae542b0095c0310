//! Pieces several panes draw with: how far a text can scroll, a box
//! centred over the body.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::style;

/// The furthest a text of `lines`, wrapped at `width`, can scroll in
/// `height` rows: scrolling stops at its last line instead of running on
/// into blank space.
pub fn max_scroll(lines: &[Line], width: u16, height: u16) -> u16 {
    let width = usize::from(width.max(1));
    let wrapped: usize = lines
        .iter()
        .map(|line| line.width().div_ceil(width).max(1))
        .sum();
    u16::try_from(wrapped)
        .unwrap_or(u16::MAX)
        .saturating_sub(height)
}

/// A bordered box as tall as its wrapped lines, centred in `area`.
pub fn boxed(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line>) {
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
