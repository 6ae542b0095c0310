//! Drawing a frame from the app state: the header, the screen (the
//! dashboard or a log), the popups open over it, the footer. Pure
//! functions of `&App` (plus the time, for "next try in"): the same state
//! always draws the same frame, and what the frame measured is returned,
//! not written into the app.

pub mod footer;
pub mod format;
pub mod header;
pub mod layout;
pub mod parts;
pub mod style;

use std::time::Instant;

use ratatui::backend::Backend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::{Frame, Terminal};

pub use layout::{DrawnTable, FrameLayout, Regions};

use super::app::App;
use super::panes::{confirm, detail, explain, hosts, jobs, launch, log, overlay};
use super::popups::{Popup, Screen};

/// Draw a frame and let the app keep what it measured.
pub fn draw<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    now: Instant,
) -> Result<(), B::Error> {
    let mut drawn = FrameLayout::default();
    terminal.draw(|frame| drawn = render(frame, app, now))?;
    app.after_frame(drawn);
    Ok(())
}

pub fn render(frame: &mut Frame, app: &App, now: Instant) -> FrameLayout {
    let [header_area, body, footer_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let mut drawn = FrameLayout::default();
    drawn.regions.warnings = header::render(frame, header_area, app);
    match app.screen() {
        Screen::Log => {
            drawn.regions.log = body;
            drawn.log_page = log::view::render(frame, body, app);
        }
        Screen::Dashboard if app.jobs.is_empty() => render_hosts(frame, body, app, now, &mut drawn),
        Screen::Dashboard => {
            // The jobs take what their rows need (title, header, rows), up
            // to a third under the hosts: blank job rows hide no host.
            let needed = u16::try_from(app.jobs.rows().len() + 2).unwrap_or(u16::MAX);
            let jobs_height = needed.clamp(4, (body.height / 3).max(5)).min(body.height);
            let [hosts_area, jobs_area] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(jobs_height)]).areas(body);
            render_hosts(frame, hosts_area, app, now, &mut drawn);
            let table = jobs::view::render(frame, jobs_area, app, now);
            drawn.regions.jobs_rows = table.rows;
            drawn.jobs = Some(table);
        }
    }
    // Last to first: the popup with the keyboard is drawn on top.
    for popup in app.popups().rev() {
        match popup {
            Popup::Overlay(which) => {
                drawn.overlay_scroll = Some(overlay::view::render(frame, body, app, which));
            }
            Popup::Explain => {
                drawn.explain_scroll = app
                    .explain
                    .as_ref()
                    .map(|pane| explain::view::render(frame, body, pane));
            }
            Popup::Confirm => {
                if let Some(prompt) = &app.confirm {
                    confirm::render(frame, body, prompt);
                }
            }
            Popup::LaunchForm => {
                if let Some(form) = &app.form {
                    launch::view::render(frame, body, form);
                }
            }
            // Typed on the footer's line.
            Popup::LogSearch | Popup::Filter | Popup::Command => {}
        }
    }
    footer::render(frame, footer_area, app);
    drawn
}

/// The hosts table, with the detail pane under it when open.
fn render_hosts(frame: &mut Frame, body: Rect, app: &App, now: Instant, drawn: &mut FrameLayout) {
    if app.fleet.hosts.is_empty() {
        hosts::empty::render(frame, body, app);
        return;
    }
    let detail_open = app.detail_open && app.selected.is_some();
    let [table_area, detail_area] = if detail_open {
        // The table keeps a third (it scrolls with the selection); the
        // detail, which has more to say, takes the rest.
        let rows = u16::try_from(app.rows().len()).unwrap_or(u16::MAX);
        let table_height = rows.saturating_add(2).clamp(5, (body.height / 3).max(5));
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(8)]).areas(body)
    } else {
        [body, Rect::default()]
    };
    let table = hosts::view::render(frame, table_area, app, now);
    drawn.regions.table_rows = table.rows;
    drawn.hosts = Some(table);
    if detail_open {
        drawn.regions.detail = detail_area;
        drawn.detail_scroll = detail::view::render(frame, detail_area, app, now);
    }
}
