//! The checks the dashboard runs beside its probes, at start and again on
//! each `r`: this machine's substituters, the nix-daemon's (root's) view of
//! the hosts (as root, with a daemon), and, with `builders-use-substitutes`,
//! each builder's own substituters. A new round stops the one still running
//! (its SSH sessions closed) and a stopped round's late results are
//! dropped, so `r` pressed twice never shows the older answer last;
//! quitting stops them all before the sessions close.

use std::time::{Duration, Instant};

use rbtop::daemon_view::{DaemonSsh, LocalView, check_hosts};
use rbtop::machines::Machine;
use rbtop::probe::ProbeSettings;
use rbtop::substituters::from_builder::{self, Outcome};
use rbtop::substituters::{self, Substituter, SubstituterCheck};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::app::DaemonViewResult;

/// One result of a round.
pub enum SideResult {
    Substituters(Vec<SubstituterCheck>),
    DaemonView(DaemonViewResult),
    /// One builder's own substituters (host index).
    BuilderSubstituters(usize, Outcome),
}

/// What the checks need, fixed for the session.
pub struct SideInputs {
    pub substituters: Vec<Substituter>,
    pub machines: Vec<Machine>,
    pub local_view: LocalView,
    pub settings: ProbeSettings,
    /// This machine's Nix has `builders-use-substitutes`.
    pub builders_substitute: bool,
}

/// The round to run; [`STOPPED`] once quitting.
type Round = u64;
const STOPPED: Round = Round::MAX;

/// Rounds start at most this often (each opens a session to every SSH
/// host): an `r` sooner is kept and its round starts once the gap is over.
const MIN_ROUND_GAP: Duration = Duration::from_secs(5);

pub struct SideChecks {
    inputs: SideInputs,
    /// When the latest round started.
    started: Option<Instant>,
    /// An `r` within the gap: a round is due when it ends.
    deferred: bool,
    round: watch::Sender<Round>,
    tasks: JoinSet<()>,
    sender: mpsc::UnboundedSender<(Round, SideResult)>,
    results: mpsc::UnboundedReceiver<(Round, SideResult)>,
}

impl SideChecks {
    pub fn new(inputs: SideInputs) -> SideChecks {
        let (sender, results) = mpsc::unbounded_channel();
        SideChecks {
            inputs,
            started: None,
            deferred: false,
            round: watch::Sender::new(0),
            tasks: JoinSet::new(),
            sender,
            results,
        }
    }

    /// Start a round (the first at start, another on `r`), stopping the
    /// one before; none while quitting; within [`MIN_ROUND_GAP`] of the
    /// last, once the gap is over (see [`SideChecks::start_if_due`]).
    pub fn start(&mut self) {
        let current = *self.round.borrow();
        if current == STOPPED {
            return;
        }
        if self.started.is_some_and(|at| at.elapsed() < MIN_ROUND_GAP) {
            self.deferred = true;
            return;
        }
        self.deferred = false;
        self.started = Some(Instant::now());
        let round = current + 1;
        self.round.send_replace(round);
        // Reap the tasks already over.
        while self.tasks.try_join_next().is_some() {}
        self.spawn_substituters(round);
        if self.inputs.local_view.can_check_daemon() {
            self.spawn_daemon_view(round);
        }
        if self.inputs.builders_substitute {
            self.spawn_builder_substituters(round);
        }
    }

    /// The round an `r` within the gap asked for, once the gap is over
    /// (called on the dashboard's clock tick).
    pub fn start_if_due(&mut self) {
        if self.deferred {
            self.start();
        }
    }

