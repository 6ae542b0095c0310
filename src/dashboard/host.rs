//! One builder as the dashboard knows it: its machines line, the latest
//! probe, a short history, and when to probe it next.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use super::canary::HostCanary;
use super::clock::Stamp;
use crate::canary::{CanaryResult, CanaryStatus};
use crate::daemon_view::DaemonHostView;
use crate::machines::Machine;
use crate::probe::{self, HostReport, Status};
use crate::remote_builds::HostBuilds;
use crate::remote_builds::stall::CpuWatch;
use crate::slots::MachineLoad;

/// Probes remembered for the sparkline and the up/down timeline.
pub const HISTORY: usize = 120;
/// Events (down, back up, reconnected) remembered for the detail pane.
pub(super) const EVENTS: usize = 20;
/// The longest wait between two attempts at a host that keeps failing.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the table shows in the status column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shown {
    /// Never probed yet, or the first probe is running.
    Probing,
    Known(Status),
}

impl Shown {
    pub fn name(self) -> &'static str {
        match self {
            Shown::Probing => "probing",
            Shown::Known(status) => status.name(),
        }
    }
}

/// One probe's outcome, as the history keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub up: bool,
    /// The store round trip, when up.
    pub ping: Option<Duration>,
}

/// Something worth telling the operator about a host, with when it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct HostEvent {
    pub wall: SystemTime,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct HostState {
    pub machine: Machine,
    /// The latest finished probe.
    pub report: Option<HostReport>,
    /// When the latest probe finished.
    pub reported_at: Option<SystemTime>,
    /// A probe of this host is running now.
    pub in_flight: bool,
    /// When the current or last probe started.
    pub started: Option<Instant>,
    /// When this host should be probed next; `None` before the first probe.
    pub next_probe: Option<Instant>,
    /// Failed probes in a row, for the backoff.
    pub failures: u32,
    /// How long the latest probe took.
    pub probe_duration: Option<Duration>,
    pub history: VecDeque<Sample>,
    pub events: VecDeque<HostEvent>,
    /// Times the SSH session or a kept channel had to be opened again.
    pub reconnects: u32,
    /// This machine's build slots here, from the build hook's lock files.
    pub load: Option<MachineLoad>,
    /// The builds running on the host, from its latest probe.
    pub builds: HostBuilds,
    /// Their CPU time from one probe to the next, for stalls.
    cpu_watch: CpuWatch,
    /// The probe running now was asked for by the operator.
    forced: bool,
    /// When the host was last found up after being down (or down after
    /// being up), or first answered: what DOWN/UP SINCE counts from.
    pub since: Option<Instant>,
    /// The connect and handshake times last measured, and when: a probe
    /// over the kept session and channel measures neither (nothing was
    /// opened), so the latest report alone would show none.
    pub opened: Opened,
    /// The latest canary build asked for, if any.
    pub canary: Option<HostCanary>,
    /// The nix-daemon's (root's) view of this host, when checked.
    pub daemon_view: Option<DaemonHostView>,
    /// The substituters as this host reaches them, when checked (with
    /// `builders-use-substitutes`).
    pub builder_substituters: Option<crate::substituters::from_builder::Outcome>,
}

/// What opening the session and the store channel last took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Opened {
    pub connect: Option<(Duration, Instant)>,
    pub handshake: Option<(Duration, Instant)>,
}

impl HostState {
    pub fn new(machine: Machine) -> HostState {
        HostState {
            machine,
            report: None,
            reported_at: None,
            in_flight: false,
            started: None,
            next_probe: None,
            failures: 0,
            probe_duration: None,
            history: VecDeque::new(),
            events: VecDeque::new(),
            reconnects: 0,
            load: None,
            builds: None,
            cpu_watch: CpuWatch::default(),
            forced: false,
            since: None,
            opened: Opened::default(),
            canary: None,
            daemon_view: None,
            builder_substituters: None,
        }
    }

