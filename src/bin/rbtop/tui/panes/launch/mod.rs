//! The launch form (`b`): what to build, where, with which command.

mod form;
mod keys;
pub mod view;

pub use form::{FormOutcome, LaunchForm};
