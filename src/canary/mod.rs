//! The canary build: proof that Nix can build on a host, as a user's build
//! would go (through the local nix-daemon when one serves this machine, so
//! the daemon's SSH identity, known_hosts and trust are what is tested).
//!
//! Each canary is an ordinary job of [`crate::jobs`] (the same pinning,
//! internal-json reading and cancel that leaves nothing behind as `rbtop
//! build --on`); this module adds the derivation ([`request`]), the stage
//! timings ([`stages`]), the failure classes ([`classify`]) and the fleet
//! run with a deadline per host ([`run`]). The result, [`CanaryResult`], is
//! plain data for `rbtop check --build`, the dashboard and metrics.

pub mod classify;
pub mod request;
mod run;
pub mod stages;

use std::time::Duration;

pub use classify::FailureClass;
pub use run::{CanarySettings, run_fleet, run_fleet_reporting};

/// Default per-host deadline of a canary.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CanaryStatus {
    Ok,
    Failed,
    /// Not tried: the host was not up, or the run was interrupted first.
    Skipped,
}

/// One host's canary.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryResult {
    pub status: CanaryStatus,
    /// Why it failed.
    pub reason: Option<FailureClass>,
    /// Nix's line(s) that told, or why it was skipped; for a success, what
    /// was built where.
    pub message: Option<String>,
    /// Connect and upload of the input.
    pub upload: Option<Duration>,
    pub build: Option<Duration>,
    /// Copy of the output back.
    pub download: Option<Duration>,
    /// From launch to end, Nix's evaluation included.
    pub total: Option<Duration>,
    /// The output path (to collect: it has no GC root here).
    pub output: Option<String>,
    /// Where Nix said it built (`None`: locally, or not reached).
    pub built_on: Option<String>,
    /// The canary's full log.
    pub log_file: Option<std::path::PathBuf>,
}

impl CanaryResult {
    pub fn skipped(why: impl Into<String>) -> CanaryResult {
        CanaryResult {
            status: CanaryStatus::Skipped,
            reason: None,
            message: Some(why.into()),
            upload: None,
            build: None,
            download: None,
            total: None,
            output: None,
            built_on: None,
            log_file: None,
        }
    }

    pub fn failed(&self) -> bool {
        self.status == CanaryStatus::Failed
    }

    /// It was built or failed: not skipped (host not up, run stopped first).
    pub fn tried(&self) -> bool {
        self.status != CanaryStatus::Skipped
    }

    /// The one-line fix for a failure.
    pub fn fix(&self) -> Option<&'static str> {
        self.reason.map(FailureClass::fix)
    }
}
