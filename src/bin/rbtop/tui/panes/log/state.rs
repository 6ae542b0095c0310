//! The log pane's state: which log (a job's, or one derivation's), where it
//! is scrolled, whether it follows new lines, and the search. Positions are
//! kept as line sequence numbers, not indices, so they stay put while new
//! lines arrive and the oldest are dropped from memory.

use rbtop::jobs::job::JobId;
use rbtop::jobs::log::{LogEntry, find};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPane {
    pub job: JobId,
    /// A derivation's own lines, or the whole job's.
    pub drv: Option<usize>,
    /// Stick to the newest line as lines arrive.
    pub follow: bool,
    /// The first line shown (its `seq`) while not following.
    pub top: u64,
    /// Lines of text that fit, as the last frame measured.
    pub page: usize,
    pub search: String,
    /// The search prompt has the keyboard.
    pub editing_search: bool,
    /// The line the last search landed on (its `seq`).
    pub current_match: Option<u64>,
    /// Said under the log: no match, for instance.
    pub message: Option<String>,
    /// Columns scrolled to the right (long lines are cut, not wrapped).
    pub left: u16,
    /// Long lines wrap instead of being cut.
    pub wrap: bool,
}

/// Columns one sideways step moves.
pub const SIDEWAYS_STEP: u16 = 16;

impl LogPane {
    pub fn new(job: JobId, drv: Option<usize>) -> LogPane {
        LogPane {
            job,
            drv,
            follow: true,
            top: 0,
            page: 20,
            search: String::new(),
            editing_search: false,
            current_match: None,
            message: None,
            left: 0,
            wrap: false,
        }
    }

    /// Scroll sideways by `steps` (negative: left), never before column 0.
    pub fn scroll_sideways(&mut self, steps: i32) {
        let by = i32::from(SIDEWAYS_STEP) * steps;
        self.left = (i32::from(self.left) + by).clamp(0, i32::from(u16::MAX)) as u16;
    }

    /// Wrap ↔ cut; wrapping has no sideways scroll.
    pub fn toggle_wrap(&mut self) {
        self.wrap = !self.wrap;
        self.left = 0;
    }

    /// `(n, of)`: the current match is the n-th (from 1) of `of` lines
    /// matching the search; `n` is 0 before a jump landed on one.
    pub fn match_position(&self, view: &[&LogEntry]) -> Option<(usize, usize)> {
        if self.search.is_empty() {
            return None;
        }
        let needle = self.search.to_lowercase();
        let mut n = 0;
        let mut of = 0;
        for entry in view {
            if rbtop::nix_text::strip_ansi(&entry.text)
                .to_lowercase()
                .contains(&needle)
            {
                of += 1;
                if self.current_match == Some(entry.seq) {
                    n = of;
                }
            }
        }
        Some((n, of))
    }

    /// Index in `view` of the first line shown.
    pub fn first_shown(&self, view: &[&LogEntry]) -> usize {
        self.first_shown_in(view, self.page)
    }

    /// Index in `view` of the first line shown when `page` lines fit: a
    /// frame knows its page before the pane is told it.
    pub fn first_shown_in(&self, view: &[&LogEntry], page: usize) -> usize {
        let last_page = view.len().saturating_sub(page.max(1));
        if self.follow {
            return last_page;
        }
        view.iter()
            .position(|e| e.seq >= self.top)
            .unwrap_or(view.len())
            .min(last_page)
    }

    /// Scroll by `delta` lines; scrolling up stops following.
    pub fn scroll(&mut self, view: &[&LogEntry], delta: isize) {
        let first = self.first_shown(view);
        if delta < 0 {
            self.follow = false;
        }
        if self.follow {
            return;
        }
        let last_page = view.len().saturating_sub(self.page.max(1));
        let index = (first as isize + delta).clamp(0, last_page as isize) as usize;
        self.top = view.get(index).map_or(0, |e| e.seq);
    }

    pub fn scroll_to_top(&mut self, view: &[&LogEntry]) {
        self.follow = false;
        self.top = view.first().map_or(0, |e| e.seq);
    }

    pub fn resume_follow(&mut self) {
        self.follow = true;
        self.message = None;
    }

    /// Jump to the next (or previous) line matching the search, counting
    /// from the current match, or from the first line shown.
    pub fn jump(&mut self, view: &[&LogEntry], forward: bool) {
        if self.search.is_empty() || view.is_empty() {
            return;
        }
        let from = self
            .current_match
            .and_then(|seq| view.iter().position(|e| e.seq == seq))
            .unwrap_or_else(|| {
                // `find` starts after `from`: start just before the first line shown.
                let first = self.first_shown(view);
                if forward {
                    (first + view.len() - 1) % view.len()
                } else {
                    first
                }
            });
        match find(view, &self.search, from, forward) {
            Some(found) => {
                let first = self.first_shown(view);
                let page = self.page.max(1);
                self.current_match = Some(view[found].seq);
                self.message = None;
                self.follow = false;
                if found < first || found >= first + page {
                    // A third of a page of context above the match.
                    self.top = view[found.saturating_sub(page / 3)].seq;
                } else {
                    self.top = view[first].seq;
                }
            }
            None => {
                self.current_match = None;
                self.message = Some(format!("no line matches '{}'", self.search));
            }
        }
    }
}
