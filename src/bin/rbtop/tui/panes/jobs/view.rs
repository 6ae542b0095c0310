//! The jobs pane: a row per job, and under it a row per derivation, with
//! where it runs, its phase, how long it has run and been quiet, and how it
//! ended. Each job is locked once per frame, only while its rows are made.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};

use crate::tui::app::{App, Focus};
use crate::tui::view::DrawnTable;
use crate::tui::view::{format, style};
use rbtop::jobs::job::{Escalation, Job, JobEnd, State};
use rbtop::jobs::progress::{DrvProgress, DrvStatus, Phase};
use rbtop::jobs::runner::lock;

/// Draw the jobs in `area`; returns their rows on screen, how many fit
/// and the first shown.
pub fn render(frame: &mut Frame, area: Rect, app: &App, now: Instant) -> DrawnTable {
    let focused = app.focus == Focus::Jobs;
    let block = Block::default()
        .borders(Borders::TOP)
        .title(title(app))
        .border_style(if focused {
            style::focused_border()
        } else {
            style::dim()
        });
    let inner = block.inner(area);
    let jobs = &app.jobs;
    let drawn =
        DrawnTable::below_titles(inner, jobs.offset, jobs.selected_row(), jobs.rows().len());
    let (page, offset) = (drawn.page, drawn.offset);

    // Narrow terminals lose the counts and the elapsed time first.
    let wide = inner.width >= 100;
    let mut titles = vec!["JOB", "HOST", "PHASE"];
    let job_width = job_column_width(app, inner.width);
    if wide {
        titles.extend(["DONE", "ELAPSED"]);
    }
    titles.extend(["QUIET", "RESULT"]);
    let header = Row::new(titles.iter().map(|t| Cell::from(*t).style(style::title())));

    let stall_after = app.jobs.defaults.stall_after;
    let mut lines: Vec<Vec<Line<'static>>> = Vec::new();
    for handle in &app.jobs.list {
        let job = lock(handle);
        lines.push(job_cells(&job, job_width, now, stall_after, wide));
        for drv in job.progress.derivations() {
            let killed_here = app.killed_with_k.contains(&drv.drv);
            lines.push(drv_cells(&job, drv, now, stall_after, wide, killed_here));
        }
    }
    let widths = content_widths(&titles, &lines, job_width);
    let rows: Vec<Row> = lines
        .into_iter()
        .map(|cells| Row::new(cells.into_iter().map(Cell::from)))
        .collect();
    let block = match drawn.more(rows.len()) {
        Some(more) => block.title_top(Line::styled(more, style::warning()).right_aligned()),
        None => block,
    };
    let shown: Vec<Row> = rows.into_iter().skip(offset).take(page).collect();
    let table = Table::new(shown, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(if focused {
            style::selected()
        } else {
            Style::new()
        })
        .block(block);
    let selected = app
        .jobs
        .selected_row()
        .map(|row| row.saturating_sub(offset));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
    drawn
}

/// Each column as wide as its longest value (or title), within a cap, so
/// a column of `-` takes no room that RESULT could use; RESULT fills the rest.
fn content_widths(titles: &[&str], rows: &[Vec<Line<'static>>], job_width: u16) -> Vec<Constraint> {
    const CAP: usize = 30;
    let last = titles.len() - 1;
    titles
        .iter()
        .enumerate()
        .map(|(i, title)| match i {
            0 => Constraint::Length(job_width),
            i if i == last => Constraint::Fill(1),
            i => {
                let longest = rows
                    .iter()
                    .filter_map(|row| row.get(i))
                    .map(Line::width)
                    .max()
                    .unwrap_or(0);
                Constraint::Length(longest.max(title.len()).min(CAP) as u16)
            }
        })
        .collect()
}

/// Where a job runs, in words: its pinned or first remote host, `local`
/// once it builds here, or `any builder` while Nix has not chosen.
pub fn host_label(job: &Job) -> &str {
    job.host()
        .unwrap_or(if job.progress.derivations().is_empty() {
            "any builder"
        } else {
            "local"
        })
}

/// Wide enough for the longest job or derivation name, up to 30%.
fn job_column_width(app: &App, width: u16) -> u16 {
    let mut longest = 0;
    for handle in &app.jobs.list {
        let job = lock(handle);
        longest = longest.max(format!("{} {}", job.id, job.request.what()).chars().count());
        for drv in job.progress.derivations() {
            longest = longest.max(DRV_INDENT.chars().count() + drv.name().chars().count());
        }
    }
    u16::try_from(longest)
        .unwrap_or(u16::MAX)
        .clamp(12, (width * 3 / 10).max(12))
}

/// `#1 numbered.nix`; a path too long keeps its end, the file's name.
fn job_name(job: &Job, width: u16) -> String {
    let id = job.id.to_string();
    let what = job.request.what();
    let room = usize::from(width).saturating_sub(id.chars().count() + 1);
    let length = what.chars().count();
    if length <= room {
        format!("{id} {what}")
    } else {
        let tail: String = what.chars().skip(length + 1 - room.max(1)).collect();
        format!("{id} …{tail}")
    }
}

/// Before a derivation's name, under its job.
const DRV_INDENT: &str = "  └ ";

fn title(app: &App) -> Line<'static> {
    let total = app.jobs.list.len();
    let active = app
        .jobs
        .list
        .iter()
        .filter(|job| lock(job).is_active())
        .count();
    Line::from(vec![
        Span::styled(format!(" Jobs ({total}) "), style::title()),
        Span::styled(format!("{active} running "), style::dim()),
    ])
}

fn job_cells(
    job: &Job,
    width: u16,
    now: Instant,
    stall_after: Duration,
    wide: bool,
) -> Vec<Line<'static>> {
    let running = job.progress.derivations().iter().find(|d| d.is_running());
    let phase = match (&job.state, running) {
        (State::Starting, _) => "starting".to_string(),
        (State::Running { .. }, None) if job.progress.derivations().is_empty() => {
            "evaluating".to_string()
        }
        (State::Running { .. } | State::Cancelling { .. } | State::Reading, Some(drv)) => {
            phase_text(drv)
        }
        (State::CheckingBuilders, _) => "checking builders".to_string(),
        (State::Finished(_), _) => "-".to_string(),
        _ => "running".to_string(),
    };
    let mut cells = vec![
        Line::from(job_name(job, width)),
        Line::from(host_label(job).to_string()),
        Line::from(phase),
    ];
    if wide {
        let counts = job.progress.counts();
        cells.push(Line::from(format!("{}/{}", counts.done, counts.expected)));
        cells.push(Line::from(format::age(job.elapsed(now))));
    }
    cells.push(if job.is_active() {
        quiet(job.quiet_for(now), stall_after, running.is_some(), wide)
    } else {
        Line::styled("-", style::dim())
    });
    cells.push(job_result(job));
    cells
}

