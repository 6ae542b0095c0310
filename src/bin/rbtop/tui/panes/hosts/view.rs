//! The hosts table. Columns have a priority: when the terminal is too
//! narrow for all of them, the least important go first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};

use std::time::{Duration, Instant};

use crate::tui::app::{App, Focus};
use crate::tui::view::DrawnTable;
use crate::tui::view::{format, style};
use rbtop::dashboard::{HostState, SortKey};
use rbtop::machines::Machine;
use rbtop::remote_builds::{Client, RemoteBuild};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Status,
    Host,
    Protocol,
    Systems,
    Features,
    Jobs,
    Speed,
    Latency,
    Load,
    FreeStore,
    Nix,
    Trusted,
    /// How long the host has been up, or down.
    Since,
    /// Why a host is down, cut to fit (in full in the detail pane); shown
    /// while a host is down, and it takes the space left over.
    Reason,
}

/// Left to right.
const ORDER: [Column; 14] = [
    Column::Status,
    Column::Host,
    Column::Since,
    Column::Protocol,
    Column::Systems,
    Column::Features,
    Column::Jobs,
    Column::Speed,
    Column::Latency,
    Column::Load,
    Column::FreeStore,
    Column::Nix,
    Column::Trusted,
    Column::Reason,
];

/// Dropped first to last when space runs out; status and host always stay.
/// With a host down, its reason outranks the features and the free store.
const DROP_ORDER: [Column; 12] = [
    Column::Trusted,
    Column::Since,
    Column::Speed,
    Column::Protocol,
    Column::Nix,
    Column::Features,
    Column::FreeStore,
    Column::Reason,
    Column::Systems,
    Column::Load,
    Column::Jobs,
    Column::Latency,
];

impl Column {
    fn title(self) -> &'static str {
        match self {
            Column::Status => "STATUS",
            Column::Host => "HOST",
            Column::Protocol => "PROTO",
            Column::Systems => "SYSTEMS",
            Column::Features => "FEATURES",
            Column::Jobs => "JOBS",
            Column::Speed => "SPEED",
            Column::Latency => "LATENCY",
            Column::Load => "LOAD/CPU",
            Column::FreeStore => "FREE STORE",
            Column::Nix => "NIX",
            Column::Trusted => "TRUSTED",
            Column::Since => "SINCE",
            Column::Reason => "REASON",
        }
    }

    /// Narrowest useful width.
    fn min_width(self) -> u16 {
        match self {
            Column::Status => 10,
            Column::Host => 10,
            Column::Protocol => 6,
            Column::Systems => 12,
            Column::Features => 10,
            Column::Jobs => 5,
            Column::Speed => 5,
            Column::Latency => 7,
            Column::Load => 8,
            Column::FreeStore => 10,
            Column::Nix => 7,
            Column::Trusted => 7,
            Column::Since => 6,
            Column::Reason => MIN_REASON,
        }
    }

    /// For the columns that grow into space left over: the width their
    /// longest value wants (capped, so one odd host cannot take the table).
    fn wanted(self, hosts: &[HostState]) -> Option<u16> {
        let longest = |text: &dyn Fn(&HostState) -> usize| {
            hosts.iter().map(text).max().unwrap_or(0).min(40) as u16
        };
        match self {
            Column::Host => Some(longest(&|h| h.name().chars().count())),
            Column::Systems => Some(longest(&|h| {
                let systems = &h.machine.systems;
                let commas = systems.len().saturating_sub(1);
                systems.iter().map(|s| s.chars().count()).sum::<usize>() + commas
            })),
            Column::Reason => Some(
                hosts
                    .iter()
                    .filter_map(|h| h.report.as_ref()?.reason.as_ref())
                    .map(|r| r.chars().count())
                    .max()
                    .unwrap_or(0)
                    .min(60) as u16,
            ),
            Column::Features => Some(longest(&|h| {
                let m = &h.machine;
                let all = m.supported_features.iter().chain(&m.mandatory_features);
                all.map(|f| f.chars().count() + 1).sum::<usize>()
            })),
            // `busy/max`, and ` ·N!` while builds run there.
            Column::Jobs => Some(longest(&|h| {
                let busy = h.busy_slots().map_or(1, |b| b.to_string().len());
                let slots = busy + 1 + h.machine.max_jobs.to_string().len();
                match h.build_list().len() {
                    0 => slots,
                    n => slots + 3 + n.to_string().len(),
                }
            })),
            _ => None,
        }
    }

    /// The column the current sort uses, to mark its header.
    fn of_sort(key: SortKey) -> Option<Column> {
        match key {
            SortKey::Listed => None,
            SortKey::Status => Some(Column::Status),
            SortKey::Host => Some(Column::Host),
            SortKey::Latency => Some(Column::Latency),
            SortKey::Load => Some(Column::Load),
            SortKey::Jobs => Some(Column::Jobs),
            SortKey::FreeStore => Some(Column::FreeStore),
            SortKey::Speed => Some(Column::Speed),
        }
    }
}

