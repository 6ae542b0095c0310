//! The terminal UI: a thin layer over [`rbtop::dashboard`].
//!
//! - `app`: the composition: every pane's state in one [`App`], keys and
//!   the mouse routed to the pane that takes them. No terminal.
//! - `popups`: what is open over the screen and which of it has the
//!   keyboard: the one place precedence is decided, for keys and frames.
//! - `panes/`: a directory per pane: its state, its keys, its view.
//! - `view`: a frame (header, screen, popups, footer) drawn from `&App`,
//!   returning what it measured for the app to keep.
//! - `run`: the event loop; `dashboard`: its start and shutdown;
//!   `terminal`: takes the terminal and always gives it back; `canaries`:
//!   the canary builds asked for with `c`/`C`, run beside the loop;
//!   `side_checks`: the substituters and root's view, at start and on `r`.
//! - `action`, `keymap`, `text_input`, `scroll`: what the panes share.

pub mod action;
pub mod app;
pub mod canaries;
pub mod dashboard;
#[cfg(test)]
pub mod fixture;
pub mod keymap;
pub mod panes;
pub mod popups;
pub mod run;
pub mod scroll;
pub mod side_checks;
pub mod terminal;
pub mod text_input;
pub mod view;

pub use app::App;

#[cfg(test)]
mod tests;
