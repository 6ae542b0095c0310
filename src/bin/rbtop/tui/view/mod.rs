//! Drawing a frame from the app state. Pure functions of `App` (plus the
//! time, for "next try in"): the same state always draws the same frame.

pub mod detail;
pub mod empty;
pub mod explain;
pub mod footer;
pub mod format;
pub mod header;
pub mod hosts;
pub mod jobs;
pub mod launch;
pub mod log;
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
    app.regions.jobs_rows = Default::default();
    app.regions.log = Default::default();
    if app.log.is_some() {
        app.regions.table_rows = Default::default();
        log::render(frame, body, app);
    } else if app.jobs.is_empty() {
        render_hosts(frame, body, app, now);
    } else {
        // The jobs take a third under the hosts.
        let jobs_height = (body.height / 3).max(5).min(body.height);
        let [hosts_area, jobs_area] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(jobs_height)]).areas(body);
        render_hosts(frame, hosts_area, app, now);
        jobs::render(frame, jobs_area, app, now);
    }
    if let Some(pane) = &mut app.explain {
        explain::render(frame, body, pane);
    }
    if let Some(overlay) = app.overlay {
        overlay::render(frame, body, app, overlay);
    }
    if let Some(form) = &app.form {
        launch::render_form(frame, body, form);
    }
    if let Some(prompt) = &app.confirm {
        launch::render_confirm(frame, body, prompt);
    }
    footer::render(frame, footer_area, app);
}

/// The hosts table, with the detail pane under it when open.
fn render_hosts(frame: &mut Frame, body: ratatui::layout::Rect, app: &mut App, now: Instant) {
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
}

/// A table's data rows inside its block: all but the column titles' line.
pub fn data_rows(inner: ratatui::layout::Rect) -> ratatui::layout::Rect {
    ratatui::layout::Rect {
        y: inner.y.saturating_add(1),
        height: inner.height.saturating_sub(1),
        ..inner
    }
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
