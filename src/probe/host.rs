//! Probing one machine, keeping its SSH session and channels between probes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::Channel;
use super::classify;
use super::facts::Facts;
use super::first::{FactsFirst, ReportSlot};
use super::fleet::ProbeSettings;
use super::links::{self, FactsError, FactsLink, StoreLink, StoreProtocol};
use super::report::{Failure, HostReport, ProbeCost, Status, Via};
use super::route::Route;
use super::trust;
use crate::machines::Machine;
use crate::ssh::session::PendingDir;
use crate::ssh::{ConnectError, HostSession};

/// Time left for the facts after the store answered: they never make a host
/// late, they are just missing.
const FACTS_MARGIN: Duration = Duration::from_millis(50);

pub(super) struct HostProber {
    route: Route,
    session: Option<HostSession>,
    /// The control dir of a connection in progress, so a deadline can still read ssh's log.
    pending: Option<PendingDir>,
    store: Option<StoreLink>,
    facts: Option<FactsLink>,
    /// What the probe is doing, for the timeout message.
    phase: &'static str,
    /// The remote sessions and serial round trips of the last probe.
    last_cost: ProbeCost,
    /// Over `ssh://`, whether the builder's daemon trusts the SSH user, asked
    /// in the cold probe of each SSH connection (`None` until asked;
    /// `Some(None)`: unknown).
    ssh_trust: Option<Option<bool>>,
}

impl HostProber {
    pub(super) fn new(machine: &Machine) -> HostProber {
        HostProber {
            route: Route::of(machine),
            session: None,
            pending: None,
            store: None,
            facts: None,
            phase: "starting",
            last_cost: ProbeCost::default(),
            ssh_trust: None,
        }
    }

    /// One probe under `limit`. Reuses the session and channels of the last
    /// probe when they are still alive; reopens what died.
    pub(super) async fn probe(&mut self, settings: &ProbeSettings) -> HostReport {
        let limit = settings.timeout;
        self.last_cost = ProbeCost::default();
        let deadline = tokio::time::Instant::now() + limit;
        let probe = self.probe_until(deadline, settings);
        match tokio::time::timeout_at(deadline, probe).await {
            Ok(report) => report,
            Err(_elapsed) => {
                let log = match (&self.pending, &self.session) {
                    (Some(pending), _) => pending.log(),
                    (None, Some(session)) => session.log(),
                    _ => String::new(),
                };
                let failure = classify::timed_out(limit, self.phase, &log);
                // Whatever hung is not worth keeping.
                self.pending = None;
                self.store = None;
                self.facts = None;
                self.ssh_trust = None;
                if let Some(session) = self.session.take() {
                    session.close().await;
                }
                report_failure(failure, self.via())
            }
        }
    }

    /// Close the channels (their remote processes see EOF and exit) and the master.
    pub(super) async fn close(&mut self) {
        self.store = None;
        self.facts = None;
        self.pending = None;
        self.ssh_trust = None;
        if let Some(session) = self.session.take() {
            session.close().await;
        }
    }

    /// What the last probe cost the host: sessions opened and serial round trips.
    pub(super) fn last_cost(&self) -> ProbeCost {
        self.last_cost
    }

    pub(super) fn via(&self) -> Via {
        match self.route {
            Route::Ssh { .. } => Via::Ssh,
            Route::LocalProcess { .. } => Via::LocalProcess,
            Route::Socket { .. } => Via::DaemonSocket,
            Route::Unsupported { .. } => Via::Unsupported,
        }
    }

