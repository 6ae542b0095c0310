//! Help and the machines diagnostics, over the body. Its state is
//! [`App`](crate::tui::App)'s `overlay` and `overlay_scroll`.

mod keys;
pub mod view;

/// Which full-body text is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Diagnostics,
}