fn drv_cells(
    job: &Job,
    drv: &DrvProgress,
    now: Instant,
    stall_after: Duration,
    wide: bool,
    killed_here: bool,
) -> Vec<Line<'static>> {
    let mut cells = vec![
        Line::from(format!("{DRV_INDENT}{}", drv.name())),
        Line::from(drv.machine.clone().unwrap_or_else(|| "local".into())),
        Line::from(phase_text(drv)),
    ];
    if wide {
        cells.push(Line::from(""));
        let until = drv.finished.unwrap_or(now);
        cells.push(Line::from(format::age(
            until.saturating_duration_since(drv.started),
        )));
    }
    cells.push(if drv.is_running() {
        let since = drv.last_line.unwrap_or(drv.started);
        quiet(
            now.saturating_duration_since(since),
            stall_after,
            true,
            wide,
        )
    } else {
        Line::styled("-", style::dim())
    });
    let mut result = drv_result(job, drv);
    // A kill says who did it when it was this dashboard's `K`.
    if killed_here && matches!(drv.status, DrvStatus::Failed { .. }) {
        result
            .spans
            .insert(1, Span::styled("(killed with K here) ", style::warning()));
    }
    cells.push(result);
    cells
}

/// `building (buildPhase)`.
fn phase_text(drv: &DrvProgress) -> String {
    match (&drv.builder_phase, drv.phase) {
        (Some(builder), Phase::Building) => format!("{} ({builder})", drv.phase.label()),
        _ => drv.phase.label().to_string(),
    }
}

/// Time since the last log line; past `stall_after`, STALLED (and for
/// how long, when there is room).
fn quiet(for_: Duration, stall_after: Duration, running: bool, wide: bool) -> Line<'static> {
    if running && for_ >= stall_after {
        let text = if wide {
            format!("STALLED {}", format::age(for_))
        } else {
            "STALLED".to_string()
        };
        Line::styled(text, style::error())
    } else {
        Line::from(format::age(for_))
    }
}

