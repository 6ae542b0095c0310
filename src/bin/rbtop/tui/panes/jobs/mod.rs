//! The jobs pane: builds launched from the dashboard, a row per job and
//! one per derivation under it.

mod keys;
pub mod state;
pub mod view;

pub use state::{JobDefaults, JobsPane};
