//! Whether a remote build still moves: its process group's CPU time,
//! compared refresh after refresh. Pure; the clock is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::classify::RemoteBuild;

/// The last CPU figure of each build and when it last changed.
#[derive(Clone, Debug, Default)]
pub(crate) struct CpuWatch {
    /// (pid, start ticks) → (CPU seconds, when they last changed)
    seen: HashMap<(u32, u64), (f64, Instant)>,
}

impl CpuWatch {
    /// Note this refresh's builds of one host (all of them: builds not listed
    /// are forgotten) and fill in each one's `cpu_idle_s`.
    pub(crate) fn observe(&mut self, builds: &mut [RemoteBuild], now: Instant) {
        let mut seen = HashMap::with_capacity(builds.len());
        for build in builds.iter_mut() {
            let key = (build.pid, build.start_ticks);
            let changed = match self.seen.get(&key) {
                Some(&(cpu, since)) if cpu == build.cpu_s => since,
                // New, or it used CPU since the last look. A build first
                // seen counts from when it started: 0 CPU for its whole
                // life is idle that long.
                Some(_) => now,
                None if build.cpu_s == 0.0 => now
                    .checked_sub(Duration::from_secs(build.elapsed_s))
                    .unwrap_or(now),
                None => now,
            };
            build.cpu_idle_s = Some(now.duration_since(changed).as_secs());
            seen.insert(key, (build.cpu_s, changed));
        }
        self.seen = seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_builds::classify::Client;
    use crate::remote_builds::classify::tests::sample_build;

    fn build(pid: u32, cpu_s: f64, elapsed_s: u64) -> RemoteBuild {
        RemoteBuild {
            cpu_s,
            elapsed_s,
            ..sample_build(pid, Client::Ssh)
        }
    }

    #[test]
    fn idle_time_grows_until_the_cpu_moves() {
        let start = Instant::now() + Duration::from_secs(1000);
        let mut watch = CpuWatch::default();
        let mut builds = [build(1, 2.0, 10)];
        watch.observe(&mut builds, start);
        assert_eq!(builds[0].cpu_idle_s, Some(0));
        let mut builds = [build(1, 2.0, 70)];
        watch.observe(&mut builds, start + Duration::from_secs(60));
        assert_eq!(builds[0].cpu_idle_s, Some(60));
        let mut builds = [build(1, 2.5, 130)];
        watch.observe(&mut builds, start + Duration::from_secs(120));
        assert_eq!(builds[0].cpu_idle_s, Some(0), "it moved");
    }

    #[test]
    fn a_build_that_never_used_cpu_is_idle_since_it_started_and_gone_ones_are_forgotten() {
        let now = Instant::now() + Duration::from_secs(1000);
        let mut watch = CpuWatch::default();
        let mut builds = [build(1, 0.0, 300), build(2, 1.0, 300)];
        watch.observe(&mut builds, now);
        assert_eq!(builds[0].cpu_idle_s, Some(300));
        assert_eq!(builds[1].cpu_idle_s, Some(0));
        watch.observe(&mut [], now);
        assert!(watch.seen.is_empty());
    }
}