    /// Why a build pinned to this host may not run, one reason each; empty
    /// when nothing is known against it: down, not answered yet, or its
    /// last canary build failed. The launch form shows these and asks for a
    /// confirmation.
    pub fn launch_concerns(&self) -> Vec<String> {
        let mut concerns = self.probe_concerns();
        if let Some(result) = self.canary.as_ref().and_then(HostCanary::result)
            && result.failed()
        {
            let class = result.reason.map_or("unclassified", |r| r.name());
            let mut concern = format!("{}'s last canary build failed ({class})", self.name());
            if let Some(fix) = result.fix() {
                concern.push_str(&format!(": {fix}"));
            }
            concerns.push(concern);
        }
        concerns
    }

    fn probe_concerns(&self) -> Vec<String> {
        match &self.report {
            None => vec![format!(
                "{} has not answered a probe yet: it may be down",
                self.name()
            )],
            Some(report) if !report.is_up() => vec![format!(
                "{} is down: {}",
                self.name(),
                probe::text::failure(
                    report.status,
                    report.reason.as_deref().unwrap_or("no reason given")
                )
            )],
            Some(_) => Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        self.machine.host_name()
    }

    /// Take the builds found in the latest probe, noting their CPU time.
    pub fn set_builds(&mut self, mut builds: HostBuilds, now: Instant) {
        if let Some(Ok(list)) = &mut builds {
            self.cpu_watch.observe(list, now);
        }
        self.builds = builds;
    }

    /// The builds listed, or none.
    pub fn build_list(&self) -> &[crate::remote_builds::RemoteBuild] {
        match &self.builds {
            Some(Ok(list)) => list,
            _ => &[],
        }
    }

    pub fn shown(&self) -> Shown {
        match &self.report {
            Some(report) => Shown::Known(report.status),
            None => Shown::Probing,
        }
    }

    pub fn is_up(&self) -> bool {
        self.report.as_ref().is_some_and(HostReport::is_up)
    }

    /// The latest store round trip of an up host.
    pub fn latency(&self) -> Option<Duration> {
        self.report
            .as_ref()
            .filter(|r| r.is_up())
            .and_then(|r| r.ping)
    }

    /// Load average (1 min) divided by the CPU count.
    pub fn load_per_cpu(&self) -> Option<f64> {
        let facts = self.report.as_ref()?.facts.as_ref()?;
        let cpus = facts.cpus.filter(|&c| c > 0)?;
        Some(facts.load?[0] / f64::from(cpus))
    }

    pub fn store_free(&self) -> Option<u64> {
        self.report.as_ref()?.facts.as_ref()?.store_free
    }

    /// Busy build slots of this machine here, if they could be read.
    pub fn busy_slots(&self) -> Option<u32> {
        self.load.as_ref().map(|load| load.busy)
    }

    pub fn is_due(&self, now: Instant) -> bool {
        !self.in_flight && self.next_probe.is_none_or(|next| next <= now)
    }

    /// `forced`: the operator asked (`r`), so a failure of this probe does
    /// not lengthen the backoff of a host already failing.
    pub fn start_probe(&mut self, now: Instant, forced: bool) {
        self.in_flight = true;
        self.started = Some(now);
        self.forced = forced;
    }

    /// Take a finished probe: history, events, and the next attempt
    /// (`refresh` after the start when up; doubling up to `MAX_BACKOFF`
    /// while it keeps failing).
    pub fn finish_probe(&mut self, report: HostReport, refresh: Duration, stamp: Stamp) {
        let previous = self.report.take();
        let up = report.is_up();
        if previous.as_ref().is_none_or(|before| before.is_up() != up) {
            self.since = Some(stamp.at);
        }
        if let Some(connect) = report.connect {
            self.opened.connect = Some((connect, stamp.at));
        }
        if let Some(handshake) = report.handshake {
            self.opened.handshake = Some((handshake, stamp.at));
        }
        self.note_changes(previous.as_ref(), &report, stamp.wall);
        self.push_sample(Sample {
            up,
            ping: report.ping.filter(|_| up),
        });
        self.next_probe = Some(if up {
            self.failures = 0;
            // From the start of the probe, so a host answering in 5 ms is
            // probed again every `refresh`, not every `refresh` + 5 ms.
            (self.started.unwrap_or(stamp.at) + refresh).max(stamp.at)
        } else {
            if !(self.forced && self.failures > 0) {
                self.failures += 1;
            }
            // From the end: a host that takes its whole timeout to fail
            // still waits the backoff before the next attempt.
            stamp.at + backoff(refresh, self.failures)
        });
        self.in_flight = false;
        self.forced = false;
        self.report = Some(report);
        self.reported_at = Some(stamp.wall);
    }

    /// Take a canary's result; a failure or a recovery is an event.
    pub fn finish_canary(&mut self, result: CanaryResult, wall: SystemTime) {
        let before = self
            .canary
            .as_ref()
            .and_then(HostCanary::result)
            .map(|r| r.status);
        let text = match (result.status, result.reason) {
            (CanaryStatus::Failed, Some(class)) => {
                Some(format!("canary failed ({})", class.name()))
            }
            (CanaryStatus::Failed, None) => Some("canary failed".to_string()),
            (CanaryStatus::Ok, _) if before == Some(CanaryStatus::Failed) => {
                Some("canary builds again".to_string())
            }
            _ => None,
        };
        if let Some(text) = text {
            self.push_event(wall, text);
        }
        self.canary = Some(HostCanary::Done {
            result: Box::new(result),
            at: wall,
        });
    }

    /// Time left before the next attempt at a failing host, for the detail pane.
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        if self.in_flight || self.is_up() {
            return None;
        }
        self.next_probe
            .map(|next| next.saturating_duration_since(now))
    }