/// The columns that fit in `width` (one space between columns); REASON
/// only `with_reason` (a host is down).
pub fn columns_for(width: u16, with_reason: bool) -> Vec<Column> {
    let mut shown = ORDER.to_vec();
    if !with_reason {
        shown.retain(|&c| c != Column::Reason);
    }
    let needed = |cols: &[Column]| -> u16 {
        cols.iter().map(|c| c.min_width()).sum::<u16>() + cols.len().saturating_sub(1) as u16
    };
    for drop in DROP_ORDER {
        if needed(&shown) <= width {
            break;
        }
        shown.retain(|&c| c != drop);
    }
    shown
}

/// The columns that fit in `width` and their widths: every column gets its
/// minimum, then host, systems and features (in that order) grow towards
/// their longest value with what is left.
pub fn column_widths(width: u16, hosts: &[HostState]) -> Vec<(Column, u16)> {
    let any_down = hosts
        .iter()
        .any(|h| h.report.as_ref().is_some_and(|r| !r.is_up()));
    let columns = columns_for(width, any_down);
    let used: u16 =
        columns.iter().map(|c| c.min_width()).sum::<u16>() + columns.len().saturating_sub(1) as u16;
    let mut spare = width.saturating_sub(used);
    let mut widths: Vec<(Column, u16)> = columns.iter().map(|&c| (c, c.min_width())).collect();
    // JOBS first: it grows by a few characters only while builds run. The
    // reason comes before the systems and features grow: a cut feature
    // list hides less than a cut reason.
    for grower in [
        Column::Jobs,
        Column::Host,
        Column::Reason,
        Column::Systems,
        Column::Features,
    ] {
        if let Some((column, w)) = widths.iter_mut().find(|(c, _)| *c == grower)
            && let Some(wanted) = column.wanted(hosts)
        {
            let extra = wanted.saturating_sub(*w).min(spare);
            *w += extra;
            spare -= extra;
        }
    }
    widths
}

/// Below this, a reason says nothing useful.
const MIN_REASON: u16 = 16;

/// Draw the table in `area`; returns its data rows on screen, how many fit
/// and the first shown (moved so the selected host is on screen).
pub fn render(frame: &mut Frame, area: Rect, app: &App, now: Instant) -> DrawnTable {
    let block = Block::default()
        .borders(Borders::TOP)
        .title(title(app))
        .border_style(
            if app.focus == Focus::Hosts && (app.detail_open || !app.jobs.is_empty()) {
                style::focused_border()
            } else {
                style::dim()
            },
        );
    let inner = block.inner(area);
    let drawn = DrawnTable::below_titles(inner, app.offset, app.selected_row(), app.rows().len());
    let (page, offset) = (drawn.page, drawn.offset);

    let sized = column_widths(inner.width, &app.fleet.hosts);
    let columns: Vec<Column> = sized.iter().map(|(c, _)| *c).collect();
    let sorted = Column::of_sort(app.sort.key);
    let header = Row::new(columns.iter().map(|&c| {
        let mut text = c.title().to_string();
        if Some(c) == sorted {
            text.push(if app.sort.reversed { '▲' } else { '▼' });
        }
        Cell::from(text).style(style::title())
    }));
    let widths: Vec<Constraint> = sized.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let stall_after = app.jobs.defaults.stall_after;
    let rows_shown = app.rows()[offset.min(app.rows().len())..]
        .iter()
        .take(page)
        .map(|&index| {
            let host = &app.fleet.hosts[index];
            Row::new(
                sized
                    .iter()
                    .map(|&(c, width)| cell(host, c, width, stall_after, now)),
            )
        });
    let block = match drawn.more(app.rows().len()) {
        Some(more) => block.title_top(Line::styled(more, style::warning()).right_aligned()),
        None => block,
    };
    let table = Table::new(rows_shown, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(style::selected())
        .block(block);
    let mut state = TableState::default()
        .with_selected(app.selected_row().map(|row| row.saturating_sub(offset)));
    frame.render_stateful_widget(table, area, &mut state);

    if app.rows().is_empty() {
        let message = if app.filter.is_empty() {
            "no hosts".to_string()
        } else {
            format!(
                "no host matches '{}' ({} clears the filter)",
                app.filter,
                app.keymap.first_key(crate::tui::action::Action::Back)
            )
        };
        frame.render_widget(
            Line::styled(message, style::dim()),
            Rect {
                height: 1,
                ..drawn.rows
            }
            .intersection(area),
        );
    }
    drawn
}

fn title(app: &App) -> Line<'static> {
    let shown = app.rows().len();
    let total = app.fleet.hosts.len();
    let mut spans = vec![Span::styled(
        if shown == total {
            format!(" Hosts ({total}) ")
        } else {
            format!(" Hosts ({shown} of {total}) ")
        },
        style::title(),
    )];
    spans.push(Span::styled(
        format!(
            "sorted by {}{} ",
            app.sort.key.name(),
            if app.sort.reversed { ", reversed" } else { "" }
        ),
        style::dim(),
    ));
    if !app.filter.is_empty() || app.editing_filter {
        spans.push(Span::styled(
            format!("filter '{}' ", app.filter),
            style::warning(),
        ));
    }
    Line::from(spans)
}

