//! The log pane: a job's log (a derivation's lines prefixed `name> `) or
//! one derivation's, builders' colours kept, search matches highlighted.
//! Only the lines on screen are converted from ANSI.

use ansi_to_tui::IntoText;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::LogPane;
use crate::tui::app::App;
use crate::tui::panes::jobs::view::{host_label, state_word};
use crate::tui::view::style;
use rbtop::jobs::job::Job;
use rbtop::jobs::log::LogEntry;
use rbtop::jobs::progress::LineKind;
use rbtop::jobs::runner::lock;

/// Draw the open log over `area`; returns the lines that fit, or `None`
/// with no log to draw.
pub fn render(frame: &mut Frame, area: Rect, app: &App) -> Option<usize> {
    let pane = app.log.as_ref()?;
    let job = lock(app.jobs.find(pane.job)?);
    let view = job.log.view(pane.drv);
    // The page is known before the block: borders top and bottom.
    let page = usize::from(area.height.saturating_sub(2)).max(1);
    let first = pane.first_shown_in(&view, page);
    let shown = &view[first..view.len().min(first + page)];
    let block = Block::default()
        .borders(Borders::TOP | Borders::BOTTOM)
        .border_style(style::focused_border())
        .title(title(&job, pane, first, shown.len(), view.len()))
        .title_bottom(bottom(&job, pane, &view));
    let lines: Vec<Line> = shown
        .iter()
        .map(|entry| {
            let line = line_of(&job, pane.drv, entry);
            let line = highlight(line, &pane.search, match_style());
            if pane.current_match == Some(entry.seq) {
                line.style(style::selected())
            } else {
                line
            }
        })
        .collect();
    let paragraph = Paragraph::new(lines).block(block);
    // Long lines wrap (`w`) or are cut and scroll sideways (←/→).
    let paragraph = if pane.wrap {
        paragraph.wrap(ratatui::widgets::Wrap { trim: false })
    } else {
        paragraph.scroll((0, pane.left))
    };
    frame.render_widget(paragraph, area);
    Some(page)
}

/// `#1 numbered.nix on ssh://b1 · running · lines 1–28 of 200 · following`.
fn title(job: &Job, pane: &LogPane, first: usize, shown: usize, total: usize) -> Line<'static> {
    let what = match pane.drv.and_then(|i| job.progress.derivations().get(i)) {
        Some(drv) => format!("{} › {}", job.request.what(), drv.name()),
        None => job.request.what(),
    };
    let host = match pane.drv.and_then(|i| job.progress.derivations().get(i)) {
        Some(drv) => drv.machine.clone().unwrap_or_else(|| "local".into()),
        None => host_label(job).to_string(),
    };
    let mut spans = vec![
        Span::styled(format!(" {} {what} ", job.id), style::title()),
        Span::raw(format!("on {host} · ")),
        Span::styled(state_word(job), style::warning()),
        Span::raw(if total == 0 {
            " · no lines yet ".to_string()
        } else {
            format!(" · lines {}–{} of {total} ", first + 1, first + shown)
        }),
    ];
    let dropped = job.log.dropped();
    if dropped > 0 {
        spans.push(Span::styled(
            format!("· {dropped} earlier lines only in the file "),
            style::dim(),
        ));
    }
    spans.push(if pane.follow {
        Span::styled("· following ", style::key())
    } else {
        Span::styled("· paused ", style::warning())
    });
    Line::from(spans)
}

