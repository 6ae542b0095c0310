//! Keys on the hosts table: move the selection (the table scrolls with
//! it), sort, filter as typed. The rows are recomputed after anything that
//! can change them, keeping the selected host selected when still shown.

use crossterm::event::KeyEvent;

use crate::tui::action::Action;
use crate::tui::app::{App, AppEffect, Focus};
use crate::tui::scroll::offset_showing;
use crate::tui::text_input::{self, TextKey};
use rbtop::dashboard::visible_rows;

impl App {
    /// Host indices in table order.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// The selected host's position in the table.
    pub fn selected_row(&self) -> Option<usize> {
        let selected = self.selected?;
        self.rows.iter().position(|&i| i == selected)
    }

    /// The table's own actions: moving, sorting, starting a filter.
    pub(in crate::tui) fn update_hosts(&mut self, action: Action) {
        match action {
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page.max(1) as isize)),
            Action::PageDown => self.move_by(self.page.max(1) as isize),
            Action::Top => self.select_row(0),
            Action::Bottom => self.select_row(self.rows.len().saturating_sub(1)),
            Action::NextSort => {
                self.sort.key = self.sort.key.next();
                self.refresh_rows();
            }
            Action::PreviousSort => {
                self.sort.key = self.sort.key.previous();
                self.refresh_rows();
            }
            Action::ReverseSort => {
                self.sort.reversed = !self.sort.reversed;
                self.refresh_rows();
            }
            Action::Filter => self.editing_filter = true,
            _ => {}
        }
    }

    /// While typing a filter, characters are text; keys that are not
    /// characters (arrows, PgUp, Tab, F1) and Ctrl combinations keep their
    /// actions, so the table can be moved through and rbtop quit.
    pub(in crate::tui) fn edit_filter(&mut self, key: KeyEvent) -> AppEffect {
        match text_input::edit(&mut self.filter, key) {
            TextKey::Cancel => {
                self.filter.clear();
                self.editing_filter = false;
            }
            TextKey::Submit => self.editing_filter = false,
            TextKey::Edited => {}
            TextKey::Other => {
                return match self.keymap.action(&key) {
                    Some(action @ (Action::Quit | Action::Refresh)) => self.update(action),
                    Some(
                        action @ (Action::Up
                        | Action::Down
                        | Action::PageUp
                        | Action::PageDown
                        | Action::Top
                        | Action::Bottom),
                    ) => self.update(action),
                    Some(action @ (Action::Help | Action::Diagnostics)) => {
                        self.editing_filter = false;
                        self.update(action)
                    }
                    _ => AppEffect::None,
                };
            }
        }
        self.refresh_rows();
        AppEffect::None
    }

    pub(in crate::tui) fn move_by(&mut self, delta: isize) {
        let Some(current) = self.selected_row() else {
            self.select_row(0);
            return;
        };
        let last = self.rows.len().saturating_sub(1) as isize;
        self.select_row((current as isize + delta).clamp(0, last) as usize);
    }

    pub(in crate::tui) fn select_row(&mut self, row: usize) {
        if let Some(&index) = self.rows.get(row) {
            if self.selected != Some(index) {
                self.detail_scroll = 0;
                self.detail_build = 0;
            }
            self.selected = Some(index);
        }
        self.keep_selection_visible();
    }

    /// Recompute the rows after anything that can change them, keeping the
    /// selected host selected when it is still shown.
    pub fn refresh_rows(&mut self) {
        self.rows = visible_rows(&self.fleet, &self.filter, self.sort);
        if self.selected_row().is_none() {
            self.selected = self.rows.first().copied();
            self.detail_scroll = 0;
            self.detail_build = 0;
        }
        if self.selected.is_none() {
            self.detail_open = false;
            if self.focus == Focus::Detail {
                self.focus = Focus::Hosts;
            }
        }
        self.keep_selection_visible();
    }

    /// Scroll so the selected row is on screen.
    pub fn keep_selection_visible(&mut self) {
        self.offset = offset_showing(self.offset, self.selected_row(), self.page, self.rows.len());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::tui::action::Action;
    use crate::tui::app::{App, AppEffect};
    use crate::tui::fixture::{self, key, selected_name};
    use rbtop::dashboard::{SortKey, Stamp};
    use rbtop::probe::{HostReport, ProbeEvent, Status, Via};

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
    }

    fn shown(app: &App) -> Vec<&str> {
        app.rows()
            .iter()
            .map(|&i| app.fleet.hosts[i].name())
            .collect()
    }

    #[test]
    fn moving_clamps_at_both_ends_and_pages_by_the_visible_rows() {
        let mut app = fixture::mixed_fleet();
        app.page = 4;
        assert_eq!(selected_name(&app), "b1", "the first host is selected");
        app.update(Action::Up);
        assert_eq!(selected_name(&app), "b1");
        app.update(Action::Down);
        app.update(Action::Down);
        assert_eq!(selected_name(&app), "b3");
        app.update(Action::PageDown);
        assert_eq!(selected_name(&app), "authfail");
        assert_eq!(
            app.offset, 3,
            "scrolled so the selection is the last visible row"
        );
        app.update(Action::Bottom);
        assert_eq!(selected_name(&app), "wrongkey");
        app.update(Action::Down);
        assert_eq!(selected_name(&app), "wrongkey");
        assert_eq!(app.offset, 5);
        app.update(Action::Top);
        assert_eq!((selected_name(&app), app.offset), ("b1", 0));
        app.update(Action::PageUp);
        assert_eq!(selected_name(&app), "b1");
    }

    #[test]
    fn the_selection_follows_its_host_through_sorts() {
        let mut app = fixture::mixed_fleet();
        app.update(Action::Bottom);
        assert_eq!(selected_name(&app), "wrongkey");
        app.update(Action::NextSort);
        assert_eq!(app.sort.key, SortKey::Status);
        assert_eq!(selected_name(&app), "wrongkey");
        assert_eq!(shown(&app)[..2], ["refused", "hung"], "failures first");
        app.update(Action::ReverseSort);
        assert!(app.sort.reversed);
        assert_eq!(shown(&app)[0], "b1", "up hosts first when reversed");
        assert_eq!(selected_name(&app), "wrongkey");
    }

    #[test]
    fn the_filter_narrows_as_typed_keeps_on_enter_and_clears_on_esc() {
        let mut app = fixture::mixed_fleet();
        app.update(Action::Bottom);
        app.on_key(key(KeyCode::Char('/')));
        assert!(app.editing_filter);
        type_text(&mut app, "cuda");
        assert_eq!(shown(&app), ["t1"]);
        assert_eq!(
            selected_name(&app),
            "t1",
            "the hidden selection moves to a shown host"
        );
        // While typing, letters are text, not keys: `q` does not quit.
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), AppEffect::None);
        assert!(shown(&app).is_empty());
        app.on_key(key(KeyCode::Backspace));
        // Keys that are not characters keep working while typing.
        app.on_key(key(KeyCode::Down));
        assert_eq!(selected_name(&app), "t1", "one row: down stays on it");
        let alt_x = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::ALT);
        app.on_key(alt_x);
        assert_eq!(app.filter, "cuda", "Alt-x types nothing");
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.on_key(ctrl_c), AppEffect::Quit);
        app.on_key(key(KeyCode::Enter));
        assert!(!app.editing_filter);
        assert_eq!(app.filter, "cuda");
        assert_eq!(shown(&app), ["t1"]);
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.filter, "");
        assert_eq!(shown(&app).len(), 9);
        // Esc while typing clears too.
        app.on_key(key(KeyCode::Char('/')));
        type_text(&mut app, "auth");
        app.on_key(key(KeyCode::Esc));
        assert!(!app.editing_filter && app.filter.is_empty());
        assert_eq!(
            selected_name(&app),
            "authfail",
            "the host found by filtering stays selected"
        );
    }

    #[test]
    fn results_merge_without_moving_the_selection() {
        let mut app = fixture::app(fixture::MIXED_MACHINES);
        assert_eq!(app.fleet.summary().probing, 9);
        app.update(Action::Down);
        app.update(Action::NextSort); // by status
        let stamp = Stamp::now();
        let all: Vec<usize> = (0..9).collect();
        app.fleet.start_probes(&all, stamp.at, false);
        app.on_probe(
            ProbeEvent {
                index: 6,
                report: HostReport::failed(Status::Auth, Via::Ssh, "denied"),
                elapsed: Duration::from_millis(5),
            },
            stamp,
        );
        assert_eq!(shown(&app)[0], "authfail", "a failure rises to the top");
        assert_eq!(selected_name(&app), "b2");
        fixture::answer_all(&mut app, fixture::mixed_reports(), stamp);
        assert_eq!(app.fleet.summary().up, 4);
        assert_eq!(selected_name(&app), "b2");
    }
}
