//! Canaries on many hosts at once: at most `concurrency` builds running,
//! each with its own deadline; a canary past it is cancelled the way
//! `rbtop build` cancels (Nix interrupted, its builder checked), and the
//! run ends only when every one has finished.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use super::classify::{FailureClass, classify};
use super::request::{self, launch_request};
use super::stages::StageClock;
use super::{CanaryResult, CanaryStatus};
use crate::jobs::job::{Job, JobEnd, JobId};
use crate::jobs::runner::{JobSettings, Supervisor, lock};
use crate::machines::Machine;
use crate::nix_text::strip_ansi;

#[derive(Clone, Debug)]
pub struct CanarySettings {
    /// Per-host deadline.
    pub timeout: Duration,
    pub concurrency: usize,
    pub jobs: JobSettings,
    /// Builds go through the local nix-daemon (when its socket exists);
    /// `jobs.env` says so to Nix.
    pub via_daemon: bool,
}

impl CanarySettings {
    pub fn new(timeout: Duration, concurrency: usize, mut jobs: JobSettings) -> CanarySettings {
        // root's own Nix would build in-process: the daemon is where a
        // user's build goes, with root's SSH view.
        let via_daemon = request::daemon_socket().is_some();
        if via_daemon {
            let (name, value) = request::VIA_DAEMON_ENV;
            jobs.env.push((name.into(), value.into()));
        }
        CanarySettings {
            timeout,
            concurrency: concurrency.max(1),
            jobs,
            via_daemon,
        }
    }
}

/// What a `not-pinned` message starts with.
const PIN_IGNORED: &str =
    "the local nix-daemon ignored --builders (this user is not trusted there)";

struct Running {
    index: usize,
    launched: Instant,
    clock: StageClock,
    timed_out: bool,
}

/// Run a canary on every machine whose `eligible` entry is `None`; the
/// others are skipped with that reason. `stop` ends the run early: running
/// canaries are cancelled (and waited for), the rest skipped. Results are
/// in machine order.
pub async fn run_fleet(
    machines: &[Machine],
    eligible: &[Option<String>],
    settings: &CanarySettings,
    stop: impl Future<Output = ()>,
) -> Vec<CanaryResult> {
    run_fleet_reporting(machines, eligible, settings, stop, |_, _| {}).await
}