    fn push_sample(&mut self, sample: Sample) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(sample);
    }

    fn push_event(&mut self, wall: SystemTime, text: String) {
        if self.events.len() == EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(HostEvent { wall, text });
    }

    fn note_changes(
        &mut self,
        previous: Option<&HostReport>,
        report: &HostReport,
        wall: SystemTime,
    ) {
        let down = |report: &HostReport| {
            let reason = report.reason.as_deref().unwrap_or("no reason given");
            probe::text::failure(report.status, reason)
        };
        let Some(before) = previous else {
            let text = if report.is_up() {
                "up".to_string()
            } else {
                down(report)
            };
            return self.push_event(wall, text);
        };
        match (before.is_up(), report.is_up()) {
            (true, false) => self.push_event(wall, down(report)),
            (false, false) if before.status != report.status => self.push_event(wall, down(report)),
            (false, true) => self.push_event(wall, format!("back up after {}", before.status)),
            (true, true) => {
                // Up before and up now: a connect or handshake time means the
                // kept session or channel died and was opened again.
                let what = if report.connect.is_some() {
                    "SSH session lost; reconnected"
                } else if report.handshake.is_some() {
                    "store channel lost; reopened"
                } else {
                    return;
                };
                self.reconnects += 1;
                self.push_event(wall, what.to_string());
            }
            (false, false) => {}
        }
    }
}

