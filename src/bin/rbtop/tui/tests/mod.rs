//! The TUI's views rendered on ratatui's TestBackend and compared with
//! reviewed snapshots.

mod dashboard_views;
mod explain_views;
mod hostile;

/// The reviewed snapshots live with the other tests' data, at the top of
/// the repository.
const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots");
