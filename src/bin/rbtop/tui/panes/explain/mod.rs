//! The explainer over the dashboard (`e`): which machines Nix would send
//! a build to, and why not the others.

mod keys;
pub mod state;
pub mod view;

pub use state::{ExplainPane, PaneKey};