    async fn probe_until(
        &mut self,
        deadline: tokio::time::Instant,
        settings: &ProbeSettings,
    ) -> HostReport {
        let (ssh, list_builds) = (&settings.ssh, settings.list_builds);
        let via = self.via();
        let mut connect = None;
        match self.route.clone() {
            Route::Unsupported { status, reason } => {
                return report_failure(Failure::new(status, reason), via);
            }
            Route::Ssh { target, .. } => {
                self.phase = "checking the kept SSH session";
                if let Some(session) = &self.session
                    && !session.is_alive().await
                {
                    tracing::info!(host = %target.host, "ssh master gone; reconnecting");
                    self.close().await;
                }
                if self.session.is_none() {
                    self.phase = "connecting over SSH";
                    self.pending = Some(match PendingDir::create(ssh) {
                        Ok(dir) => dir,
                        Err(e) => return report_failure(connect_failure(e), via),
                    });
                    let session = match HostSession::connect(&target, ssh, &mut self.pending).await
                    {
                        Ok(session) => session,
                        Err(e) => {
                            self.pending = None;
                            return report_failure(connect_failure(e), via);
                        }
                    };
                    connect = Some(session.connect_time);
                    self.session = Some(session);
                }
            }
            Route::LocalProcess { .. } | Route::Socket { .. } => {}
        }

        self.phase = "waiting for the store's handshake";
        let session = self.session.as_ref().map(|s| Arc::clone(s.session()));
        if let (Some(session), None, None) = (&session, &self.store, &self.facts) {
            // Cold over SSH: the store, the first facts and, for ssh://, the
            // daemon's trust share one session.
            let daemon = match (&self.route, settings.ask_trust) {
                (
                    Route::Ssh {
                        store_command,
                        protocol: StoreProtocol::Serve,
                        ..
                    },
                    true,
                ) => trust::daemon_command(store_command),
                _ => None,
            };
            let cold = cold_round(
                &self.route,
                session,
                list_builds,
                daemon.as_deref(),
                &mut self.last_cost,
            )
            .await;
            let cold = cold.map(|(round, facts, trusted)| {
                if daemon.is_some() {
                    self.ssh_trust = Some(trusted);
                }
                (round, facts)
            });
            let (round, mut facts) = match cold {
                Ok(found) => found,
                Err(failure) => return report_failure(failure, via),
            };
            let building = facts
                .as_ref()
                .and_then(|f| f.processes.as_ref())
                .is_some_and(|l| l.as_ref().is_ok_and(|l| !l.detail_pids().is_empty()));
            if building {
                // Builds need a second question (their details), which only
                // the facts loop can take: its session, now, on busy hosts only.
                self.phase = "waiting for the host's facts";
                let until = deadline - FACTS_MARGIN;
                match facts_round(&self.route, Some(session), None, until, true).await {
                    Ok((link, loop_facts)) => {
                        let added = link.last_cost();
                        self.last_cost.sessions += added.sessions;
                        self.last_cost.round_trips += added.round_trips;
                        self.facts = Some(link);
                        facts = Some(loop_facts);
                    }
                    Err(why) => tracing::warn!(route = ?self.route, "no build details: {why}"),
                }
            }
            return self.up_report(via, connect.or(round.socket_connect), round, facts);
        }
        // Both at once; a failed store ends the probe without waiting for the facts.
        // The futures borrow their own copy: `self` is reported on after them.
        let route = self.route.clone();
        let store_future = store_round(&route, session.as_ref(), self.store.take());
        let facts_future = facts_round(
            &route,
            session.as_ref(),
            self.facts.take(),
            deadline - FACTS_MARGIN,
            list_builds,
        );
        tokio::pin!(store_future, facts_future);
        let mut early_facts = None;
        let store = loop {
            tokio::select! {
                store = &mut store_future => break store,
                facts = &mut facts_future, if early_facts.is_none() => early_facts = Some(facts),
            }
        };
        let store = match store {
            Ok(round) => round,
            Err(failure) => return report_failure(failure, via),
        };
        // The two ran side by side: the longer of the two is the serial count.
        let facts_cost = match &early_facts {
            Some(Ok((link, _))) => link.last_cost(),
            _ => ProbeCost::default(),
        };
        self.phase = "waiting for the host's facts";
        let facts = match early_facts {
            Some(facts) => facts,
            None => facts_future.await,
        };
        let facts = match facts {
            Ok((link, facts)) => {
                self.last_cost = store.cost.alongside(link.last_cost());
                self.facts = Some(link);
                Some(facts)
            }
            Err(why) => {
                self.last_cost = store.cost.alongside(facts_cost);
                tracing::warn!(route = ?route, "no facts: {why}");
                None
            }
        };
        self.up_report(via, connect.or(store.socket_connect), store, facts)
    }