/// The search's outcome, then where the whole log is.
fn bottom(job: &Job, pane: &LogPane, view: &[&LogEntry]) -> Line<'static> {
    let mut spans = Vec::new();
    if let Some(message) = &pane.message {
        spans.push(Span::styled(format!(" {message} "), style::warning()));
    } else if !pane.search.is_empty() && !pane.editing_search {
        let (n, of) = pane.match_position(view).unwrap_or_default();
        spans.push(Span::styled(
            format!(" search '{}' {n}/{of} ", pane.search),
            style::dim(),
        ));
    }
    if pane.wrap {
        spans.push(Span::styled(" wrapped ", style::dim()));
    } else if pane.left > 0 {
        spans.push(Span::styled(
            format!(" from column {} ", pane.left + 1),
            style::dim(),
        ));
    }
    let file = match &job.log_file {
        Some(path) => format!(" log file: {} ", path.display()),
        // Its name is the file it reads.
        None if job.read_only => format!(" reading {} (read-only) ", job.request.what()),
        None => " no log file ".to_string(),
    };
    spans.push(Span::styled(file, style::dim()));
    Line::from(spans)
}

/// One entry as drawn: its ANSI colours turned into styles; in a job's
/// view, a builder's line starts with its derivation's name.
fn line_of(job: &Job, drv_view: Option<usize>, entry: &LogEntry) -> Line<'static> {
    let mut spans = Vec::new();
    if drv_view.is_none()
        && entry.kind == LineKind::Build
        && let Some(drv) = entry.drv.and_then(|i| job.progress.derivations().get(i))
    {
        spans.push(Span::styled(format!("{}> ", drv.name()), style::dim()));
    }
    let text = entry.text.as_bytes().into_text();
    match text.ok().and_then(|t| t.lines.into_iter().next()) {
        Some(line) => spans.extend(line.spans),
        None => spans.push(Span::raw(rbtop::nix_text::strip_ansi(&entry.text))),
    }
    let line = Line::from(spans);
    match entry.kind {
        // Nix's errors.
        LineKind::Nix(0) => line.style(style::error()),
        _ => line,
    }
}

fn match_style() -> Style {
    Style::new().fg(Color::Black).bg(Color::Yellow)
}

/// `line` with every occurrence of `needle` (ignoring ASCII case) in
/// `with`, each span keeping the rest of its style.
pub fn highlight(line: Line<'static>, needle: &str, with: Style) -> Line<'static> {
    if needle.is_empty() {
        return line;
    }
    let plain: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    let lower = plain.to_ascii_lowercase();
    let ranges: Vec<(usize, usize)> = lower
        .match_indices(&needle.to_ascii_lowercase())
        .map(|(at, m)| (at, at + m.len()))
        .collect();
    if ranges.is_empty() {
        return line;
    }
    let Line {
        spans,
        style: line_style,
        alignment,
    } = line;
    let mut out = Vec::new();
    let mut offset = 0;
    for span in spans {
        let text = span.content.as_ref();
        let end = offset + text.len();
        // Cut points inside this span: its ends and every range boundary.
        let mut cuts = vec![offset, end];
        for &(a, b) in &ranges {
            cuts.extend([a, b].into_iter().filter(|&c| c > offset && c < end));
        }
        cuts.sort_unstable();
        cuts.dedup();
        for pair in cuts.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let inside = ranges.iter().any(|&(s, e)| a >= s && b <= e);
            let piece = text[a - offset..b - offset].to_string();
            let style = if inside {
                span.style.patch(with)
            } else {
                span.style
            };
            out.push(Span::styled(piece, style));
        }
        offset = end;
    }
    Line {
        spans: out,
        style: line_style,
        alignment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_cuts_spans_at_matches_and_keeps_their_colours() {
        let red = Style::new().fg(Color::Red);
        let line = Line::from(vec![Span::raw("line 3 of "), Span::styled("NEEDLE-x", red)]);
        let marked = highlight(line, "of needle", match_style());
        let pieces: Vec<(&str, Style)> = marked
            .spans
            .iter()
            .map(|s| (s.content.as_ref(), s.style))
            .collect();
        assert_eq!(
            pieces,
            [
                ("line 3 ", Style::new()),
                ("of ", match_style()),
                ("NEEDLE", red.patch(match_style())),
                ("-x", red),
            ]
        );
        let untouched = highlight(Line::raw("nothing"), "zzz", match_style());
        assert_eq!(untouched, Line::raw("nothing"));
    }
}
