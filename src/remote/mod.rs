//! What rbtop runs on a builder, and the parsers of what comes back.
//!
//! - [`script`] holds every script, each a file under `src/remote/scripts/`;
//! - [`listing`] reads the builder's process table, as the facts loop prints it;
//! - [`find`] finds a build's processes by their environment (the builder
//!   check after a cancel);
//! - [`kill`] is the one kill, for `K` and for that check.

pub(crate) mod find;
pub(crate) mod kill;
pub(crate) mod listing;
pub(crate) mod script;