/// `busy/max` of this machine's slots, then `·N` for the N builds running
/// on the builder (anyone's), `!` when one is an orphan or stalled.
fn jobs_cell(host: &HostState, stall_after: Duration) -> Cell<'static> {
    let slots = match host.busy_slots() {
        Some(busy) => format!("{busy}/{}", host.machine.max_jobs),
        None => format!("-/{}", host.machine.max_jobs),
    };
    let builds = host.build_list();
    if builds.is_empty() {
        return Cell::from(slots);
    }
    let alarming = builds.iter().any(|b| is_alarming(b, stall_after));
    let text = format!(
        "{slots} ·{}{}",
        builds.len(),
        if alarming { "!" } else { "" }
    );
    Cell::from(text).style(if alarming {
        style::warning()
    } else {
        Style::new()
    })
}

/// An orphan, or a build that used no CPU for `stall_after`.
pub fn is_alarming(build: &RemoteBuild, stall_after: Duration) -> bool {
    build.client == Client::Orphan || is_stalled(build, stall_after)
}

pub fn is_stalled(build: &RemoteBuild, stall_after: Duration) -> bool {
    build
        .cpu_idle_s
        .is_some_and(|idle| Duration::from_secs(idle) >= stall_after)
}

fn cell(
    host: &HostState,
    column: Column,
    width: u16,
    stall_after: Duration,
    now: Instant,
) -> Cell<'static> {
    let machine = &host.machine;
    let report = host.report.as_ref();
    let dash = || Cell::from("-").style(style::dim());
    match column {
        Column::Status => {
            let shown = host.shown();
            Cell::from(format!("{} {}", style::glyph(shown), shown.name()))
                .style(style::status_style(shown))
        }
        Column::Host => Cell::from(host.name().to_string()),
        Column::Protocol => Cell::from(protocol(machine)),
        Column::Systems => Cell::from(machine.systems.join(",")),
        Column::Features => features(machine),
        Column::Jobs => jobs_cell(host, stall_after),
        Column::Speed => Cell::from(format!("{}", machine.speed_factor)),
        Column::Latency => host
            .latency()
            .map_or_else(dash, |d| Cell::from(format::latency(d))),
        Column::Load => match host.load_per_cpu() {
            Some(load) => Cell::from(format!("{load:.2}")).style(if load >= 1.0 {
                style::warning()
            } else {
                Style::new()
            }),
            None => dash(),
        },
        Column::FreeStore => host
            .store_free()
            .map_or_else(dash, |n| Cell::from(format::bytes(n))),
        Column::Nix => report
            .and_then(|r| r.nix_version.clone())
            .map_or_else(dash, Cell::from),
        Column::Trusted => match report.and_then(|r| r.trusted) {
            Some(true) => Cell::from("yes"),
            Some(false) => Cell::from("no").style(style::warning()),
            None => dash(),
        },
        Column::Since => host.since.map_or_else(dash, |since| {
            // The coarsest unit only: the detail pane has the rest.
            let age = format::age(now.saturating_duration_since(since));
            Cell::from(age.split(' ').next().unwrap_or_default().to_string())
        }),
        Column::Reason => match report {
            Some(r) if !r.is_up() => {
                Cell::from(fit(r.reason.as_deref().unwrap_or_default(), width))
                    .style(style::status_style(host.shown()))
            }
            _ => Cell::from(""),
        },
    }
}