/// The wait before attempt `failures + 1` at a failing host: one refresh
/// after the first failure, then doubling, never above [`MAX_BACKOFF`]
/// (nor below one refresh, if the refresh itself is longer).
pub(super) fn backoff(refresh: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let delay = refresh.saturating_mul(1 << doublings);
    delay.min(MAX_BACKOFF.max(refresh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::testing::{self, up};
    use crate::probe::Via;

    fn machine(uri: &str) -> Machine {
        testing::machines(uri).remove(0)
    }

    fn stamp() -> Stamp {
        Stamp {
            at: Instant::now(),
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        }
    }

    const REFRESH: Duration = Duration::from_secs(5);

    #[test]
    fn backoff_doubles_from_one_refresh_and_stops_at_a_minute() {
        let secs: Vec<u64> = (1..=7).map(|n| backoff(REFRESH, n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60]);
        // A refresh longer than the cap is never shortened by it.
        assert_eq!(backoff(Duration::from_secs(90), 3), Duration::from_secs(90));
    }

    #[test]
    fn an_up_host_is_due_one_refresh_after_its_probe_started() {
        let t0 = stamp();
        let mut host = HostState::new(machine("ssh://b1"));
        assert!(host.is_due(t0.at), "never probed");
        host.start_probe(t0.at, false);
        assert!(!host.is_due(t0.at + REFRESH * 10), "in flight");
        host.finish_probe(up(1), REFRESH, t0.later(Duration::from_millis(30)));
        assert!(!host.is_due(t0.at + REFRESH - Duration::from_millis(1)));
        assert!(host.is_due(t0.at + REFRESH));
        assert_eq!(host.latency(), Some(Duration::from_millis(1)));
    }

    #[test]
    fn since_counts_from_the_last_change_between_up_and_down() {
        let t0 = stamp();
        let mut host = HostState::new(machine("ssh://b1"));
        assert_eq!(host.since, None);
        let refused = || HostReport::failed(Status::Refused, Via::Ssh, "Connection refused");
        let t1 = t0.later(Duration::from_secs(1));
        let t2 = t0.later(Duration::from_secs(2));
        let t3 = t0.later(Duration::from_secs(3));
        host.finish_probe(refused(), REFRESH, t0);
        host.finish_probe(
            HostReport::failed(Status::Timeout, Via::Ssh, "x"),
            REFRESH,
            t1,
        );
        assert_eq!(host.since, Some(t0.at), "still down: still since the first");
        host.finish_probe(up(1), REFRESH, t2);
        host.finish_probe(up(1), REFRESH, t3);
        assert_eq!(host.since, Some(t2.at), "up since it came back");
    }

    #[test]
    fn timings_measured_when_the_session_opened_are_kept_while_it_is_reused() {
        let t0 = stamp();
        let mut host = HostState::new(machine("ssh://b1"));
        let mut first = up(1);
        first.connect = Some(Duration::from_millis(84));
        first.handshake = Some(Duration::from_millis(31));
        host.finish_probe(first, REFRESH, t0);
        let mut reused = up(1);
        reused.connect = None;
        reused.handshake = None;
        host.finish_probe(reused, REFRESH, t0.later(REFRESH));
        assert_eq!(
            host.opened.connect,
            Some((Duration::from_millis(84), t0.at))
        );
        assert_eq!(
            host.opened.handshake,
            Some((Duration::from_millis(31), t0.at))
        );
    }

    #[test]
    fn a_host_down_or_unknown_is_a_concern_for_a_pinned_build() {
        let mut host = HostState::new(machine("ssh://b1"));
        assert_eq!(
            host.launch_concerns(),
            ["b1 has not answered a probe yet: it may be down"]
        );
        host.finish_probe(
            HostReport::failed(Status::Refused, Via::Ssh, "ssh: Connection refused"),
            REFRESH,
            stamp(),
        );
        assert_eq!(
            host.launch_concerns(),
            ["b1 is down: refused: ssh: Connection refused"]
        );
        host.finish_probe(up(1), REFRESH, stamp());
        assert!(host.launch_concerns().is_empty());
        // Up, but Nix could not build there: its canary says why.
        let mut failed = CanaryResult::skipped("");
        failed.status = CanaryStatus::Failed;
        failed.reason = Some(crate::canary::FailureClass::NotTrusted);
        host.finish_canary(failed, SystemTime::now());
        let concerns = host.launch_concerns();
        assert_eq!(concerns.len(), 1, "{concerns:?}");
        assert!(
            concerns[0].starts_with("b1's last canary build failed (not-trusted): "),
            "{concerns:?}"
        );
    }

    #[test]
    fn a_failing_host_backs_off_and_recovers_at_once_when_up() {
        let mut now = stamp();
        let mut host = HostState::new(machine("ssh://b1"));
        let mut waits = Vec::new();
        for _ in 0..4 {
            host.start_probe(now.at, false);
            host.finish_probe(
                HostReport::failed(Status::Refused, Via::Ssh, "Connection refused"),
                REFRESH,
                now,
            );
            let next = host.next_probe.unwrap();
            waits.push((next - now.at).as_secs());
            now = Stamp {
                at: next,
                wall: now.wall + (next - now.at),
            };
        }
        assert_eq!(waits, [5, 10, 20, 40]);
        // The operator's `r` retries at once without lengthening the wait.
        host.start_probe(now.at, true);
        host.finish_probe(
            HostReport::failed(Status::Refused, Via::Ssh, "Connection refused"),
            REFRESH,
            now,
        );
        assert_eq!(host.failures, 4);
        assert_eq!(host.next_probe, Some(now.at + Duration::from_secs(40)));
        // A failure that took the whole timeout still waits its backoff after it ends.
        let slow_end = now.later(Duration::from_secs(10));
        host.start_probe(now.at, false);
        host.finish_probe(
            HostReport::failed(Status::Timeout, Via::Ssh, "no answer"),
            REFRESH,
            slow_end,
        );
        assert_eq!(host.next_probe, Some(slow_end.at + Duration::from_secs(60)));
        let now = slow_end.later(Duration::from_secs(60));
        assert_eq!(host.retry_in(now.at), Some(Duration::ZERO));
        host.start_probe(now.at, false);
        host.finish_probe(up(2), REFRESH, now);
        assert_eq!(host.failures, 0);
        assert_eq!(host.next_probe, Some(now.at + REFRESH));
        let texts: Vec<&str> = host.events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "refused: Connection refused",
                "timeout: no answer",
                "back up after timeout"
            ]
        );
    }

    #[test]
    fn a_reopened_session_or_channel_is_an_event_and_counted() {
        let t = stamp();
        let mut host = HostState::new(machine("ssh://b1"));
        let mut first = up(1);
        first.connect = Some(Duration::from_millis(80));
        first.handshake = Some(Duration::from_millis(20));
        host.finish_probe(first, REFRESH, t);
        host.finish_probe(up(1), REFRESH, t.later(REFRESH));
        assert_eq!(host.reconnects, 0, "a warm refresh is no reconnect");
        let mut channel = up(1);
        channel.handshake = Some(Duration::from_millis(20));
        host.finish_probe(channel, REFRESH, t.later(REFRESH * 2));
        let mut session = up(1);
        session.connect = Some(Duration::from_millis(80));
        session.handshake = Some(Duration::from_millis(20));
        host.finish_probe(session, REFRESH, t.later(REFRESH * 3));
        assert_eq!(host.reconnects, 2);
        let texts: Vec<&str> = host.events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "up",
                "store channel lost; reopened",
                "SSH session lost; reconnected"
            ]
        );
    }

    #[test]
    fn history_keeps_the_last_samples_only() {
        let t = stamp();
        let mut host = HostState::new(machine("ssh://b1"));
        for i in 0..(HISTORY as u64 + 5) {
            host.finish_probe(up(i), REFRESH, t);
        }
        assert_eq!(host.history.len(), HISTORY);
        assert_eq!(
            host.history.front().unwrap().ping,
            Some(Duration::from_millis(5))
        );
        host.finish_probe(
            HostReport::failed(Status::Timeout, Via::Ssh, "no answer"),
            REFRESH,
            t,
        );
        assert_eq!(
            host.history.back(),
            Some(&Sample {
                up: false,
                ping: None
            })
        );
        assert_eq!(host.latency(), None, "a down host has no latency");
    }
}