    /// The report of a host whose store answered; keeps its store link.
    fn up_report(
        &mut self,
        via: Via,
        connect: Option<Duration>,
        store: StoreRound,
        facts: Option<Facts>,
    ) -> HostReport {
        let hello = store.link.hello.clone();
        self.store = Some(store.link);
        HostReport {
            status: Status::Up,
            reason: None,
            via,
            connect,
            handshake: store.handshake,
            ping: Some(store.ping),
            protocol_version: Some(hello.version.to_string()),
            nix_version: hello
                .nix_version
                .or_else(|| facts.as_ref().and_then(|f| f.nix_version.clone())),
            trusted: hello.trusted.or(self.ssh_trust.flatten()),
            facts,
            stderr: None,
        }
    }
}

/// The store's part of a probe.
struct StoreRound {
    link: StoreLink,
    /// Channel start and hello exchange; `None` when an open channel was reused.
    handshake: Option<Duration>,
    ping: Duration,
    /// Connecting to the daemon socket.
    socket_connect: Option<Duration>,
    cost: ProbeCost,
}

/// The cold probe over SSH in one session ([`Route::first_command`]): the
/// facts script prints one report and execs the store command on the same
/// channel. The handshake is written as soon as the channel is open, so it
/// waits in the pipe while the host's login shell starts, and the report
/// comes back ahead of the store's hello: no round trip of its own.
async fn cold_round(
    route: &Route,
    session: &Arc<openssh::Session>,
    list_builds: bool,
    daemon: Option<&[String]>,
    cost: &mut ProbeCost,
) -> Result<(StoreRound, Option<Facts>, Option<bool>), Failure> {
    let Route::Ssh {
        store_command,
        protocol,
        ..
    } = route
    else {
        unreachable!("a session exists only for SSH routes");
    };
    let nonce = links::nonce();
    let command = route
        .first_command(&nonce, list_builds, daemon)
        .expect("an SSH route");
    let started = Instant::now();
    let mut channel = Channel::remote(session, &command).await.map_err(|e| {
        Failure::new(
            Status::Error,
            format!("cannot start '{}' over ssh: {e}", store_command.join(" ")),
        )
    })?;
    cost.sessions += 1;
    cost.round_trips += 1;
    // Failures are worded and classified by the store command, as Nix runs it.
    channel.command = store_command.join(" ");
    let report = ReportSlot::default();
    let reader = std::mem::replace(&mut channel.reader, Box::new(tokio::io::empty()));
    channel.reader = Box::new(FactsFirst::new(reader, &nonce, Arc::clone(&report)));
    let (link, _) = StoreLink::open(channel, *protocol).await?;
    cost.round_trips += links::handshake_round_trips(*protocol);
    let handshake = started.elapsed();
    let (link, ping) = link.ping().await?;
    cost.round_trips += 1;
    let text = report.lock().unwrap_or_else(|e| e.into_inner()).take();
    let trusted = match (&text, daemon) {
        (Some(text), Some(_)) => trust::from_report(text).await,
        _ => None,
    };
    let facts = text.map(|text| Facts::parse_with(&text, &nonce));
    if facts.is_none() {
        tracing::warn!(route = ?route, "no facts in the cold probe's session");
    }
    Ok((
        StoreRound {
            link,
            handshake: Some(handshake),
            ping,
            socket_connect: None,
            cost: *cost,
        },
        facts,
        trusted,
    ))
}

/// Ping the open channel; if there is none or it died, open one and shake hands.
async fn store_round(
    route: &Route,
    session: Option<&Arc<openssh::Session>>,
    existing: Option<StoreLink>,
) -> Result<StoreRound, Failure> {
    if let Some(link) = existing {
        match link.ping().await {
            Ok((link, ping)) => {
                return Ok(StoreRound {
                    link,
                    handshake: None,
                    ping,
                    socket_connect: None,
                    cost: ProbeCost {
                        sessions: 0,
                        round_trips: 1,
                    },
                });
            }
            Err(failure) => tracing::info!("store channel lost ({failure}); reopening"),
        }
    }
    let started = Instant::now();
    let (channel, protocol, socket_connect) = open_store_channel(route, session).await?;
    // Over SSH, opening the channel waits for the host; locally it does not.
    let opened = u32::from(session.is_some());
    let cost = ProbeCost {
        sessions: opened,
        round_trips: opened + links::handshake_round_trips(protocol) + 1,
    };
    if socket_connect.is_some() {
        // The socket's connect time is reported apart from the handshake.
        let (link, handshake) = StoreLink::open(channel, protocol).await?;
        let (link, ping) = link.ping().await?;
        return Ok(StoreRound {
            link,
            handshake: Some(handshake),
            ping,
            socket_connect,
            cost,
        });
    }
    let (link, _) = StoreLink::open(channel, protocol).await?;
    let handshake = started.elapsed();
    let (link, ping) = link.ping().await?;
    Ok(StoreRound {
        link,
        handshake: Some(handshake),
        ping,
        socket_connect: None,
        cost,
    })
}

