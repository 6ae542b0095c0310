//! The dashboard's terminal-free core: the fleet's state merged from probe
//! results, when each host is probed next, the refresh engine that probes
//! them ([`Refresher`], shared with `rbtop serve`), and which rows the table shows.
//! The front end's TUI only turns this into frames and keys into calls.

mod canary;
mod clock;
mod fleet;
mod host;
mod refresher;
mod rows;
#[cfg(test)]
mod testing;

pub use canary::{CanarySummary, HostCanary};
pub use clock::Stamp;
pub use fleet::{DEFAULT_REFRESH, FleetState, FleetSummary, SystemSlots};
pub use host::{HISTORY, HostState, Opened, Shown};
pub use refresher::{Batch, Finished, Refresher};
pub use rows::{Sort, SortKey, visible as visible_rows};

use std::path::PathBuf;

use crate::daemon_view::LocalView;
use crate::diagnostics::Diagnostic;
use crate::nixconf::LocalCapacity;
use crate::sources::Resolved;
use crate::substituters::SubstituterCheck;

/// What the dashboard knows besides the hosts: where the machines came
/// from and what was wrong with them, for the header, the diagnostics view
/// and the empty state.
#[derive(Clone, Debug)]
pub struct Context {
    /// Each place consulted for the machines, in order.
    pub consulted: Vec<String>,
    pub default_machines_file: PathBuf,
    /// Bad lines and warnings, with `file:line`.
    pub diagnostics: Vec<Diagnostic>,
    /// Warnings from rbtop itself (ssh options dropped, open-file limit).
    pub notices: Vec<String>,
    pub local: LocalCapacity,
    /// Where rbtop writes its log, for the help screen.
    pub log_directory: Option<PathBuf>,
    /// Which account rbtop runs as, and whether a nix-daemon builds here.
    pub checked_as: Option<LocalView>,
    /// Root's view of the hosts (as root, with a daemon): where the
    /// daemon's SSH options were read, or why it could not be checked;
    /// `None` until it is done or when it is not checked.
    pub daemon_view: Option<Result<String, String>>,
    /// The substituters as checked at start; `None` until then.
    pub substituters: Option<Vec<SubstituterCheck>>,
}

impl Context {
    pub fn of(resolved: &Resolved) -> Context {
        Context {
            consulted: resolved.consulted.clone(),
            default_machines_file: resolved.default_machines_file.clone(),
            // nix.conf's own problems are already in, when nix.conf was read.
            diagnostics: resolved.parsed.diagnostics.clone(),
            notices: Vec::new(),
            local: LocalCapacity::of(&resolved.nix_conf),
            log_directory: None,
            checked_as: None,
            daemon_view: None,
            substituters: None,
        }
    }

    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Everything the header counts as a warning: rejected lines, warnings, notices.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() + self.notices.len()
    }
}
