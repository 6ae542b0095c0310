//! What rbtop runs on a builder, and the parsers of what comes back.
//!
//! - [`script`] holds every script, each a file under `src/remote/scripts/`;
//! - [`listing`] reads the builder's process table, as the facts loop prints it.

pub mod listing;
pub mod script;
