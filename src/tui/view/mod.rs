//! Drawing a frame from the app state. Pure functions of `App` (plus the
//! time, for "next try in"): the same state always draws the same frame.

pub mod detail;
pub mod empty;
pub mod footer;
pub mod format;
pub mod header;
pub mod hosts;
pub mod overlay;
pub mod style;

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::Line;

use super::app::App;

pub fn render(frame: &mut Frame, app: &mut App, now: Instant) {
    let [header_area, body, footer_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::render(frame, header_area, app);
    app.regions.detail = Default::default();
    if app.fleet.hosts.is_empty() {
        app.regions.table_rows = Default::default();
        empty::render(frame, body, app);
    } else if app.detail_open && app.selected.is_some() {
        // The table keeps a third (it scrolls with the selection); the
        // detail, which has more to say, takes the rest.
        let rows = u16::try_from(app.rows().len()).unwrap_or(u16::MAX);
        let table_height = rows.saturating_add(2).clamp(5, (body.height / 3).max(5));
        let [table_area, detail_area] =
            Layout::vertical([Constraint::Length(table_height), Constraint::Min(8)]).areas(body);
        hosts::render(frame, table_area, app);
        detail::render(frame, detail_area, app, now);
    } else {
        hosts::render(frame, body, app);
    }
    if let Some(overlay) = app.overlay {
        overlay::render(frame, body, app, overlay);
    }
    footer::render(frame, footer_area, app);
}

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
