//! The canary's stages timed from the phases the jobs module reads out of
//! Nix's internal-json: connect and upload (from `connecting to` until the
//! remote build runs), build, and copy back (`copying outputs from` until
//! the build activity ends).

use std::time::{Duration, Instant};

use crate::jobs::progress::Phase;

/// When each stage was first seen to start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageClock {
    connecting: Option<Instant>,
    building: Option<Instant>,
    copying_back: Option<Instant>,
    finished: Option<Instant>,
}

/// How long each stage took; `None` when it was not reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimes {
    pub upload: Option<Duration>,
    pub build: Option<Duration>,
    pub download: Option<Duration>,
}

impl StageClock {
    /// The canary's derivation is at `phase` at `now`. A stage skipped
    /// between two looks starts when the later one was seen.
    pub fn observe(&mut self, phase: Phase, now: Instant) {
        if phase >= Phase::Connecting {
            self.connecting.get_or_insert(now);
        }
        if phase >= Phase::Building {
            self.building.get_or_insert(now);
        }
        if phase >= Phase::CopyingOutputs {
            self.copying_back.get_or_insert(now);
        }
        if phase >= Phase::Finished {
            self.finished.get_or_insert(now);
        }
    }

    /// Nix said when it began connecting (before the build activity that
    /// names the machine, in 2.8): the first stage starts then.
    pub fn connecting_at(&mut self, at: Instant) {
        self.connecting = Some(self.connecting.map_or(at, |seen| seen.min(at)));
    }

    /// The stages' durations; a stage counts only once the next one began
    /// (`end` closes the last one when the build ended successfully).
    pub fn times(&self, end: Option<Instant>) -> StageTimes {
        let span = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(from), Some(to)) => Some(to.saturating_duration_since(from)),
            _ => None,
        };
        StageTimes {
            upload: span(self.connecting, self.building),
            build: span(self.building, self.copying_back),
            download: span(self.copying_back, self.finished.or(end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_runs_from_its_start_to_the_next() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut clock = StageClock::default();
        clock.observe(Phase::Queued, at(0));
        clock.observe(Phase::Connecting, at(10));
        clock.observe(Phase::CopyingInputs, at(30));
        clock.observe(Phase::Building, at(100));
        clock.observe(Phase::Building, at(150));
        clock.observe(Phase::CopyingOutputs, at(400));
        clock.observe(Phase::Finished, at(450));
        let times = clock.times(Some(at(500)));
        assert_eq!(times.upload, Some(Duration::from_millis(90)));
        assert_eq!(times.build, Some(Duration::from_millis(300)));
        assert_eq!(times.download, Some(Duration::from_millis(50)));
    }

    #[test]
    fn stages_not_reached_are_none() {
        let t0 = Instant::now();
        let mut clock = StageClock::default();
        clock.observe(Phase::Connecting, t0);
        let times = clock.times(None);
        assert_eq!(times, StageTimes::default());
        clock.observe(Phase::Building, t0 + Duration::from_millis(5));
        assert_eq!(clock.times(None).upload, Some(Duration::from_millis(5)));
        // Connecting began before the build activity was seen.
        clock.connecting_at(t0 - Duration::from_millis(200));
        assert_eq!(clock.times(None).upload, Some(Duration::from_millis(205)));
        assert_eq!(clock.times(None).build, None);
    }
}
