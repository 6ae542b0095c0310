//! The hosts table: every builder, sorted and filtered, one selected. Its
//! state is [`App`](crate::tui::App)'s `sort`, `filter`,
//! `editing_filter`, `selected`, `offset` and `page`.

pub mod empty;
mod keys;
pub mod view;
