//! What a frame measured: where it put things, for the mouse, and what
//! fitted, for the keys. Drawing only reads the app; the event loop hands
//! this to [`App::after_frame`](crate::tui::App::after_frame) once the
//! frame is drawn.

use ratatui::layout::Rect;

use crate::tui::scroll::offset_showing;

/// Where the last frame put things, for the mouse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regions {
    /// The table's data rows (header excluded).
    pub table_rows: Rect,
    pub detail: Rect,
    /// The header's warning count, a click opens the diagnostics.
    pub warnings: Rect,
    /// The jobs pane's data rows.
    pub jobs_rows: Rect,
    /// The log pane, for the wheel.
    pub log: Rect,
}

/// A scrolling table as drawn: its data rows on screen, how many fit and
/// the first one shown (moved so the selected row is on screen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrawnTable {
    pub rows: Rect,
    pub page: usize,
    pub offset: usize,
}

impl DrawnTable {
    /// A table of `len` rows in `inner`, under one line of column titles:
    /// the first row shown moves from `offset` just enough to show the
    /// `selected` one.
    pub fn below_titles(inner: Rect, offset: usize, selected: Option<usize>, len: usize) -> Self {
        let rows = Rect {
            y: inner.y.saturating_add(1),
            height: inner.height.saturating_sub(1),
            ..inner
        };
        let page = usize::from(rows.height).max(1);
        DrawnTable {
            rows,
            page,
            offset: offset_showing(offset, selected, page, len),
        }
    }

    /// `↑ 3 · 2 more ↓`: the rows of `len` above and below the screen, for
    /// the table's title line; `None` when all fit.
    pub fn more(&self, len: usize) -> Option<String> {
        let above = self.offset.min(len);
        let below = len.saturating_sub(self.offset + self.page);
        match (above, below) {
            (0, 0) => None,
            (0, b) => Some(format!(" {b} more ↓ ")),
            (a, 0) => Some(format!(" ↑ {a} more ")),
            (a, b) => Some(format!(" ↑ {a} · {b} more ↓ ")),
        }
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn rows_off_screen_are_counted_above_and_below() {
        let inner = Rect::new(0, 0, 80, 6); // 5 rows under the titles
        let at = |offset, selected, len| {
            DrawnTable::below_titles(inner, offset, selected, len).more(len)
        };
        assert_eq!(at(0, Some(0), 5), None);
        assert_eq!(at(0, Some(0), 7).as_deref(), Some(" 2 more ↓ "));
        assert_eq!(at(0, Some(6), 7).as_deref(), Some(" ↑ 2 more "));
        assert_eq!(at(0, Some(5), 9).as_deref(), Some(" ↑ 1 · 3 more ↓ "));
    }
}

/// Everything a frame measured. A pane not drawn leaves its field `None`,
/// and the app keeps what it had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameLayout {
    pub regions: Regions,
    pub hosts: Option<DrawnTable>,
    pub jobs: Option<DrawnTable>,
    /// Log lines that fit.
    pub log_page: Option<usize>,
    /// Scrolls as drawn: stopped at the end of their text.
    pub detail_scroll: Option<u16>,
    pub overlay_scroll: Option<u16>,
    pub explain_scroll: Option<u16>,
}