/// `text` in `width` characters, its end replaced by `…` when cut.
fn fit(text: &str, width: u16) -> String {
    let width = usize::from(width);
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The store's scheme: `ssh`, `ssh-ng`, `local`, `daemon`, `unix`.
pub fn protocol(machine: &Machine) -> String {
    let uri = machine.uri();
    match uri.split_once("://") {
        Some((scheme, _)) => scheme.to_string(),
        None => uri.split('?').next().unwrap_or(uri).to_string(),
    }
}

/// Supported features, then mandatory ones marked with `*`.
fn features(machine: &Machine) -> Cell<'static> {
    let mut spans = Vec::new();
    for feature in &machine.supported_features {
        if machine.mandatory_features.contains(feature) {
            continue;
        }
        if !spans.is_empty() {
            spans.push(Span::raw(","));
        }
        spans.push(Span::raw(feature.clone()));
    }
    for feature in &machine.mandatory_features {
        if !spans.is_empty() {
            spans.push(Span::raw(","));
        }
        spans.push(Span::styled(format!("{feature}*"), style::warning()));
    }
    if spans.is_empty() {
        return Cell::from("-").style(style::dim());
    }
    Cell::from(Line::from(spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_terminals_drop_the_least_important_columns_first() {
        assert_eq!(columns_for(200, true), ORDER);
        // REASON takes what is left over, when there is enough to say something.
        let app = crate::tui::fixture::mixed_fleet();
        let reason = |width| {
            column_widths(width, &app.fleet.hosts)
                .into_iter()
                .find(|(c, _)| *c == Column::Reason)
                .map(|(_, w)| w)
        };
        assert!(
            reason(80).is_some_and(|w| w >= MIN_REASON),
            "before the features"
        );
        assert!(reason(160).is_some_and(|w| w >= 30), "{:?}", reason(160));
        assert!(reason(200).is_some_and(|w| w >= 60), "{:?}", reason(200));
        // With every host up there is no reason to show.
        let up = crate::tui::fixture::app(crate::tui::fixture::MIXED_MACHINES);
        assert!(
            !column_widths(200, &up.fleet.hosts)
                .iter()
                .any(|(c, _)| *c == Column::Reason)
        );
        let at_80 = columns_for(80, false);
        assert!(at_80.starts_with(&[Column::Status, Column::Host]));
        assert!(!at_80.contains(&Column::Trusted) && !at_80.contains(&Column::Speed));
        assert!(at_80.contains(&Column::Latency) && at_80.contains(&Column::Jobs));
        let at_30 = columns_for(30, true);
        assert_eq!(at_30, [Column::Status, Column::Host, Column::Latency]);
        // The widths never exceed the terminal and never go below a minimum.
        let app = crate::tui::fixture::mixed_fleet();
        for width in [30, 80, 100, 120, 200] {
            let sized = column_widths(width, &app.fleet.hosts);
            let total: u16 = sized.iter().map(|(_, w)| w + 1).sum::<u16>() - 1;
            assert!(total <= width, "{total} > {width}");
            assert!(sized.iter().all(|(c, w)| *w >= c.min_width()));
        }
        // With no reason to show, the systems grow to fit whole.
        let at_120 = column_widths(140, &up.fleet.hosts);
        let systems = at_120
            .iter()
            .find(|(c, _)| *c == Column::Systems)
            .unwrap()
            .1;
        assert_eq!(
            systems,
            "x86_64-linux,i686-linux".len() as u16,
            "the longest fits whole"
        );
        // Whatever the width, what is dropped is a prefix of the drop order.
        for width in 0..200 {
            let shown = columns_for(width, true);
            let dropped = ORDER.len() - shown.len();
            for column in &DROP_ORDER[..dropped] {
                assert!(!shown.contains(column), "{column:?} at {width}");
            }
        }
    }
}
