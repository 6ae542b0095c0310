//! The two clocks the dashboard needs, passed in rather than read, so that
//! state transitions are plain functions a test can drive.

use std::time::{Duration, Instant, SystemTime};

/// A moment: monotonic for scheduling, wall-clock for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub at: Instant,
    pub wall: SystemTime,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp {
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The same moment moved `by` later on both clocks (for tests and replays).
    pub fn later(self, by: Duration) -> Stamp {
        Stamp {
            at: self.at + by,
            wall: self.wall + by,
        }
    }
}
