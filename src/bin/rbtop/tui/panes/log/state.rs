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
}

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
        }
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
