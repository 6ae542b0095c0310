//! The whole fleet as the dashboard shows it: every host's state, merged
//! from probe results as they stream in, and the summary for the header.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use super::canary::{CanarySummary, HostCanary};
use super::clock::Stamp;
use super::host::HostState;
use crate::canary::CanaryResult;
use crate::daemon_view::DaemonHostView;
use crate::machines::Machine;
use crate::probe::ProbeEvent;
use crate::slots::LocalLoad;

/// The default time between two probes of an up host.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct FleetState {
    pub hosts: Vec<HostState>,
    pub refresh: Duration,
    /// When the latest probe result arrived.
    pub last_result: Option<SystemTime>,
    /// Why the local slot files could not be read, if they could not.
    pub load_problem: Option<String>,
}

/// Job slots of one system type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemSlots {
    pub system: String,
    /// Slots of this machine's builds held now (from the local lock files).
    pub busy: u32,
    /// `max-jobs` summed over every host that builds this system, as the
    /// build hook counts slots (up or not).
    pub total: u32,
    /// `max-jobs` summed over the hosts of this system that are up: the
    /// slots a build can actually get.
    pub usable: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSummary {
    pub total: usize,
    pub up: usize,
    /// Not yet answered a first probe.
    pub probing: usize,
    pub down: usize,
    pub slots: Vec<SystemSlots>,
}

impl FleetState {
    pub fn new(machines: Vec<Machine>, refresh: Duration) -> FleetState {
        FleetState {
            hosts: machines.into_iter().map(HostState::new).collect(),
            refresh,
            last_result: None,
            load_problem: None,
        }
    }

