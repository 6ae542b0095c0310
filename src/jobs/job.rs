//! One build job as a state machine: events in, effects out, no processes,
//! no clock of its own. The supervisor ([`super::runner`]) carries the
//! effects out (signals, timers, checks on builders) and feeds back what
//! happened.
//!
//! Cancelling escalates as Nix's own interrupt handling expects: SIGINT to
//! the job's process group (Nix then stops its build hook, whose ssh
//! hang-up makes the builder stop), SIGTERM after a grace period, SIGKILL
//! after another, then every process the job had started. Once the job has
//! exited, the builders that had one of its derivations running are asked
//! whether anything of it is still there.

use std::time::{Duration, Instant};

use super::launch::LaunchRequest;
use super::log::LogBuffer;
use super::progress::{BuildProgress, LineKind, LogLine, Phase, drv_name};
use super::record::parse_line;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The steps of a cancel, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Escalation {
    Interrupt,
    Terminate,
    Kill,
}

impl Escalation {
    pub fn signal(self) -> Signal {
        match self {
            Escalation::Interrupt => Signal::Interrupt,
            Escalation::Terminate => Signal::Terminate,
            Escalation::Kill => Signal::Kill,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    Kill,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Graces {
    /// SIGINT → SIGTERM.
    pub interrupt: Duration,
    /// SIGTERM → SIGKILL.
    pub terminate: Duration,
}

impl Default for Graces {
    fn default() -> Self {
        Graces {
            interrupt: Duration::from_secs(5),
            terminate: Duration::from_secs(3),
        }
    }
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEnd {
    Succeeded,
    /// Nix's exit status (128 + signal when killed) and its last error.
    Failed {
        exit_code: i32,
        error: Option<String>,
    },
    Cancelled,
    /// The command could not be started.
    LaunchFailed(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum State {
    Starting,
    Running {
        pid: u32,
    },
    Cancelling {
        pid: u32,
        stage: Escalation,
    },
    /// Exited after a cancel; its builders are being checked.
    CheckingBuilders,
    /// A log of a build rbtop did not start, being read (`rbtop log`, the
    /// dashboard's `--open-log`): no process, nothing to cancel.
    Reading,
    Finished(JobEnd),
}

/// A derivation that was running on a builder when the job was cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDerivation {
    pub machine: String,
    pub drv: String,
}

/// What a builder check found for one derivation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Nothing of the build was running on the builder.
    Clean,
    /// Processes of the build were still running; rbtop killed them.
    Killed { processes: Vec<String> },
    /// The check could not tell (no connection, not permitted).
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanupReport {
    pub build: RemoteDerivation,
    pub cleanup: Cleanup,
}

impl CleanupReport {
    pub fn describe(&self) -> String {
        let name = drv_name(&self.build.drv);
        let host = &self.build.machine;
        match &self.cleanup {
            Cleanup::Clean => format!("{host}: nothing of {name} left running"),
            Cleanup::Killed { processes } => format!(
                "{host}: {} process(es) of {name} were still running; rbtop killed them: {}",
                processes.len(),
                processes.join("; ")
            ),
            Cleanup::Unknown(why) => format!("{host}: could not check {name}: {why}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Spawned {
        pid: u32,
    },
    SpawnFailed(String),
    /// One line of Nix's stderr.
    Stderr(String),
    /// One line of its stdout (output paths).
    Stdout(String),
    /// `code` for a normal exit, `signal` when killed.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    CancelRequested,
    /// The log a read-only job follows has ended.
    InputEnded,
    /// The timer armed for `stage` ran out.
    GraceElapsed(Escalation),
    BuildersChecked(Vec<CleanupReport>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobEffect {
    /// Signal the job's process group.
    Signal {
        pgid: u32,
        signal: Signal,
    },
    /// SIGKILL every process the job started that is still alive, in or
    /// out of its process group (the build hook makes a group of its own).
    KillStragglers,
    /// Send [`Event::GraceElapsed`] for `stage` after `after`.
    Arm {
        stage: Escalation,
        after: Duration,
    },
    CheckBuilders(Vec<RemoteDerivation>),
    /// Append a line to the job's log file.
    Write(String),
    /// The job is over; nothing more will happen to it.
    Finished,
}

#[derive(Debug)]
pub struct Job {
    pub id: JobId,
    pub request: LaunchRequest,
    pub argv: Vec<String>,
    pub state: State,
    pub progress: BuildProgress,
    pub log: LogBuffer,
    /// Output paths Nix reported.
    pub outputs: Vec<String>,
    pub started: Instant,
    pub ended: Option<Instant>,
    pub last_line: Option<Instant>,
    /// What the cancel did, for the pane and the log.
    pub notes: Vec<String>,
    /// Where the full log is written, when it could be created.
    pub log_file: Option<std::path::PathBuf>,
    /// When the operator first asked to cancel.
    pub cancel_requested: Option<Instant>,
    /// A log read, not a build run: it cannot be cancelled, and the end of
    /// the input is its end.
    pub read_only: bool,
    graces: Graces,
    cancel_pending: bool,
    pin_warned: bool,
}

impl Job {
    pub fn new(
        id: JobId,
        request: LaunchRequest,
        argv: Vec<String>,
        line_cap: usize,
        graces: Graces,
        now: Instant,
    ) -> Job {
        Job {
            id,
            request,
            argv,
            state: State::Starting,
            progress: BuildProgress::new(),
            log: LogBuffer::new(line_cap),
            outputs: Vec::new(),
            started: now,
            ended: None,
            last_line: None,
            notes: Vec::new(),
            log_file: None,
            cancel_requested: None,
            read_only: false,
            graces,
            cancel_pending: false,
            pin_warned: false,
        }
    }

    /// A job that follows the internal-json log of a build started
    /// elsewhere (`name`: the file, or `-` for stdin). Feed it
    /// [`Event::Stderr`] lines, then [`Event::InputEnded`].
    pub fn reading(id: JobId, name: &str, line_cap: usize, now: Instant) -> Job {
        let request = LaunchRequest {
            args: vec![name.to_string()],
            placement: super::launch::Placement::Fleet { builders: None },
            tool: super::launch::BuildTool::NixBuild,
        };
        let argv = vec!["rbtop".into(), "log".into(), name.to_string()];
        let mut job = Job::new(id, request, argv, line_cap, Graces::default(), now);
        job.state = State::Reading;
        job.read_only = true;
        job
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_))
    }

    pub fn is_active(&self) -> bool {
        !self.is_finished()
    }

    pub fn ended(&self) -> Option<&JobEnd> {
        match &self.state {
            State::Finished(ended) => Some(ended),
            _ => None,
        }
    }

    /// The exit status `rbtop build` gives for this job.
    pub fn exit_status(&self) -> Option<u8> {
        self.ended().map(|ended| match ended {
            JobEnd::Succeeded => 0,
            JobEnd::Failed { exit_code, .. } => u8::try_from(*exit_code)
                .ok()
                .filter(|&c| c != 0)
                .unwrap_or(1),
            JobEnd::Cancelled => 130,
            JobEnd::LaunchFailed(_) => 127,
        })
    }

    /// Why the job ended, in one line, when it did not succeed: the error
    /// that ended it as the progress fold read it, or that it was killed
    /// (and whether rbtop did it), cancelled, or could not start.
    pub fn end_reason(&self) -> Option<String> {
        match self.ended()? {
            JobEnd::Succeeded => None,
            JobEnd::Failed { exit_code, error } => {
                // No exit code: a signal ended Nix, and rbtop sent none (a
                // cancel ends as Cancelled), so it came from elsewhere.
                let signal = (129..160).contains(exit_code).then(|| exit_code - 128);
                Some(match (signal, error) {
                    (Some(n), Some(error)) => {
                        format!("Nix was killed by signal {n}, not by rbtop; {error}")
                    }
                    (Some(n), None) => format!("Nix was killed by signal {n}, not by rbtop"),
                    (None, Some(error)) => error.clone(),
                    (None, None) => {
                        format!("Nix exited with {exit_code} without an error message: see the log")
                    }
                })
            }
            JobEnd::Cancelled => Some("cancelled from rbtop".into()),
            JobEnd::LaunchFailed(why) => Some(why.clone()),
        }
    }

    /// Time since the last log line (or since the start, before any).
    pub fn quiet_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_line.unwrap_or(self.started))
    }

    pub fn elapsed(&self, now: Instant) -> Duration {
        self.ended
            .unwrap_or(now)
            .saturating_duration_since(self.started)
    }

    /// Where the job builds: the machine of its first remote derivation
    /// (what Nix did), else the machine it was pinned to (what was asked).
    pub fn host(&self) -> Option<&str> {
        self.progress
            .derivations()
            .iter()
            .find_map(|d| d.machine.as_deref())
            .or_else(|| self.request.placement.host())
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<JobEffect> {
        match event {
            Event::Spawned { pid } => self.spawned(pid),
            Event::SpawnFailed(why) => {
                let line = format!("rbtop: cannot start {}: {why}", self.argv[0]);
                let mut effects = self.note(line, now);
                effects.extend(self.finish(JobEnd::LaunchFailed(why), now));
                effects
            }
            Event::Stderr(line) => self.stderr(line, now),
            Event::Stdout(line) => self.stdout(line, now),
            Event::Exited { code, signal } => self.exited(code, signal, now),
            Event::InputEnded => self.input_ended(now),
            // A log being read has nothing to stop.
            Event::CancelRequested if self.read_only => Vec::new(),
            Event::CancelRequested => {
                if self.is_active() {
                    self.cancel_requested.get_or_insert(now);
                }
                if self.state == State::CheckingBuilders {
                    // Asked again while the builders are checked: stop waiting.
                    let mut effects = self.note(
                        "rbtop: builder check skipped; the builders were not confirmed clean"
                            .into(),
                        now,
                    );
                    effects.extend(self.finish(JobEnd::Cancelled, now));
                    return effects;
                }
                self.cancel()
            }
            Event::GraceElapsed(stage) => self.grace_elapsed(stage),
            Event::BuildersChecked(reports) => {
                let mut effects = Vec::new();
                for report in reports {
                    effects.extend(self.note(format!("rbtop: {}", report.describe()), now));
                }
                effects.extend(self.finish(JobEnd::Cancelled, now));
                effects
            }
        }
    }

    fn spawned(&mut self, pid: u32) -> Vec<JobEffect> {
        if self.state != State::Starting {
            return Vec::new();
        }
        self.state = State::Running { pid };
        if self.cancel_pending {
            return self.cancel();
        }
        Vec::new()
    }

    fn stderr(&mut self, line: String, now: Instant) -> Vec<JobEffect> {
        let record = parse_line(&line);
        let mut effects = match self.progress.apply(record, now) {
            Some(log_line) => self.append(log_line, now),
            None => Vec::new(),
        };
        if let Some(warning) = self.pin_ignored() {
            effects.extend(self.note(warning, now));
        }
        effects
    }

    /// A pinned build that Nix runs somewhere else: a daemon ignores
    /// `--builders` from a user it does not trust. Said once.
    fn pin_ignored(&mut self) -> Option<String> {
        let pinned = self.request.placement.host()?;
        if self.pin_warned {
            return None;
        }
        let elsewhere = self
            .progress
            .derivations()
            .iter()
            .find(|d| d.phase >= Phase::Connecting && d.machine.as_deref() != Some(pinned))?;
        self.pin_warned = true;
        Some(format!(
            "rbtop: warning: {} builds on {}, not on {pinned} as pinned (a Nix daemon ignores --builders from users it does not trust)",
            elsewhere.name(),
            elsewhere.machine.as_deref().unwrap_or("this machine")
        ))
    }

    fn append(&mut self, line: LogLine, now: Instant) -> Vec<JobEffect> {
        if line.kind == LineKind::Build {
            self.last_line = Some(now);
        }
        let file_line = match line.drv.and_then(|i| self.progress.derivations().get(i)) {
            Some(drv) if line.kind == LineKind::Build => format!("{}> {}", drv.name(), line.text),
            _ => line.text.clone(),
        };
        // Nix's chatty messages go to the file only.
        let shown = !matches!(line.kind, LineKind::Nix(level) if level > super::record::LEVEL_INFO);
        if shown {
            self.log.push(line);
        }
        vec![JobEffect::Write(file_line)]
    }

    /// A line of rbtop's own, kept with the notes and in the log (and so in
    /// the log file and on `rbtop build`'s stdout).
    pub fn note(&mut self, text: String, now: Instant) -> Vec<JobEffect> {
        self.notes.push(text.clone());
        self.append(
            LogLine {
                drv: None,
                kind: LineKind::Nix(super::record::LEVEL_INFO),
                text,
            },
            now,
        )
    }

    /// `nix build --json` prints `[{"drvPath":…,"outputs":{"out":…}}]`;
    /// `nix-build` and `nix-store --realise` print one path per line.
    fn stdout(&mut self, line: String, now: Instant) -> Vec<JobEffect> {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if let Ok(serde_json::Value::Array(built)) = serde_json::from_str(trimmed) {
                for item in built {
                    if let Some(outputs) = item.get("outputs").and_then(|o| o.as_object()) {
                        self.outputs.extend(
                            outputs
                                .values()
                                .filter_map(|p| p.as_str().map(String::from)),
                        );
                    }
                }
                return Vec::new();
            }
        } else if trimmed.starts_with('/') && !trimmed.contains(char::is_whitespace) {
            self.outputs.push(trimmed.to_string());
            return Vec::new();
        }
        self.append(
            LogLine {
                drv: None,
                kind: LineKind::Plain,
                text: line,
            },
            now,
        )
    }

    fn cancel(&mut self) -> Vec<JobEffect> {
        match self.state {
            State::Starting => {
                self.cancel_pending = true;
                Vec::new()
            }
            State::Running { pid } => self.escalate(pid, Escalation::Interrupt),
            // Asked again: do not wait for the grace period.
            State::Cancelling { pid, stage } if stage < Escalation::Kill => {
                let next = if stage == Escalation::Interrupt {
                    Escalation::Terminate
                } else {
                    Escalation::Kill
                };
                self.escalate(pid, next)
            }
            _ => Vec::new(),
        }
    }

    fn escalate(&mut self, pid: u32, stage: Escalation) -> Vec<JobEffect> {
        self.state = State::Cancelling { pid, stage };
        let mut effects = vec![JobEffect::Signal {
            pgid: pid,
            signal: stage.signal(),
        }];
        match stage {
            Escalation::Interrupt => effects.push(JobEffect::Arm {
                stage,
                after: self.graces.interrupt,
            }),
            Escalation::Terminate => effects.push(JobEffect::Arm {
                stage,
                after: self.graces.terminate,
            }),
            Escalation::Kill => effects.push(JobEffect::KillStragglers),
        }
        effects
    }

    fn grace_elapsed(&mut self, stage: Escalation) -> Vec<JobEffect> {
        match self.state {
            State::Cancelling {
                pid,
                stage: current,
            } if current == stage => match stage {
                Escalation::Interrupt => self.escalate(pid, Escalation::Terminate),
                Escalation::Terminate => self.escalate(pid, Escalation::Kill),
                Escalation::Kill => Vec::new(),
            },
            // A timer from a stage already passed, or the job is gone.
            _ => Vec::new(),
        }
    }

    fn exited(&mut self, code: Option<i32>, signal: Option<i32>, now: Instant) -> Vec<JobEffect> {
        let exit_code = code.unwrap_or_else(|| 128 + signal.unwrap_or(0));
        match self.state {
            // The build won the race with the cancel: it is done, not cancelled.
            State::Cancelling { .. } if exit_code == 0 => self.finish(JobEnd::Succeeded, now),
            State::Cancelling { .. } => {
                // Nix stops its build activities when interrupted: one that
                // ended after the cancel was interrupted, not finished.
                let since = self.cancel_requested.unwrap_or(now);
                let remote: Vec<RemoteDerivation> = self
                    .progress
                    .interrupted_since(since, now)
                    .into_iter()
                    .filter_map(|d| {
                        Some(RemoteDerivation {
                            machine: d.machine.clone()?,
                            drv: d.drv.clone(),
                        })
                    })
                    .collect();
                self.ended = Some(now);
                // Whatever the hook left behind in its own process group.
                let mut effects = vec![JobEffect::KillStragglers];
                if remote.is_empty() {
                    effects.extend(self.finish(JobEnd::Cancelled, now));
                } else {
                    self.state = State::CheckingBuilders;
                    effects.push(JobEffect::CheckBuilders(remote));
                }
                effects
            }
            State::Running { .. } | State::Starting => {
                let ended = if exit_code == 0 {
                    JobEnd::Succeeded
                } else {
                    let error = self.progress.failure_reason();
                    JobEnd::Failed { exit_code, error }
                };
                self.finish(ended, now)
            }
            State::CheckingBuilders | State::Finished(_) | State::Reading => Vec::new(),
        }
    }

    /// The end of a read log: failed when a derivation failed or Nix
    /// reported an error, else succeeded; what was still running is
    /// stopped (the log says no more about it), planned ones stay planned.
    fn input_ended(&mut self, now: Instant) -> Vec<JobEffect> {
        if self.state != State::Reading {
            return Vec::new();
        }
        self.progress.stop_all(now);
        let failed = !self.progress.errors().is_empty()
            || self
                .progress
                .derivations()
                .iter()
                .any(|d| matches!(d.status, super::progress::DrvStatus::Failed { .. }));
        let ended = if failed {
            JobEnd::Failed {
                exit_code: 1,
                error: self.progress.failure_reason(),
            }
        } else {
            JobEnd::Succeeded
        };
        self.finish(ended, now)
    }

    fn finish(&mut self, ended: JobEnd, now: Instant) -> Vec<JobEffect> {
        if self.is_finished() {
            return Vec::new();
        }
        if ended == JobEnd::Succeeded && !self.read_only {
            // Nix exited 0: whatever it built succeeded. A log's end says
            // nothing of the kind.
            self.progress.succeed_all(now);
        } else {
            self.progress.stop_all(now);
        }
        self.ended.get_or_insert(now);
        self.state = State::Finished(ended);
        vec![JobEffect::Finished]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::launch::{BuildTool, Placement};

    fn job() -> Job {
        let request = LaunchRequest {
            args: vec!["x.nix".into()],
            placement: Placement::Pinned {
                uri: "ssh://b1".into(),
                line: "ssh://b1".into(),
            },
            tool: BuildTool::NixBuild,
        };
        Job::new(
            JobId(1),
            request,
            vec!["nix".into()],
            100,
            Graces::default(),
            Instant::now(),
        )
    }

    /// A job whose Nix runs as pid 42.
    fn running() -> (Job, Instant) {
        let mut job = job();
        let now = Instant::now();
        assert!(job.handle(Event::Spawned { pid: 42 }, now).is_empty());
        (job, now)
    }

    fn exited(code: i32) -> Event {
        Event::Exited {
            code: Some(code),
            signal: None,
        }
    }

    fn killed_by(signal: i32) -> Event {
        Event::Exited {
            code: None,
            signal: Some(signal),
        }
    }

    #[test]
    fn the_end_reason_is_the_error_or_who_stopped_it() {
        let now = Instant::now();
        let ended = |event: Event| {
            let mut job = job();
            job.handle(Event::Spawned { pid: 7 }, now);
            job.handle(
                Event::Stderr(
                    r#"@nix {"action":"msg","level":0,"msg":"error: builder for '/nix/store/x-a.drv' failed with exit code 1"}"#
                        .into(),
                ),
                now,
            );
            job.handle(event, now);
            job.end_reason()
        };
        assert_eq!(
            ended(exited(1)).as_deref(),
            Some("error: builder for '/nix/store/x-a.drv' failed with exit code 1")
        );
        assert!(
            ended(killed_by(9))
                .unwrap()
                .starts_with("Nix was killed by signal 9, not by rbtop; error: builder"),
        );
        assert_eq!(ended(exited(0)), None);
    }

    const BUILD_ON_B1: &str = r#"@nix {"action":"start","fields":["/nix/store/00000000000000000000000000000000-a.drv","ssh://b1",1,1],"id":5,"level":3,"text":"building","type":105}"#;

    fn signals(effects: &[JobEffect]) -> Vec<Signal> {
        effects
            .iter()
            .filter_map(|e| match e {
                JobEffect::Signal { signal, .. } => Some(*signal),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn launch_output_and_success() {
        let (mut job, now) = running();
        assert_eq!(job.state, State::Running { pid: 42 });
        job.handle(Event::Stderr(BUILD_ON_B1.into()), now);
        let effects = job.handle(
            Event::Stderr(
                r#"@nix {"action":"result","fields":["hello"],"id":5,"type":101}"#.into(),
            ),
            now,
        );
        assert_eq!(effects, [JobEffect::Write("a> hello".into())]);
        assert_eq!(job.log.last_build_lines(None, 1), ["hello"]);
        job.handle(
            Event::Stdout(
                r#"[{"drvPath":"/nix/store/x.drv","outputs":{"out":"/nix/store/y"}}]"#.into(),
            ),
            now,
        );
        assert_eq!(job.outputs, ["/nix/store/y"]);
        let effects = job.handle(exited(0), now);
        assert_eq!(effects, [JobEffect::Finished]);
        assert_eq!(job.ended(), Some(&JobEnd::Succeeded));
        assert_eq!(job.exit_status(), Some(0));
    }

    #[test]
    fn failure_carries_nixs_error_and_code() {
        let (mut job, now) = running();
        job.handle(
            Event::Stderr(
                r#"@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m boom"}"#
                    .into(),
            ),
            now,
        );
        job.handle(exited(100), now);
        assert_eq!(
            job.ended(),
            Some(&JobEnd::Failed {
                exit_code: 100,
                error: Some("error: boom".into())
            })
        );
        assert_eq!(job.exit_status(), Some(100));
    }

    #[test]
    fn cancel_escalates_interrupt_terminate_kill() {
        let (mut job, now) = running();
        let effects = job.handle(Event::CancelRequested, now);
        assert_eq!(signals(&effects), [Signal::Interrupt]);
        assert!(effects.contains(&JobEffect::Arm {
            stage: Escalation::Interrupt,
            after: Duration::from_secs(5)
        }));
        // A stale timer from another stage does nothing.
        assert!(
            job.handle(Event::GraceElapsed(Escalation::Terminate), now)
                .is_empty()
        );
        let effects = job.handle(Event::GraceElapsed(Escalation::Interrupt), now);
        assert_eq!(signals(&effects), [Signal::Terminate]);
        let effects = job.handle(Event::GraceElapsed(Escalation::Terminate), now);
        assert_eq!(signals(&effects), [Signal::Kill]);
        assert!(effects.contains(&JobEffect::KillStragglers));
        assert!(
            job.handle(Event::GraceElapsed(Escalation::Kill), now)
                .is_empty()
        );
    }

    #[test]
    fn a_second_cancel_skips_the_wait() {
        let (mut job, now) = running();
        job.handle(Event::CancelRequested, now);
        assert_eq!(
            signals(&job.handle(Event::CancelRequested, now)),
            [Signal::Terminate]
        );
        assert_eq!(
            signals(&job.handle(Event::CancelRequested, now)),
            [Signal::Kill]
        );
        assert!(job.handle(Event::CancelRequested, now).is_empty());
    }

    #[test]
    fn cancel_before_spawn_waits_for_the_pid() {
        let mut job = job();
        let now = Instant::now();
        assert!(job.handle(Event::CancelRequested, now).is_empty());
        let effects = job.handle(Event::Spawned { pid: 7 }, now);
        assert_eq!(
            effects[0],
            JobEffect::Signal {
                pgid: 7,
                signal: Signal::Interrupt
            }
        );
    }

    #[test]
    fn exit_after_cancel_checks_the_builders_then_finishes_cancelled() {
        let (mut job, now) = running();
        job.handle(Event::Stderr(BUILD_ON_B1.into()), now);
        job.handle(Event::CancelRequested, now);
        let effects = job.handle(exited(1), now);
        let build = RemoteDerivation {
            machine: "ssh://b1".into(),
            drv: "/nix/store/00000000000000000000000000000000-a.drv".into(),
        };
        assert_eq!(
            effects,
            [
                JobEffect::KillStragglers,
                JobEffect::CheckBuilders(vec![build.clone()])
            ]
        );
        assert_eq!(job.state, State::CheckingBuilders);
        let effects = job.handle(
            Event::BuildersChecked(vec![CleanupReport {
                build,
                cleanup: Cleanup::Killed {
                    processes: vec!["123 sh".into()],
                },
            }]),
            now,
        );
        assert_eq!(effects.last(), Some(&JobEffect::Finished));
        assert_eq!(job.ended(), Some(&JobEnd::Cancelled));
        assert_eq!(job.exit_status(), Some(130));
        assert!(
            job.notes[0].contains("rbtop killed them"),
            "{:?}",
            job.notes
        );
    }

    #[test]
    fn exit_after_cancel_with_nothing_remote_finishes_at_once() {
        let (mut job, now) = running();
        job.handle(Event::CancelRequested, now);
        let effects = job.handle(killed_by(2), now);
        assert_eq!(effects, [JobEffect::KillStragglers, JobEffect::Finished]);
        assert_eq!(job.ended(), Some(&JobEnd::Cancelled));
    }

    #[test]
    fn spawn_failure_ends_the_job() {
        let mut job = job();
        let effects = job.handle(Event::SpawnFailed("No such file".into()), Instant::now());
        assert_eq!(effects.last(), Some(&JobEffect::Finished));
        assert_eq!(job.exit_status(), Some(127));
        assert!(job.notes[0].contains("cannot start nix"));
    }

    #[test]
    fn killed_by_a_signal_is_a_failure_with_128_plus() {
        let (mut job, now) = running();
        job.handle(killed_by(9), now);
        assert_eq!(job.exit_status(), Some(137));
    }

    #[test]
    fn a_cancel_during_the_builder_check_stops_waiting_for_it() {
        let (mut job, now) = running();
        job.handle(Event::Stderr(BUILD_ON_B1.into()), now);
        job.handle(Event::CancelRequested, now);
        job.handle(exited(1), now);
        assert_eq!(job.state, State::CheckingBuilders);
        let effects = job.handle(Event::CancelRequested, now);
        assert_eq!(effects.last(), Some(&JobEffect::Finished));
        assert_eq!(job.ended(), Some(&JobEnd::Cancelled));
        assert!(
            job.notes[0].contains("builder check skipped"),
            "{:?}",
            job.notes
        );
        // The check's late answer changes nothing.
        assert!(
            job.handle(Event::BuildersChecked(Vec::new()), now)
                .is_empty()
        );
    }

    #[test]
    fn a_build_that_finishes_before_the_cancel_lands_succeeded() {
        let (mut job, now) = running();
        job.handle(Event::CancelRequested, now);
        let effects = job.handle(exited(0), now);
        assert_eq!(effects, [JobEffect::Finished]);
        assert_eq!(job.exit_status(), Some(0));
    }

    #[test]
    fn a_pinned_build_nix_sends_elsewhere_is_said_once_and_shown_where_it_is() {
        let (mut job, now) = running();
        assert_eq!(job.host(), Some("ssh://b1"), "the pin, before Nix says");
        let on_b2 = BUILD_ON_B1.replace("ssh://b1", "ssh://b2");
        let effects = job.handle(Event::Stderr(on_b2.clone()), now);
        assert!(
            effects.iter().any(
                |e| matches!(e, JobEffect::Write(l) if l.contains("not on ssh://b1 as pinned"))
            ),
            "{effects:?}"
        );
        assert_eq!(job.host(), Some("ssh://b2"));
        job.handle(Event::Stderr(on_b2), now);
        assert_eq!(job.notes.len(), 1, "once: {:?}", job.notes);
        // Built where pinned: nothing to say.
        let mut job = super::tests::job();
        job.handle(Event::Stderr(BUILD_ON_B1.into()), now);
        assert!(job.notes.is_empty());
    }
}
