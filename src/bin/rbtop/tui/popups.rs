//! What is open over the screen, and which of it has the keyboard: the one
//! place the TUI decides precedence. Keys go to the first popup open (with
//! none, to the screen), the frame draws the popups last to first so the
//! first is on top, the footer shows the first one's keys, and the mouse
//! goes to the first popup that takes it.
//!
//! The popups are read off each pane's own state (`App::form`,
//! `App::overlay`, …) rather than kept in a second list that could
//! disagree with it.

use super::app::App;
use super::panes::overlay::Overlay;

/// Something over the screen that takes the keyboard while it is first.
/// Most open only alone (each keeps the keyboard until it closes); a
/// click on the warning count opens the diagnostics under whatever is
/// open, and help opens over a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Popup {
    /// A yes/no question: the next key answers it (over the form too:
    /// quitting from the form asks here).
    Confirm,
    /// The launch form: keys are its text.
    LaunchForm,
    /// The explainer: keys are its text.
    Explain,
    /// The open log's search line: keys are its text.
    LogSearch,
    /// The hosts filter line: keys are its text.
    Filter,
    /// The `:` command line: keys are its text.
    Command,
    /// Help or the diagnostics: keys scroll or close it.
    Overlay(Overlay),
}

impl Popup {
    /// Help and the diagnostics take the mouse (a click closes them, the
    /// wheel scrolls them); the others let it through to the screen.
    pub fn takes_mouse(self) -> bool {
        matches!(self, Popup::Overlay(_))
    }
}

/// What the body shows under the popups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// A job's log, over the whole body.
    Log,
    /// The hosts (and the detail pane when open), the jobs under them.
    Dashboard,
}

impl App {
    /// The popups open, the one with the keyboard first.
    pub fn popups(&self) -> impl DoubleEndedIterator<Item = Popup> + use<> {
        let searching = self.log.as_ref().is_some_and(|log| log.editing_search);
        [
            self.confirm.is_some().then_some(Popup::Confirm),
            self.form.is_some().then_some(Popup::LaunchForm),
            self.explain.is_some().then_some(Popup::Explain),
            searching.then_some(Popup::LogSearch),
            self.editing_filter.then_some(Popup::Filter),
            self.command_line.is_some().then_some(Popup::Command),
            self.overlay.map(Popup::Overlay),
        ]
        .into_iter()
        .flatten()
    }

    /// The popup with the keyboard, if any.
    pub fn top_popup(&self) -> Option<Popup> {
        self.popups().next()
    }

    pub fn screen(&self) -> Screen {
        if self.log.is_some() {
            Screen::Log
        } else {
            Screen::Dashboard
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crossterm::event::{
        KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
    };
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::tui::action::Action;
    use crate::tui::fixture;
    use crate::tui::panes::launch::LaunchForm;
    use crate::tui::view;
    use rbtop::jobs::launch::{BuildTool, Placement};

    #[test]
    fn the_first_popup_has_the_keyboard_and_the_overlay_the_mouse() {
        let mut app = fixture::mixed_fleet();
        assert_eq!(app.top_popup(), None);
        app.overlay = Some(Overlay::Diagnostics);
        let form = LaunchForm::new(
            None,
            Placement::Fleet { builders: None },
            BuildTool::NixBuild,
        );
        app.form = Some(form);
        let open: Vec<Popup> = app.popups().collect();
        assert_eq!(
            open,
            [Popup::LaunchForm, Popup::Overlay(Overlay::Diagnostics)]
        );
        assert_eq!(app.top_popup(), Some(Popup::LaunchForm));
        let mouse = app.popups().find(|p| p.takes_mouse());
        assert_eq!(mouse, Some(Popup::Overlay(Overlay::Diagnostics)));
    }

    #[test]
    fn the_popup_with_the_keyboard_is_drawn_on_top() {
        // A click on the warning count opens the diagnostics under the
        // explainer, which keeps the keyboard: it stays on top, and the
        // footer keeps its keys, until Esc closes it.
        let mut app = fixture::mixed_fleet();
        let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
        let mut draw = |app: &mut App| {
            view::draw(&mut terminal, app, Instant::now()).unwrap();
            terminal.backend().to_string()
        };
        app.update(Action::Explain);
        draw(&mut app);
        let warnings = app.regions.warnings;
        let click = MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: warnings.x,
            row: warnings.y,
            modifiers: KeyModifiers::NONE,
        };
        assert!(app.on_mouse(click));
        assert_eq!(app.overlay, Some(Overlay::Diagnostics));
        let screen = draw(&mut app);
        assert!(screen.contains(" Explain a build "), "{screen}");
        assert!(!screen.contains(" Machines diagnostics "), "{screen}");
        assert!(screen.contains(" Enter explain · Esc close"), "{screen}");
        app.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE));
        assert_eq!(app.explain.as_ref().unwrap().input, "x86_64-linuxx");
        app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        let screen = draw(&mut app);
        assert!(screen.contains(" Machines diagnostics "), "{screen}");
    }
}
