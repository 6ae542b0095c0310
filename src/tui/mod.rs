//! The terminal UI: a thin layer over [`crate::dashboard`]. `app` holds the
//! UI state and its updates (no terminal), `view` draws it, `run` is the
//! event loop, `terminal` takes the terminal and always gives it back.

pub mod action;
pub mod app;
pub mod fixture;
pub mod keymap;
pub mod run;
pub mod terminal;
pub mod view;

pub use app::App;
