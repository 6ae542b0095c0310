//! The detail pane under the hosts table: the selected host in full, its
//! slots and the builds running on it, one of which `K` kills. Its state
//! is [`App`](crate::tui::App)'s `detail_open`, `detail_scroll`,
//! `detail_build` and `kill_outcome`.

mod keys;
pub mod view;