async fn open_store_channel(
    route: &Route,
    session: Option<&Arc<openssh::Session>>,
) -> Result<(Channel, StoreProtocol, Option<Duration>), Failure> {
    match route {
        Route::Ssh {
            store_command,
            protocol,
            ..
        } => {
            let session = session.expect("connected before opening channels");
            let channel = Channel::remote(session, store_command).await.map_err(|e| {
                Failure::new(
                    Status::Error,
                    format!("cannot start '{}' over ssh: {e}", store_command.join(" ")),
                )
            })?;
            Ok((channel, *protocol, None))
        }
        Route::LocalProcess {
            store_command,
            protocol,
        } => {
            let channel = Channel::local(store_command).map_err(|e| {
                let status = if e.kind() == std::io::ErrorKind::NotFound {
                    Status::Nonix
                } else {
                    Status::Error
                };
                Failure::new(
                    status,
                    format!("cannot run local '{}': {e}", store_command[0]),
                )
            })?;
            Ok((channel, *protocol, None))
        }
        Route::Socket { path } => {
            let started = Instant::now();
            let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                let status = match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                        Status::Refused
                    }
                    std::io::ErrorKind::PermissionDenied => Status::Auth,
                    _ => Status::Error,
                };
                Failure::new(
                    status,
                    format!(
                        "cannot connect to the daemon socket {}: {e}",
                        path.display()
                    ),
                )
            })?;
            let connect = started.elapsed();
            let channel = Channel::socket(stream, format!("daemon socket {}", path.display()));
            Ok((channel, StoreProtocol::Worker, Some(connect)))
        }
        Route::Unsupported { status, reason } => Err(Failure::new(*status, reason.clone())),
    }
}

/// Ask the facts loop for a report, starting the loop if needed. Never past `until`.
async fn facts_round(
    route: &Route,
    session: Option<&Arc<openssh::Session>>,
    existing: Option<FactsLink>,
    until: tokio::time::Instant,
    list_builds: bool,
) -> Result<(FactsLink, Facts), FactsError> {
    let round = async {
        if let Some(link) = existing {
            let mut link = link.listing_builds(list_builds);
            match link.read().await {
                Ok(facts) => return Ok((link, facts)),
                Err(why) => tracing::info!("facts loop lost ({why}); restarting"),
            }
        }
        let command = route.facts_command();
        let channel = match (route, session) {
            (Route::Ssh { .. }, Some(session)) => Channel::remote(session, &command)
                .await
                .map_err(FactsError::StartOverSsh)?,
            (Route::LocalProcess { .. } | Route::Socket { .. }, _) => {
                Channel::local(&command).map_err(FactsError::StartHere)?
            }
            _ => return Err(FactsError::NoWay),
        };
        let mut link = FactsLink::new(channel).listing_builds(list_builds);
        if session.is_some() {
            link = link.opened_over_ssh();
        }
        let facts = link.read().await?;
        Ok((link, facts))
    };
    tokio::time::timeout_at(until, round)
        .await
        .unwrap_or(Err(FactsError::TooLate))
}

fn connect_failure(error: ConnectError) -> Failure {
    match error {
        ConnectError::Ssh { log, pinned } => classify::ssh_failure(&log, pinned),
        ConnectError::Local(reason) => Failure::new(Status::Error, reason),
    }
}

fn report_failure(failure: Failure, via: Via) -> HostReport {
    HostReport {
        stderr: failure.stderr,
        ..HostReport::failed(failure.status, via, failure.reason)
    }
}
