//! Probing every machine at once: one task per host under a concurrency
//! bound, each under its own deadline, results streamed as they complete.
//! A hung host costs its own timeout and never delays another's result.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::{Mutex, Semaphore, mpsc};

use super::host::HostProber;
use super::report::{HostReport, ProbeCost, Status};
use crate::machines::Machine;
use crate::ssh::SshSettings;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CONCURRENCY: usize = 64;

#[derive(Clone, Debug)]
pub struct ProbeSettings {
    /// Per host, for the whole probe: connection, handshake, facts.
    pub timeout: Duration,
    /// Hosts probed at the same time.
    pub concurrency: usize,
    pub ssh: SshSettings,
    /// Whether each probe also lists the builds running on the host (one
    /// `grep` there per probe).
    pub list_builds: bool,
    /// Whether a cold probe of an `ssh://` host also asks the builder's
    /// daemon if it trusts the SSH user (`nix-daemon --stdio`, run by the
    /// facts script in the same session; see `probe::trust`).
    pub ask_trust: bool,
}

impl ProbeSettings {
    pub fn new(timeout: Duration, concurrency: usize, mut ssh: SshSettings) -> ProbeSettings {
        // ssh gives up a second before rbtop does, so its own words
        // ("Connection timed out during banner exchange") make the reason.
        ssh.connect_timeout = timeout
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_secs(1));
        ProbeSettings {
            timeout,
            concurrency: concurrency.max(1),
            ssh,
            list_builds: true,
            ask_trust: true,
        }
    }
}

/// One finished probe.
#[derive(Clone, Debug)]
pub struct ProbeEvent {
    /// Index of the machine in the list given to [`Fleet::new`].
    pub index: usize,
    pub report: HostReport,
    /// Wall time of this probe, queueing for a permit excluded.
    pub elapsed: Duration,
}

