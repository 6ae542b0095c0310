//! The log pane: one job's log (or one derivation's) over the body,
//! following new lines, with a search.

mod keys;
mod state;
pub mod view;

pub use state::LogPane;
