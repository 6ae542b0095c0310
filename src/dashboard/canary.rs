//! A host's canary build as the dashboard shows it: running since when, or
//! its result and when it came. The build itself is [`crate::canary`]'s;
//! this is only its state between the key that asked and the result.

use std::time::{Instant, SystemTime};

use crate::canary::{CanaryResult, CanaryStatus};

#[derive(Clone, Debug, PartialEq)]
pub enum HostCanary {
    /// Asked for; the build is running (or waiting for its turn).
    Running { since: Instant },
    Done {
        result: Box<CanaryResult>,
        /// When the result came, for the detail pane.
        at: SystemTime,
    },
}

impl HostCanary {
    pub fn is_running(&self) -> bool {
        matches!(self, HostCanary::Running { .. })
    }

    pub fn result(&self) -> Option<&CanaryResult> {
        match self {
            HostCanary::Done { result, .. } => Some(result),
            HostCanary::Running { .. } => None,
        }
    }
}

/// The canaries of the fleet in a few words, for the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CanarySummary {
    pub running: usize,
    pub ok: usize,
    pub failed: usize,
}

impl CanarySummary {
    pub fn is_empty(&self) -> bool {
        *self == CanarySummary::default()
    }

    pub(super) fn count(&mut self, canary: &HostCanary) {
        match canary.result().map(|r| r.status) {
            None => self.running += 1,
            Some(CanaryStatus::Ok) => self.ok += 1,
            Some(CanaryStatus::Failed) => self.failed += 1,
            Some(CanaryStatus::Skipped) => {}
        }
    }
}
