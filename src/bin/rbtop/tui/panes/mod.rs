//! A directory per pane: its state, its keys and its view together. Keys
//! that reach beyond the pane (open another, move the focus) are methods
//! on [`App`](super::App), in the pane's `keys` module; [`App`] decides
//! which pane gets them. Views take `&App` and return what they measured.

pub mod command;
pub mod confirm;
pub mod detail;
pub mod explain;
pub mod hosts;
pub mod jobs;
pub mod launch;
pub mod log;
pub mod overlay;
