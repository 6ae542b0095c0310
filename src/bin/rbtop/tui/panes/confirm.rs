//! A yes/no question ("Cancel this job?") in a box over the body: `y`
//! does what it asked, any other key leaves things alone.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::tui::action::Action;
use crate::tui::app::{App, AppEffect};
use crate::tui::view::parts::boxed;
use crate::tui::view::style;

/// A question waiting for its answer, and what a yes does.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// The box's title.
    pub title: &'static str,
    pub question: String,
    /// What yes does, for the footer.
    pub yes: &'static str,
    pub on_yes: AppEffect,
}

impl App {
    /// `y` does what the prompt asked; any other key leaves things alone.
    pub(in crate::tui) fn confirm_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(prompt) = self.confirm.take() else {
            return AppEffect::None;
        };
        match self.keymap.action(&key) {
            Some(Action::Confirm) => prompt.on_yes,
            _ => AppEffect::None,
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, prompt: &Prompt) {
    let lines = vec![Line::from(vec![
        Span::raw(" "),
        Span::styled(prompt.question.clone(), style::warning()),
    ])];
    boxed(frame, area, prompt.title, lines);
}