/// [`run_fleet`], telling `report` each tried canary's result (by machine
/// index) as soon as it is known, so a dashboard shows each host when its
/// own canary ends rather than when the slowest does.
pub async fn run_fleet_reporting(
    machines: &[Machine],
    eligible: &[Option<String>],
    settings: &CanarySettings,
    stop: impl Future<Output = ()>,
    mut report: impl FnMut(usize, &CanaryResult),
) -> Vec<CanaryResult> {
    let mut results: Vec<Option<CanaryResult>> = eligible
        .iter()
        .map(|skip| skip.as_ref().map(CanaryResult::skipped))
        .collect();
    let mut queue: std::collections::VecDeque<usize> = (0..machines.len())
        .filter(|&i| results[i].is_none())
        .collect();
    let (mut supervisor, mut changed) = Supervisor::new(settings.jobs.clone(), machines.to_vec());
    let mut running: HashMap<JobId, Running> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tokio::pin!(stop);
    let mut stopped = false;
    loop {
        while !stopped && running.len() < settings.concurrency {
            let Some(index) = queue.pop_front() else {
                break;
            };
            let machine = &machines[index];
            let request = launch_request(machine, &request::nonce());
            tracing::info!(host = machine.uri(), "canary launched");
            match supervisor.launch(request) {
                Ok(id) => {
                    running.insert(
                        id,
                        Running {
                            index,
                            launched: Instant::now(),
                            clock: StageClock::default(),
                            timed_out: false,
                        },
                    );
                }
                Err(e) => {
                    let result = failure(FailureClass::RemoteError, e, None);
                    report(index, &result);
                    results[index] = Some(result);
                }
            }
        }
        if running.is_empty() && (stopped || queue.is_empty()) {
            break;
        }
        tokio::select! {
            Some(id) = changed.recv() => {
                let Some(state) = running.get_mut(&id) else { continue };
                let Some(job) = supervisor.job(id) else { continue };
                let job = lock(job);
                let now = Instant::now();
                if let Some(drv) = job.progress.derivations().first() {
                    state.clock.observe(drv.phase, now);
                    if let Some(at) = drv.connecting_since {
                        state.clock.connecting_at(at);
                    }
                }
                if job.is_finished() {
                    let result = outcome(&job, &machines[state.index], state, settings.timeout);
                    tracing::info!(host = machines[state.index].uri(), ?result.status, reason = ?result.reason, "canary finished");
                    report(state.index, &result);
                    results[state.index] = Some(result);
                    drop(job);
                    running.remove(&id);
                }
            }
            _ = tick.tick() => {
                for (id, state) in running.iter_mut() {
                    if !state.timed_out && state.launched.elapsed() >= settings.timeout {
                        state.timed_out = true;
                        tracing::warn!(host = machines[state.index].uri(), "canary past its deadline: cancelling");
                        supervisor.cancel(*id);
                    }
                }
            }
            _ = &mut stop, if !stopped => {
                stopped = true;
                supervisor.cancel_all();
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| CanaryResult::skipped("interrupted before its turn")))
        .collect()
}

fn failure(reason: FailureClass, message: String, job: Option<&Job>) -> CanaryResult {
    CanaryResult {
        status: CanaryStatus::Failed,
        reason: Some(reason),
        message: Some(message),
        upload: None,
        build: None,
        download: None,
        total: job.and_then(|j| j.ended.map(|e| e.saturating_duration_since(j.started))),
        output: None,
        built_on: None,
        log_file: job.and_then(|j| j.log_file.clone()),
    }
}

/// Everything Nix and rbtop said about the job, as plain text.
fn plain_lines(job: &Job) -> Vec<String> {
    let mut lines: Vec<String> = job
        .progress
        .errors()
        .iter()
        .map(|e| strip_ansi(e))
        .collect();
    lines.extend(job.log.entries().map(|entry| strip_ansi(&entry.text)));
    lines
}

fn outcome(job: &Job, machine: &Machine, state: &Running, timeout: Duration) -> CanaryResult {
    let drv = job.progress.derivations().first();
    let built_on = drv.and_then(|d| d.machine.clone());
    let times = state.clock.times(job.ended);
    let lines = plain_lines(job);
    let mut result = match job.ended() {
        Some(JobEnd::Succeeded) if built_on.as_deref() == Some(machine.uri()) => CanaryResult {
            status: CanaryStatus::Ok,
            reason: None,
            message: job
                .outputs
                .first()
                .map(|out| format!("built {out} on {}", machine.uri())),
            upload: times.upload,
            build: times.build,
            download: times.download,
            total: job.ended.map(|e| e.saturating_duration_since(job.started)),
            output: job.outputs.first().cloned(),
            built_on: built_on.clone(),
            log_file: job.log_file.clone(),
        },
        Some(JobEnd::Succeeded) => {
            let (class, line) = classify(&lines);
            let whence = built_on.as_deref().unwrap_or("this machine");
            let message = if class == FailureClass::NotPinned {
                format!("{PIN_IGNORED}: {line}; the canary built on {whence}")
            } else {
                format!(
                    "the canary built on {whence}, not on {} as pinned",
                    machine.uri()
                )
            };
            let mut r = failure(FailureClass::NotPinned, message, Some(job));
            r.output = job.outputs.first().cloned();
            r
        }
        _ if state.timed_out => {
            let cleanup: Vec<&str> = job
                .notes
                .iter()
                .filter(|n| n.starts_with("rbtop: "))
                .map(String::as_str)
                .collect();
            let mut message = format!("no result within {}s; cancelled", timeout.as_secs_f64());
            if !cleanup.is_empty() {
                message.push_str(&format!(" ({})", cleanup.join("; ")));
            }
            failure(FailureClass::Timeout, message, Some(job))
        }
        _ => {
            let (class, mut message) = classify(&lines);
            if class == FailureClass::NotPinned {
                message = format!("{PIN_IGNORED}: {message}");
            }
            failure(class, message, Some(job))
        }
    };
    if result.status == CanaryStatus::Failed {
        result.upload = times.upload;
        result.build = times.build;
        result.built_on = built_on;
    }
    result
}
