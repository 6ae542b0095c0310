//! Keys on the log pane: scroll (scrolling up stops following), follow
//! again, search and jump between matches, cancel the job; the wheel
//! scrolls it too.

use crossterm::event::{KeyEvent, MouseEvent, MouseEventKind};

use super::LogPane;
use crate::tui::action::Action;
use crate::tui::app::{App, AppEffect};
use crate::tui::panes::overlay::Overlay;
use crate::tui::text_input::{self, TextKey};
use rbtop::jobs::log::LogEntry;
use rbtop::jobs::runner::lock;

impl App {
    /// Typing a search in the log: Enter finds the first match from the
    /// top line shown, Esc drops the search.
    pub(in crate::tui) fn search_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(log) = &mut self.log else {
            return AppEffect::None;
        };
        match text_input::edit(&mut log.search, key) {
            TextKey::Cancel => {
                log.editing_search = false;
                log.search.clear();
                log.current_match = None;
            }
            TextKey::Submit => {
                log.editing_search = false;
                log.current_match = None;
                self.with_log_view(|log, view| log.jump(view, true));
            }
            TextKey::Edited => {}
            TextKey::Other => {
                return match self.keymap.action(&key) {
                    Some(
                        action @ (Action::Quit
                        | Action::Up
                        | Action::Down
                        | Action::PageUp
                        | Action::PageDown
                        | Action::Top
                        | Action::Bottom),
                    ) => self.update_log(action),
                    _ => AppEffect::None,
                };
            }
        }
        AppEffect::None
    }

    /// Keys while the log pane is open.
    pub(in crate::tui) fn update_log(&mut self, action: Action) -> AppEffect {
        let page = self
            .log
            .as_ref()
            .map_or(1, |log| log.page.max(2) as isize - 1);
        match action {
            Action::Quit => return AppEffect::Quit,
            Action::Up => self.with_log_view(|log, view| log.scroll(view, -1)),
            Action::Down => self.with_log_view(|log, view| log.scroll(view, 1)),
            Action::PageUp => self.with_log_view(|log, view| log.scroll(view, -page)),
            Action::PageDown => self.with_log_view(|log, view| log.scroll(view, page)),
            Action::Top => self.with_log_view(|log, view| log.scroll_to_top(view)),
            Action::Bottom | Action::Follow => {
                if let Some(log) = &mut self.log {
                    log.resume_follow();
                }
            }
            Action::Filter => {
                if let Some(log) = &mut self.log {
                    log.editing_search = true;
                    log.search.clear();
                    log.message = None;
                }
            }
            Action::ScrollLeft | Action::ScrollRight | Action::Wrap => {
                if let Some(log) = &mut self.log {
                    match action {
                        Action::ScrollLeft if !log.wrap => log.scroll_sideways(-1),
                        Action::ScrollRight if !log.wrap => log.scroll_sideways(1),
                        Action::Wrap => log.toggle_wrap(),
                        _ => {}
                    }
                }
            }
            Action::NextMatch => self.with_log_view(|log, view| log.jump(view, true)),
            Action::PreviousMatch => self.with_log_view(|log, view| log.jump(view, false)),
            Action::Cancel => {
                if let Some(id) = self.log.as_ref().map(|log| log.job) {
                    self.ask_cancel(id);
                }
            }
            Action::Back | Action::Log => self.log = None,
            Action::Help => self.open(Overlay::Help),
            Action::Launch => self.open_launch_form(),
            _ => {}
        }
        AppEffect::None
    }

    pub(in crate::tui) fn log_mouse(&mut self, mouse: MouseEvent) -> bool {
        let delta = match mouse.kind {
            MouseEventKind::ScrollDown => 3,
            MouseEventKind::ScrollUp => -3,
            _ => return false,
        };
        self.with_log_view(|log, view| log.scroll(view, delta));
        true
    }

    /// Run `f` on the open log pane and the lines it shows (the job locked
    /// for just that long).
    fn with_log_view(&mut self, f: impl FnOnce(&mut LogPane, &[&LogEntry])) {
        let Some(log) = &mut self.log else {
            return;
        };
        let Some(job) = self.jobs.find(log.job) else {
            return;
        };
        let job = lock(job);
        let view = job.log.view(log.drv);
        f(log, &view);
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use super::*;
    use crate::tui::app::Focus;
    use crate::tui::fixture::{app_with, first_shown, job_with_lines, key, press};
    use rbtop::jobs::progress::{LineKind, LogLine};

    #[test]
    fn the_log_follows_until_scrolled_up_and_resumes_on_f_or_end() {
        let job = job_with_lines(100);
        let mut app = app_with(vec![job.clone()]);
        app.focus = Focus::Jobs;
        press(&mut app, "l");
        app.log.as_mut().unwrap().page = 10;
        assert!(app.log.as_ref().unwrap().follow);
        assert_eq!(first_shown(&app), "line 91");
        press(&mut app, "k");
        assert!(!app.log.as_ref().unwrap().follow, "scrolling up pauses");
        assert_eq!(first_shown(&app), "line 90");
        // New lines do not move a paused log.
        lock(&job).log.push(LogLine {
            drv: None,
            kind: LineKind::Build,
            text: "line 101".into(),
        });
        assert_eq!(first_shown(&app), "line 90");
        press(&mut app, "F");
        assert!(app.log.as_ref().unwrap().follow);
        assert_eq!(first_shown(&app), "line 92", "back at the newest");
        app.on_key(key(KeyCode::PageUp));
        assert!(!app.log.as_ref().unwrap().follow);
        app.on_key(key(KeyCode::End));
        assert!(app.log.as_ref().unwrap().follow, "End resumes too");
        press(&mut app, "g");
        assert_eq!(first_shown(&app), "line 1");
        press(&mut app, "j");
        assert!(!app.log.as_ref().unwrap().follow, "scrolling down does not");
    }

    #[test]
    fn search_jumps_to_matches_and_wraps_both_ways() {
        let mut app = app_with(vec![job_with_lines(100)]);
        app.focus = Focus::Jobs;
        press(&mut app, "l");
        app.log.as_mut().unwrap().page = 10;
        press(&mut app, "g"); // from the top
        press(&mut app, "/");
        // Typed text is the search, not keys: `n` and `q` are letters here.
        let effects = press(&mut app, "needle");
        assert!(effects.iter().all(|e| *e == AppEffect::None));
        app.on_key(key(KeyCode::Enter));
        let matched = |app: &App| {
            let log = app.log.as_ref().unwrap();
            log.current_match.map(|seq| seq + 1)
        };
        assert_eq!(matched(&app), Some(10), "the first match from the top");
        press(&mut app, "n");
        assert_eq!(matched(&app), Some(20));
        press(&mut app, "N");
        press(&mut app, "N");
        assert_eq!(matched(&app), Some(100), "wrapped back to the last one");
        press(&mut app, "n");
        assert_eq!(matched(&app), Some(10), "wrapped forward to the first");
        // A match out of sight scrolls the log to it.
        press(&mut app, "NN");
        assert_eq!(matched(&app), Some(90));
        assert!(
            first_shown(&app).starts_with("line 8"),
            "{}",
            first_shown(&app)
        );
        press(&mut app, "/zzz");
        app.on_key(key(KeyCode::Enter));
        let log = app.log.as_ref().unwrap();
        assert_eq!(log.message.as_deref(), Some("no line matches 'zzz'"));
    }
}
