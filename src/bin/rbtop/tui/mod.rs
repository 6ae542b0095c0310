//! The terminal UI: a thin layer over [`rbtop::dashboard`]. `app` holds the
//! UI state and its updates (no terminal), `view` draws it, `run` is the
//! event loop, `terminal` takes the terminal and always gives it back.

pub mod action;
pub mod app;
mod app_jobs;
pub mod dashboard;
pub mod explain_pane;
#[cfg(test)]
pub mod fixture;
pub mod jobs_pane;
pub mod keymap;
pub mod launch_form;
pub mod log_pane;
pub mod popups;
pub mod run;
pub mod scroll;
pub mod terminal;
pub mod text_input;
pub mod view;

pub use app::App;

#[cfg(test)]
mod tests;
