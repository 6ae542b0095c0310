//! What rbtop runs on a builder, and the parsers of what comes back.
//!
//! - [`listing`] reads the builder's process table, as the facts loop prints it.

pub mod listing;