fn job_result(job: &Job) -> Line<'static> {
    let last_note = || {
        job.notes
            .last()
            .map(|n| format!(" · {}", n.strip_prefix("rbtop: ").unwrap_or(n)))
            .unwrap_or_default()
    };
    match &job.state {
        State::Starting | State::Running { .. } => Line::from("running"),
        State::Reading => Line::from("reading a log (read-only)"),
        State::Cancelling { stage, .. } => {
            let sent = match stage {
                Escalation::Interrupt => "SIGINT",
                Escalation::Terminate => "SIGTERM",
                Escalation::Kill => "SIGKILL",
            };
            Line::styled(format!("cancelling ({sent} sent)"), style::warning())
        }
        State::CheckingBuilders => Line::styled("checking builders", style::warning()),
        State::Finished(JobEnd::Succeeded) => Line::from(vec![
            Span::styled("succeeded ", ok()),
            Span::raw(job.outputs.join(" ")),
        ]),
        State::Finished(JobEnd::Failed { exit_code, .. }) => Line::from(vec![
            Span::styled(format!("failed (exit {exit_code}) "), style::error()),
            Span::raw(job.end_reason().unwrap_or_default()),
        ]),
        State::Finished(JobEnd::Cancelled) => Line::from(vec![
            Span::styled("cancelled", style::warning()),
            Span::raw(last_note()),
        ]),
        State::Finished(JobEnd::LaunchFailed(why)) => Line::from(vec![
            Span::styled("cannot start ", style::error()),
            Span::raw(why.clone()),
        ]),
    }
}

fn drv_result(job: &Job, drv: &DrvProgress) -> Line<'static> {
    match &drv.status {
        DrvStatus::Planned => Line::styled("planned", style::dim()),
        DrvStatus::Running => Line::from("running"),
        DrvStatus::Succeeded => Line::styled("built", ok()),
        DrvStatus::Failed { message, exit_code } => {
            let code = exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            Line::from(vec![
                Span::styled(format!("failed{code} "), style::error()),
                Span::raw(rbtop::nix_text::strip_ansi(message)),
            ])
        }
        DrvStatus::Stopped => {
            // What the check on its builder found, if it was checked.
            let prefix = drv.machine.as_deref().map(|m| format!("rbtop: {m}: "));
            let found = prefix.and_then(|prefix| {
                job.notes
                    .iter()
                    .filter(|n| n.contains(drv.name()))
                    .find_map(|n| n.strip_prefix(&prefix))
            });
            Line::from(vec![
                Span::styled("stopped", style::warning()),
                Span::raw(found.map(|f| format!(" · {f}")).unwrap_or_default()),
            ])
        }
    }
}

fn ok() -> Style {
    Style::new().fg(ratatui::style::Color::Green)
}

/// The job's state in a word or two, for the log's title.
pub fn state_word(job: &Job) -> String {
    match &job.state {
        State::Starting => "starting".into(),
        State::Running { .. } => "running".into(),
        State::Reading => "reading (read-only)".into(),
        State::Cancelling { .. } => "cancelling".into(),
        State::CheckingBuilders => "checking builders".into(),
        State::Finished(JobEnd::Succeeded) => "succeeded".into(),
        State::Finished(JobEnd::Failed { exit_code, .. }) => format!("failed (exit {exit_code})"),
        State::Finished(JobEnd::Cancelled) => "cancelled".into(),
        State::Finished(JobEnd::LaunchFailed(_)) => "cannot start".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::fixture;

    fn text(cell: Line<'static>) -> String {
        // A cell renders as its content; draw it on a one-line buffer.
        let area = Rect::new(0, 0, 40, 1);
        let mut buffer = ratatui::buffer::Buffer::empty(area);
        let table = Table::new([Row::new([Cell::from(cell)])], [Constraint::Length(40)]);
        ratatui::widgets::Widget::render(table, area, &mut buffer);
        (0..40)
            .map(|x| buffer[(x, 0)].symbol().to_string())
            .collect::<String>()
            .trim_end()
            .to_string()
    }

    #[test]
    fn a_long_path_keeps_its_file_name() {
        let request = fixture::numbered_request(&[]);
        let mut request_long = request.clone();
        request_long.args[0] = "/work/main/tests/fixtures/builds/numbered.nix".into();
        let short = fixture::job(1, request, "", 0, None);
        let long = fixture::job(1, request_long, "", 0, None);
        assert_eq!(job_name(&lock(&short), 30), "#1 numbered.nix");
        let cut = job_name(&lock(&long), 24);
        assert_eq!(cut, "#1 …/builds/numbered.nix");
        assert_eq!(cut.chars().count(), 24);
    }

    #[test]
    fn quiet_past_the_stall_limit_is_stalled_only_while_running() {
        let limit = Duration::from_secs(600);
        let quiet_for =
            |secs, running, wide| text(quiet(Duration::from_secs(secs), limit, running, wide));
        assert_eq!(quiet_for(59, true, true), "59s");
        assert_eq!(quiet_for(720, true, true), "STALLED 12m 0s");
        assert_eq!(
            quiet_for(720, true, false),
            "STALLED",
            "narrow: the word alone"
        );
        assert_eq!(quiet_for(720, false, true), "12m 0s");
    }
}
