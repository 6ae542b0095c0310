//! How statuses look: a glyph, a colour and the word, so that no state is
//! told by colour alone.

use ratatui::style::{Color, Modifier, Style};

use rbtop::dashboard::Shown;
use rbtop::probe::Status;

pub fn glyph(shown: Shown) -> &'static str {
    match shown {
        Shown::Probing => "◌",
        Shown::Known(Status::Up) => "●",
        Shown::Known(Status::Timeout) => "◷",
        Shown::Known(_) => "✗",
    }
}

pub fn status_style(shown: Shown) -> Style {
    match shown {
        Shown::Probing => Style::new().fg(Color::DarkGray),
        Shown::Known(Status::Up) => Style::new().fg(Color::Green),
        Shown::Known(Status::Timeout) => Style::new().fg(Color::Yellow),
        Shown::Known(_) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn key() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

pub fn warning() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}

pub fn error() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// One background for the whole row, so that every cell keeps its own colour.
pub fn selected() -> Style {
    Style::new()
        .bg(Color::Indexed(237))
        .add_modifier(Modifier::BOLD)
}

pub fn focused_border() -> Style {
    Style::new().fg(Color::Cyan)
}