    /// Resolves when `round` is no longer the one to run.
    fn superseded(&self, round: Round) -> impl Future<Output = ()> + Send + 'static {
        let mut current = self.round.subscribe();
        async move {
            let _ = current.wait_for(|now| *now != round).await;
        }
    }

    fn spawn_substituters(&mut self, round: Round) {
        if self.inputs.substituters.is_empty() {
            return;
        }
        let list = self.inputs.substituters.clone();
        let settings = self.inputs.settings.clone();
        let sender = self.sender.clone();
        let stopped = self.superseded(round);
        self.tasks.spawn(async move {
            let store_dir = rbtop::remote_builds::local_store_dir();
            let checked =
                substituters::check_all(&list, &settings, &store_dir.to_string_lossy(), stopped)
                    .await;
            if let Some(checks) = checked {
                let _ = sender.send((round, SideResult::Substituters(checks)));
            }
        });
    }

    fn spawn_daemon_view(&mut self, round: Round) {
        let machines = self.inputs.machines.clone();
        let account = self.inputs.local_view.account.clone();
        let (timeout, concurrency) = (
            self.inputs.settings.timeout,
            self.inputs.settings.concurrency,
        );
        let sender = self.sender.clone();
        let stopped = self.superseded(round);
        self.tasks.spawn(async move {
            let checked = match DaemonSsh::detect(&account) {
                Ok(ssh) => {
                    match check_hosts(&machines, &ssh, timeout, concurrency, stopped).await {
                        Some(hosts) => Ok((ssh.source, hosts)),
                        None => return,
                    }
                }
                Err(e) => Err(e),
            };
            let _ = sender.send((round, SideResult::DaemonView(checked)));
        });
    }

    /// Every SSH host is asked: at start none is known up yet, and one that
    /// is down says why it was not checked.
    fn spawn_builder_substituters(&mut self, round: Round) {
        let machines = self.inputs.machines.clone();
        let settings = self.inputs.settings.clone();
        let sender = self.sender.clone();
        let stopped = self.superseded(round);
        self.tasks.spawn(async move {
            let wanted: Vec<bool> = machines.iter().map(|m| m.store.is_ssh()).collect();
            from_builder::check_on_each(&machines, &wanted, &settings, stopped, |host, outcome| {
                let _ = sender.send((
                    round,
                    SideResult::BuilderSubstituters(host, outcome.clone()),
                ));
            })
            .await;
        });
    }

    /// The next result of the latest round; pending while none comes.
    pub async fn next(&mut self) -> Option<SideResult> {
        loop {
            let (round, result) = self.results.recv().await?;
            if round == *self.round.borrow() {
                return Some(result);
            }
        }
    }

    /// Stop every check and wait until each has ended (sessions closed).
    pub async fn shutdown(&mut self) {
        self.round.send_replace(STOPPED);
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rbtop::ssh::{HostKeyPolicy, SshSettings};

    use super::*;

    fn side_checks(substituters: Vec<Substituter>) -> SideChecks {
        let mut local_view = LocalView::detect();
        local_view.daemon_socket = None;
        SideChecks::new(SideInputs {
            substituters,
            machines: Vec::new(),
            local_view,
            settings: ProbeSettings::new(
                Duration::from_secs(600),
                4,
                SshSettings::new(Vec::new(), HostKeyPolicy::default()),
            ),
            builders_substitute: false,
        })
    }

    fn check(uri: &str) -> SubstituterCheck {
        SubstituterCheck {
            uri: uri.into(),
            status: "up",
            reason: None,
            elapsed: Duration::ZERO,
            priority: None,
        }
    }

    #[tokio::test]
    async fn a_stopped_round_s_late_answer_is_dropped() {
        let mut checks = side_checks(Vec::new());
        checks.round.send_replace(2);
        let _ = checks
            .sender
            .send((1, SideResult::Substituters(vec![check("http://old")])));
        let _ = checks
            .sender
            .send((2, SideResult::Substituters(vec![check("http://new")])));
        match checks.next().await {
            Some(SideResult::Substituters(got)) => assert_eq!(got[0].uri, "http://new"),
            _ => panic!("no answer of round 2"),
        }
    }

    /// A cache that accepts and never answers holds its check for the
    /// whole (600 s) timeout: a new round (`r`, once the gap has passed)
    /// ends the old one's at once, and quitting ends the new one's.
    #[tokio::test]
    async fn r_stops_the_round_still_running_and_quitting_stops_every_round() {
        // Never accepted: the kernel completes the connection, nobody answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let mut checks = side_checks(vec![Substituter {
            uri,
            location: None,
        }]);
        checks.start();
        checks.start();
        assert_eq!(
            checks.tasks.len(),
            1,
            "a second r at once starts no round yet"
        );
        checks.start_if_due();
        assert_eq!(checks.tasks.len(), 1, "nor within the gap");
        // As if the first round started long enough ago: the kept r's round.
        checks.started = Some(Instant::now() - MIN_ROUND_GAP);
        checks.start_if_due();
        assert_eq!(checks.tasks.len(), 2);
        checks.start_if_due();
        assert_eq!(checks.tasks.len(), 2, "one round per r");
        let first_ended = tokio::time::timeout(Duration::from_secs(60), checks.tasks.join_next())
            .await
            .expect("the first round still runs after the second started");
        assert!(first_ended.is_some());
        tokio::time::timeout(Duration::from_secs(60), checks.shutdown())
            .await
            .expect("quitting did not stop the second round");
        assert!(checks.tasks.is_empty());
        drop(listener);
    }
}