    /// Hosts to probe now: every host whose time has come and that is not
    /// being probed; with `force` (the operator asked), every idle host,
    /// backoff or not.
    pub fn due(&self, now: Instant, force: bool) -> Vec<usize> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, host)| {
                if force {
                    !host.in_flight
                } else {
                    host.is_due(now)
                }
            })
            .map(|(index, _)| index)
            .collect()
    }

    /// `forced`: the operator asked for these probes.
    pub fn start_probes(&mut self, indices: &[usize], now: Instant, forced: bool) {
        for &index in indices {
            if let Some(host) = self.hosts.get_mut(index) {
                host.start_probe(now, forced);
            }
        }
    }

    /// The earliest moment a host becomes due, to sleep until then.
    pub fn next_due(&self) -> Option<Instant> {
        self.hosts
            .iter()
            .filter(|host| !host.in_flight)
            .filter_map(|host| host.next_probe)
            .min()
    }

    /// Merge one finished probe. Results for unknown indices are ignored.
    pub fn apply(&mut self, event: ProbeEvent, stamp: Stamp) {
        let refresh = self.refresh;
        if let Some(host) = self.hosts.get_mut(event.index) {
            host.finish_probe(event.report, refresh, stamp);
            host.probe_duration = Some(event.elapsed);
            self.last_result = Some(stamp.wall);
        }
    }

    /// Merge a reading of the local build slots (one per machine, in order).
    /// Returns whether anything shown changed, so an unchanged reading
    /// (the usual case, once a second) costs no frame.
    pub fn apply_load(&mut self, load: LocalLoad) -> bool {
        let mut changed = false;
        match load {
            LocalLoad::Readable { machines } => {
                for (host, load) in self.hosts.iter_mut().zip(machines) {
                    changed |= host.load.as_ref() != Some(&load);
                    host.load = Some(load);
                }
                changed |= self.load_problem.take().is_some();
            }
            LocalLoad::Unreadable { reason, .. } => {
                for host in &mut self.hosts {
                    changed |= host.load.take().is_some();
                }
                changed |= self.load_problem.as_ref() != Some(&reason);
                self.load_problem = Some(reason);
            }
        }
        changed
    }

    /// Start canaries on `indices`: hosts already running one are left
    /// alone, hosts not up get `skipped` at once. Returns the hosts to
    /// build on.
    pub fn start_canaries(&mut self, indices: &[usize], now: Instant) -> Vec<usize> {
        let mut start = Vec::new();
        for &index in indices {
            let Some(host) = self.hosts.get_mut(index) else {
                continue;
            };
            if host.canary.as_ref().is_some_and(HostCanary::is_running) {
                continue;
            }
            if host.is_up() {
                host.canary = Some(HostCanary::Running { since: now });
                start.push(index);
            } else {
                let why = format!("host is not up ({})", host.shown().name());
                host.canary = Some(HostCanary::Done {
                    result: Box::new(CanaryResult::skipped(why)),
                    at: SystemTime::now(),
                });
            }
        }
        start
    }

    /// Merge a finished canary. Results for unknown indices are ignored.
    pub fn finish_canary(&mut self, index: usize, result: CanaryResult, wall: SystemTime) {
        if let Some(host) = self.hosts.get_mut(index) {
            host.finish_canary(result, wall);
        }
    }

    /// Take root's view of the hosts (one entry per host, in order).
    pub fn apply_daemon_view(&mut self, views: Vec<Option<DaemonHostView>>) {
        for (host, view) in self.hosts.iter_mut().zip(views) {
            host.daemon_view = view;
        }
    }

    /// Take one host's own reach of its substituters.
    pub fn apply_builder_substituters(
        &mut self,
        index: usize,
        outcome: crate::substituters::from_builder::Outcome,
    ) {
        if let Some(host) = self.hosts.get_mut(index) {
            host.builder_substituters = Some(outcome);
        }
    }

    /// Hosts the daemon's view was checked on and failed.
    pub fn daemon_view_failures(&self) -> usize {
        self.hosts
            .iter()
            .filter_map(|h| h.daemon_view.as_ref())
            .filter(|v| v.status != crate::probe::Status::Up)
            .count()
    }

    pub fn canary_summary(&self) -> CanarySummary {
        let mut summary = CanarySummary::default();
        for canary in self.hosts.iter().filter_map(|h| h.canary.as_ref()) {
            summary.count(canary);
        }
        summary
    }

    pub fn summary(&self) -> FleetSummary {
        let mut slots: BTreeMap<&str, (u32, u32, u32)> = BTreeMap::new();
        for host in &self.hosts {
            for system in &host.machine.systems {
                let entry = slots.entry(system.as_str()).or_default();
                entry.0 += host.busy_slots().unwrap_or(0);
                entry.1 += host.machine.max_jobs;
                if host.is_up() {
                    entry.2 += host.machine.max_jobs;
                }
            }
        }
        let probing = self.hosts.iter().filter(|h| h.report.is_none()).count();
        let up = self.hosts.iter().filter(|h| h.is_up()).count();
        FleetSummary {
            total: self.hosts.len(),
            up,
            probing,
            down: self.hosts.len() - up - probing,
            slots: slots
                .into_iter()
                .map(|(system, (busy, total, usable))| SystemSlots {
                    system: system.to_string(),
                    busy,
                    total,
                    usable,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::testing::{self, machines};
    use crate::probe::{HostReport, Status, Via};
    use crate::slots::MachineLoad;

    fn up() -> HostReport {
        testing::up(1)
    }

    fn event(index: usize, report: HostReport) -> ProbeEvent {
        ProbeEvent {
            index,
            report,
            elapsed: Duration::from_millis(3),
        }
    }

    fn load(busy: u32, max: u32) -> MachineLoad {
        MachineLoad {
            busy,
            max,
            holders: Vec::new(),
            upload_lock: None,
        }
    }

    const FLEET: &str = "ssh://a x86_64-linux - 4\n\
                         ssh://b x86_64-linux,aarch64-linux - 2\n\
                         ssh://c aarch64-linux - 8";

    #[test]
    fn results_merge_as_they_arrive_in_any_order() {
        let t = Stamp::now();
        let mut fleet = FleetState::new(machines(FLEET), DEFAULT_REFRESH);
        let all = fleet.due(t.at, false);
        assert_eq!(all, [0, 1, 2]);
        fleet.start_probes(&all, t.at, false);
        assert!(fleet.due(t.at, false).is_empty(), "all in flight");
        assert_eq!(fleet.summary().probing, 3);

        fleet.apply(
            event(2, HostReport::failed(Status::Timeout, Via::Ssh, "x")),
            t,
        );
        fleet.apply(event(0, up()), t);
        let summary = fleet.summary();
        assert_eq!((summary.up, summary.down, summary.probing), (1, 1, 1));
        assert_eq!(fleet.last_result, Some(t.wall));
        // An event for a host that does not exist changes nothing.
        fleet.apply(event(9, up()), t);
        assert_eq!(fleet.summary().up, 1);
    }

    #[test]
    fn canaries_start_on_up_hosts_once_and_their_results_are_kept() {
        use crate::canary::{CanaryResult, CanaryStatus, FailureClass};
        let t = Stamp::now();
        let mut fleet = FleetState::new(machines(FLEET), DEFAULT_REFRESH);
        fleet.apply(event(0, up()), t);
        fleet.apply(event(1, up()), t);
        fleet.apply(
            event(2, HostReport::failed(Status::Refused, Via::Ssh, "x")),
            t,
        );
        assert_eq!(fleet.start_canaries(&[0, 1, 2], t.at), [0, 1]);
        assert!(fleet.hosts[0].canary.as_ref().unwrap().is_running());
        let skipped = fleet.hosts[2].canary.as_ref().unwrap().result().unwrap();
        assert_eq!(skipped.status, CanaryStatus::Skipped);
        assert_eq!(skipped.message.as_deref(), Some("host is not up (refused)"));
        assert!(
            fleet.start_canaries(&[0], t.at).is_empty(),
            "a running canary is not started twice"
        );
        assert_eq!(
            fleet.canary_summary(),
            CanarySummary {
                running: 2,
                ok: 0,
                failed: 0
            }
        );

        let mut failed = CanaryResult::skipped("");
        failed.status = CanaryStatus::Failed;
        failed.reason = Some(FailureClass::Hostkey);
        fleet.finish_canary(1, failed, t.wall);
        let events: Vec<&str> = fleet.hosts[1]
            .events
            .iter()
            .map(|e| e.text.as_str())
            .collect();
        assert!(events.contains(&"canary failed (hostkey)"), "{events:?}");
        assert_eq!(
            fleet.canary_summary(),
            CanarySummary {
                running: 1,
                ok: 0,
                failed: 1
            }
        );
        assert_eq!(
            fleet.start_canaries(&[1], t.at),
            [1],
            "a finished one may run again"
        );
        fleet.finish_canary(9, CanaryResult::skipped(""), t.wall);
    }

    #[test]
    fn slots_per_system_count_busy_configured_and_usable_slots() {
        let t = Stamp::now();
        let mut fleet = FleetState::new(machines(FLEET), DEFAULT_REFRESH);
        fleet.apply(event(0, up()), t);
        fleet.apply(event(1, up()), t);
        fleet.apply(
            event(2, HostReport::failed(Status::Refused, Via::Ssh, "x")),
            t,
        );
        fleet.apply_load(LocalLoad::Readable {
            machines: vec![load(3, 4), load(1, 2), load(0, 8)],
        });
        let slots = fleet.summary().slots;
        assert_eq!(
            slots,
            [
                SystemSlots {
                    system: "aarch64-linux".into(),
                    busy: 1,
                    total: 10,
                    // c (8 slots) is refused: only b's 2 can be had.
                    usable: 2,
                },
                SystemSlots {
                    system: "x86_64-linux".into(),
                    busy: 4,
                    total: 6,
                    usable: 6,
                },
            ]
        );
    }

    #[test]
    fn unreadable_slots_are_reported_not_guessed() {
        let mut fleet = FleetState::new(machines(FLEET), DEFAULT_REFRESH);
        let readable = || LocalLoad::Readable {
            machines: vec![load(1, 4), load(0, 2), load(0, 8)],
        };
        let unreadable = || LocalLoad::Unreadable {
            dir: "/nix/var/nix/current-load".into(),
            reason: "permission denied".into(),
        };
        assert!(fleet.apply_load(readable()));
        assert!(
            !fleet.apply_load(readable()),
            "the same reading changes nothing"
        );
        assert!(fleet.apply_load(unreadable()));
        assert!(fleet.hosts.iter().all(|h| h.load.is_none()));
        assert_eq!(fleet.load_problem.as_deref(), Some("permission denied"));
        assert!(!fleet.apply_load(unreadable()));
        assert!(fleet.apply_load(readable()), "readable again");
        assert_eq!(fleet.load_problem, None);
    }

    #[test]
    fn the_next_wake_is_the_earliest_due_host_and_force_ignores_backoff() {
        let t = Stamp::now();
        let mut fleet = FleetState::new(machines(FLEET), DEFAULT_REFRESH);
        fleet.start_probes(&[0, 1, 2], t.at, false);
        fleet.apply(event(0, up()), t);
        fleet.apply(event(1, HostReport::failed(Status::Auth, Via::Ssh, "x")), t);
        assert_eq!(
            fleet.next_due(),
            Some(t.at + DEFAULT_REFRESH),
            "host 2 in flight"
        );
        fleet.apply(event(1, HostReport::failed(Status::Auth, Via::Ssh, "x")), t);
        fleet.apply(event(2, up()), t);
        let later = t.at + DEFAULT_REFRESH;
        assert_eq!(fleet.due(later, false), [0, 2], "host 1 backs off");
        assert_eq!(fleet.due(later, true), [0, 1, 2]);
    }
}