pub struct Fleet {
    hosts: Vec<Arc<Mutex<HostProber>>>,
    settings: Arc<ProbeSettings>,
    permits: Arc<Semaphore>,
    /// Probes in flight, so that closing can cut them short.
    in_flight: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Fleet {
    pub fn new(machines: &[Machine], settings: ProbeSettings) -> Fleet {
        Fleet {
            hosts: machines
                .iter()
                .map(|m| Arc::new(Mutex::new(HostProber::new(m))))
                .collect(),
            permits: Arc::new(Semaphore::new(settings.concurrency)),
            settings: Arc::new(settings),
            in_flight: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// What host `index`'s last probe cost it (sessions, serial round
    /// trips); `None` while a probe of it runs or for no such host.
    pub fn last_cost(&self, index: usize) -> Option<ProbeCost> {
        Some(self.hosts.get(index)?.try_lock().ok()?.last_cost())
    }

    pub fn settings(&self) -> &ProbeSettings {
        &self.settings
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Probe every host now. Each report arrives on the channel as soon as it
    /// is ready; the channel closes after the last one. A host still busy
    /// with an earlier probe is probed when that one ends.
    pub fn probe_all(&self) -> mpsc::UnboundedReceiver<ProbeEvent> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        self.probe_hosts(&all, &sender);
        receiver
    }

    /// Probe the hosts at `indices` (positions in the list given to
    /// [`Fleet::new`]; others are ignored), each report sent on `sender` as
    /// soon as it is ready. For a long-lived consumer such as the dashboard,
    /// which keeps one channel for every refresh.
    pub fn probe_hosts(&self, indices: &[usize], sender: &mpsc::UnboundedSender<ProbeEvent>) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.retain(|task| !task.is_finished());
        for &index in indices {
            let Some(host) = self.hosts.get(index) else {
                continue;
            };
            let host = Arc::clone(host);
            let settings = Arc::clone(&self.settings);
            let permits = Arc::clone(&self.permits);
            let sender = sender.clone();
            let task = tokio::spawn(async move {
                let mut prober = host.lock().await;
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                let started = Instant::now();
                // A bug in one probe must not leave its host waiting forever
                // (the dashboard would never probe it again): it becomes an error.
                let probe = AssertUnwindSafe(prober.probe(&settings));
                let report = match probe.catch_unwind().await {
                    Ok(report) => report,
                    Err(panic) => {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        HostReport::failed(
                            Status::Error,
                            prober.via(),
                            format!("internal error in rbtop while probing ({what}); see the log"),
                        )
                    }
                };
                let event = ProbeEvent {
                    index,
                    report,
                    elapsed: started.elapsed(),
                };
                tracing::debug!(index, status = %event.report.status, elapsed = ?event.elapsed, "probed");
                // The receiver may be gone (rbtop quitting); that is fine.
                let _ = sender.send(event);
            });
            in_flight.push(task.abort_handle());
        }
    }

    /// Close every session and channel, all hosts at once. Probes still in
    /// flight are cancelled first: dropping them kills an ssh that is still
    /// connecting and shuts down a master that is up.
    pub async fn close(&self) {
        let cancelled: Vec<_> =
            std::mem::take(&mut *self.in_flight.lock().unwrap_or_else(|e| e.into_inner()));
        for task in &cancelled {
            task.abort();
        }
        let mut closing = tokio::task::JoinSet::new();
        for host in &self.hosts {
            let host = Arc::clone(host);
            closing.spawn(async move { host.lock().await.close().await });
        }
        while closing.join_next().await.is_some() {}
    }
}

/// Open files each kept host costs rbtop: two channels (store, facts), each
/// with stdin, stdout, stderr and a connection to the master's mux socket.
pub(super) const FILES_PER_HOST: u64 = 8;

/// Raise the soft limit on open files to the hard limit, as a fleet of
/// hosts with kept sessions needs more than the usual 1024. Returns a
/// warning when even the hard limit is too low for `hosts`.
pub fn raise_open_file_limit(hosts: usize) -> Option<String> {
    let needed = hosts as u64 * FILES_PER_HOST + 64;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit >= needed => {
            tracing::debug!(limit, needed, "open file limit");
            None
        }
        Ok(limit) => Some(format!(
            "{hosts} builders need about {needed} open files, but the limit is {limit}: \
             some probes will fail with 'Too many open files' (raise the hard limit, \
             e.g. LimitNOFILE= or /etc/security/limits.conf)"
        )),
        Err(e) => Some(format!("cannot raise the open file limit: {e}")),
    }
}

/// Probe every machine once, as a headless command does; `progress(done, total)` is called as reports arrive.
/// Returns the reports in machines order, or what `interrupt` gave if it
/// fired first. Sessions are closed either way.
/// One probe finished: which host (its index), and how many are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub index: usize,
    pub done: usize,
    pub total: usize,
}

pub async fn probe_once<I>(
    machines: &[Machine],
    settings: ProbeSettings,
    mut progress: impl FnMut(Progress),
    interrupt: impl std::future::Future<Output = I>,
) -> Result<Vec<HostReport>, I> {
    let fleet = Fleet::new(machines, settings);
    let mut events = fleet.probe_all();
    let mut reports: Vec<Option<HostReport>> = vec![None; machines.len()];
    let collect = async {
        let mut done = 0;
        while let Some(event) = events.recv().await {
            reports[event.index] = Some(event.report);
            done += 1;
            progress(Progress {
                index: event.index,
                done,
                total: machines.len(),
            });
        }
    };
    let interrupted = tokio::select! {
        () = collect => None,
        signal = interrupt => Some(signal),
    };
    fleet.close().await;
    match interrupted {
        Some(signal) => Err(signal),
        // A probe task that panicked sent nothing: say so for that host alone.
        None => Ok(reports
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    HostReport::failed(
                        Status::Error,
                        super::report::Via::Unsupported,
                        "the probe task failed (see the log)",
                    )
                })
            })
            .collect()),
    }
}
