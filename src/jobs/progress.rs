//! Folds a build's [`Record`]s into what the jobs pane shows: each
//! derivation with its host and phase, the overall done/expected counts,
//! Nix's errors, and which log line belongs to which derivation.
//!
//! Nix 2.8 sends no `parent`, and the build hook's own steps (`connecting
//! to`, `waiting for the upload lock to`, `copying dependencies to`,
//! `copying outputs from`) are activities of their own, named by machine
//! only (nix-reference §4). They are joined to the derivation running on
//! that machine whose phase comes just before; when a newer Nix gives a
//! `parent` that is a build, that wins.

use std::collections::HashMap;
use std::time::Instant;

use super::forms::{self, MessageKind};
use super::record::{Activity, LEVEL_INFO, LogResult, Message, Record, Start};
use crate::nix_text::strip_ansi;

/// Where a derivation is, in the order Nix goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Known (Nix is waiting for it) but no build activity yet.
    Queued,
    /// `waiting for a machine to build`: every eligible slot is taken.
    WaitingForSlot,
    /// `waiting for lock on` output paths, or for a free build user.
    WaitingForLock,
    Connecting,
    WaitingForUploadLock,
    CopyingInputs,
    Building,
    CopyingOutputs,
    Finished,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::WaitingForSlot => "waiting for a slot",
            Phase::WaitingForLock => "waiting for a lock",
            Phase::Connecting => "connecting",
            Phase::WaitingForUploadLock => "waiting for the upload lock",
            Phase::CopyingInputs => "copying inputs",
            Phase::Building => "building",
            Phase::CopyingOutputs => "copying outputs",
            Phase::Finished => "finished",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum DrvStatus {
    /// In Nix's build plan (`these N derivations will be built:`), not
    /// started yet; it stays so when a dependency's failure stops the build.
    Planned,
    Running,
    Succeeded,
    /// Nix's message, and the builder's exit code when Nix gave one.
    Failed {
        message: String,
        exit_code: Option<i32>,
    },
    /// The job ended (cancelled or failed elsewhere) before this one did.
    Stopped,
}

#[derive(Clone, Debug)]
pub struct DrvProgress {
    /// `/nix/store/…-name.drv`.
    pub drv: String,
    /// The machine's URI, `None` for a local build.
    pub machine: Option<String>,
    pub phase: Phase,
    /// The builder's own phase name (`buildPhase`, …) when it announced one.
    pub builder_phase: Option<String>,
    pub status: DrvStatus,
    pub started: Instant,
    /// When the build hook began connecting to its machine: Nix 2.8 says
    /// `connecting to` before it starts the build activity, so this is
    /// earlier than `started`.
    pub connecting_since: Option<Instant>,
    pub finished: Option<Instant>,
    pub last_line: Option<Instant>,
    pub lines: u64,
}

impl DrvProgress {
    /// `hello-2.12` from `/nix/store/<hash>-hello-2.12.drv`.
    pub fn name(&self) -> &str {
        drv_name(&self.drv)
    }

    pub fn is_running(&self) -> bool {
        self.status == DrvStatus::Running
    }
}

/// The name part of a store path, without `.drv`.
pub fn drv_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name,
        _ => base,
    }
}

/// Build counts from the top-level `Builds` activity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub done: u64,
    pub expected: u64,
    pub running: u64,
    pub failed: u64,
}

/// What a line of the job's log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// Printed by a builder.
    Build,
    /// Nix's own message or activity text, at this level.
    Nix(u8),
    /// Not internal-json: printed by something else (ssh, a wrapper).
    Plain,
}

/// A line to append to the job's log, and the derivation it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// Index into [`BuildProgress::derivations`].
    pub drv: Option<usize>,
    pub kind: LineKind,
    pub text: String,
}

#[derive(Clone, Copy, Debug)]
struct Running {
    /// The derivation this activity is about, if any.
    drv: Option<usize>,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Build,
    Builds,
    Realise,
    /// A build hook step moving its derivation to this phase while it runs.
    HookStep(Phase),
    Waiting,
    Other,
}

#[derive(Debug, Default)]
pub struct BuildProgress {
    derivations: Vec<DrvProgress>,
    by_drv: HashMap<String, usize>,
    activities: HashMap<u64, Running>,
    /// The first `Builds` activity: later ones are nested (`ssh-ng://`).
    top_builds: Option<u64>,
    top_realise: Option<u64>,
    counts: Counts,
    /// Paths Nix expects to copy or substitute, from `SetExpected`.
    expected_copies: u64,
    /// Builds that ended as successes so far. Nix counts a build done (the
    /// top `Progress`) just before it stops the build's activity; a stop
    /// with no new "done" behind it is an interruption, not a success.
    successes: u64,
    errors: Vec<String>,
    warnings: Vec<String>,
    /// The last message began a build plan: path lines follow.
    in_plan: bool,
    /// `connecting to '<machine>'` seen before any build on that machine:
    /// when, by machine (taken by the next build that starts there).
    connects: HashMap<String, Instant>,
}

impl BuildProgress {
    pub fn new() -> BuildProgress {
        BuildProgress::default()
    }

    pub fn derivations(&self) -> &[DrvProgress] {
        &self.derivations
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn expected_copies(&self) -> u64 {
        self.expected_copies
    }

    /// Nix's error messages (`error: …`), as written, colours included.
    /// Warnings and chatter a daemon forwards at level 0 are not among them.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Nix's warnings (`warning: …`, at any level), as written.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The error that ended the job, colours stripped: the first that
    /// reports a derivation's own failure (the builder's exit code), else
    /// the first error. Never a warning.
    pub fn failure_reason(&self) -> Option<String> {
        let plain: Vec<String> = self.errors.iter().map(|e| strip_ansi(e)).collect();
        let index = plain
            .iter()
            .position(|e| forms::own_failure(e).is_some())
            .or((!plain.is_empty()).then_some(0))?;
        Some(plain[index].clone())
    }

    /// After a cancel: mark as stopped every derivation still running or
    /// whose build activity ended at or after `since` (Nix ends them when
    /// interrupted, which is no sign of success), and return them.
    pub fn interrupted_since(&mut self, since: Instant, now: Instant) -> Vec<DrvProgress> {
        let mut interrupted = Vec::new();
        for drv in &mut self.derivations {
            // Ended at or after the cancel, failed or not: a build activity
            // Nix stopped without counting it done is `Stopped` already.
            let cut_short = matches!(drv.status, DrvStatus::Succeeded | DrvStatus::Stopped)
                && drv.finished.is_some_and(|t| t >= since);
            if drv.is_running() || cut_short {
                drv.status = DrvStatus::Stopped;
                drv.finished.get_or_insert(now);
                interrupted.push(drv.clone());
            }
        }
        interrupted
    }

    /// The whole build succeeded: whatever had not been seen to succeed did
    /// (a Nix that reports its counts late, or not at all).
    pub fn succeed_all(&mut self, now: Instant) {
        for drv in &mut self.derivations {
            if matches!(
                drv.status,
                DrvStatus::Running | DrvStatus::Stopped | DrvStatus::Planned
            ) {
                drv.status = DrvStatus::Succeeded;
                drv.phase = Phase::Finished;
                drv.finished.get_or_insert(now);
            }
        }
    }

    /// Mark every derivation still running as stopped: the job is over.
    pub fn stop_all(&mut self, now: Instant) {
        for drv in &mut self.derivations {
            if drv.is_running() {
                drv.status = DrvStatus::Stopped;
                drv.finished = Some(now);
            }
        }
    }

    /// Fold one record in; returns the line it adds to the log, if any.
    pub fn apply(&mut self, record: Record, now: Instant) -> Option<LogLine> {
        match record {
            Record::Start(start) => self.start(start, now),
            Record::Stop { id } => {
                self.stop(id, now);
                None
            }
            Record::Result { id, outcome } => self.result(id, outcome, now),
            Record::Message(message) => Some(self.message(message, now)),
            Record::SetPhase(phase) => Some(LogLine {
                drv: None,
                kind: LineKind::Plain,
                text: format!("setPhase {phase}"),
            }),
            Record::Plain(text) => Some(LogLine {
                drv: None,
                kind: LineKind::Plain,
                text,
            }),
        }
    }

    fn derivation(&mut self, drv: &str, now: Instant) -> usize {
        self.derivation_as(drv, DrvStatus::Running, now)
    }

    /// The index of `drv`, added with `status` if it is new.
    fn derivation_as(&mut self, drv: &str, status: DrvStatus, now: Instant) -> usize {
        if let Some(&index) = self.by_drv.get(drv) {
            return index;
        }
        self.derivations.push(DrvProgress {
            drv: drv.to_string(),
            machine: None,
            phase: Phase::Queued,
            builder_phase: None,
            status,
            started: now,
            connecting_since: None,
            finished: None,
            last_line: None,
            lines: 0,
        });
        let index = self.derivations.len() - 1;
        self.by_drv.insert(drv.to_string(), index);
        index
    }

    fn start(&mut self, start: Start, now: Instant) -> Option<LogLine> {
        let Start {
            id,
            parent,
            level,
            activity,
            text,
        } = start;
        let plain = strip_ansi(&text);
        let running = match activity {
            Activity::Build { drv, machine } => Running {
                drv: Some(self.build_started(&drv, &machine, now)),
                kind: Kind::Build,
            },
            Activity::Builds => {
                self.top_builds.get_or_insert(id);
                Running {
                    drv: None,
                    kind: Kind::Builds,
                }
            }
            Activity::Realise => {
                self.top_realise.get_or_insert(id);
                Running {
                    drv: None,
                    kind: Kind::Realise,
                }
            }
            Activity::BuildWaiting => self.waiting(&plain, now),
            Activity::Unknown => self.hook_step(&plain, parent, now),
            _ => Running {
                drv: None,
                kind: Kind::Other,
            },
        };
        self.activities.insert(id, running);
        (level <= LEVEL_INFO && !text.is_empty()).then_some(LogLine {
            drv: running.drv,
            kind: LineKind::Nix(level),
            text,
        })
    }

    fn build_started(&mut self, drv: &str, machine: &str, now: Instant) -> usize {
        let index = self.derivation(drv, now);
        let entry = &mut self.derivations[index];
        if machine.is_empty() && entry.machine.is_some() && entry.is_running() {
            // The builder's own build activity, relayed from an ssh-ng://
            // host: same derivation, now really building.
            entry.phase = Phase::Building;
            return index;
        }
        entry.machine = (!machine.is_empty()).then(|| machine.to_string());
        entry.connecting_since = self.connects.remove(machine);
        entry.phase = if machine.is_empty() {
            Phase::Building
        } else {
            Phase::Connecting
        };
        entry.status = DrvStatus::Running;
        entry.started = now;
        entry.finished = None;
        index
    }

    fn waiting(&mut self, text: &str, now: Instant) -> Running {
        if let Some((from, to)) = forms::resolved_derivation(text) {
            // A content-addressed derivation resolved to another: what Nix
            // builds under the new name is still this one.
            let index = self.derivation_as(from, DrvStatus::Planned, now);
            self.by_drv.entry(to.to_string()).or_insert(index);
            return Running {
                drv: Some(index),
                kind: Kind::Other,
            };
        }
        let (phase, drv) = if let Some(drv) = quoted_after(text, "waiting for a machine to build ")
        {
            (Phase::WaitingForSlot, Some(drv))
        } else {
            // `waiting for lock on '<out>'`, `waiting for a free build user ID for '<drv>'`.
            (Phase::WaitingForLock, store_drv_in(text))
        };
        let drv = drv.map(|drv| {
            let index = self.derivation(drv, now);
            let entry = &mut self.derivations[index];
            if entry.phase <= Phase::WaitingForLock {
                entry.phase = phase;
            }
            if entry.status == DrvStatus::Planned {
                entry.status = DrvStatus::Running;
            }
            index
        });
        Running {
            drv,
            kind: Kind::Waiting,
        }
    }

    /// A build hook step: which phase it starts, and for which derivation.
    fn hook_step(&mut self, text: &str, parent: Option<u64>, now: Instant) -> Running {
        let steps = [
            ("connecting to ", Phase::Connecting, Phase::Connecting),
            (
                "waiting for the upload lock to ",
                Phase::WaitingForUploadLock,
                Phase::Connecting,
            ),
            (
                "copying dependencies to ",
                Phase::CopyingInputs,
                Phase::WaitingForUploadLock,
            ),
            (
                "copying outputs from ",
                Phase::CopyingOutputs,
                Phase::Building,
            ),
        ];
        let other = Running {
            drv: None,
            kind: Kind::Other,
        };
        let Some((machine, phase, before)) = steps.iter().find_map(|(prefix, phase, before)| {
            quoted_after(text, prefix).map(|machine| (machine, *phase, *before))
        }) else {
            return other;
        };
        let by_parent = parent
            .and_then(|p| self.activities.get(&p))
            .filter(|a| a.kind == Kind::Build)
            .and_then(|a| a.drv);
        // Otherwise the earliest running derivation on that machine that has
        // not yet passed the step before this one.
        let drv = by_parent.or_else(|| {
            self.derivations
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    d.is_running()
                        && d.machine.as_deref() == Some(machine)
                        && d.phase >= Phase::Connecting
                        && d.phase <= before
                })
                .min_by_key(|(_, d)| (d.phase, d.started))
                .map(|(i, _)| i)
        });
        match drv {
            Some(index) => self.derivations[index].phase = phase,
            None if phase == Phase::Connecting => {
                self.connects.insert(machine.to_string(), now);
            }
            None => {}
        }
        Running {
            drv,
            kind: Kind::HookStep(phase),
        }
    }

    fn stop(&mut self, id: u64, now: Instant) {
        // One command may realise several times (`nix develop`, `nix
        // build` of several installables): each has its own top `Builds`
        // and `Realise`, counting from zero again.
        if self.top_builds == Some(id) {
            self.top_builds = None;
            self.successes = 0;
        }
        if self.top_realise == Some(id) {
            self.top_realise = None;
        }
        let Some(running) = self.activities.remove(&id) else {
            return;
        };
        let Some(index) = running.drv else {
            return;
        };
        let entry = &mut self.derivations[index];
        match running.kind {
            Kind::Build => {
                // The outer activity of an ssh-ng:// build ends after the
                // nested one; only a build with no other activity left ends it.
                let still_open = self
                    .activities
                    .values()
                    .any(|a| a.kind == Kind::Build && a.drv == Some(index));
                if !still_open && entry.is_running() {
                    entry.phase = Phase::Finished;
                    entry.finished = Some(now);
                    entry.status = if self.counts.done > self.successes {
                        self.successes += 1;
                        DrvStatus::Succeeded
                    } else {
                        DrvStatus::Stopped
                    };
                } else if still_open && entry.phase < Phase::CopyingOutputs {
                    entry.phase = Phase::Building;
                }
            }
            // Copying inputs done: the remote build runs now.
            Kind::HookStep(Phase::CopyingInputs) if entry.phase == Phase::CopyingInputs => {
                entry.phase = Phase::Building;
            }
            _ => {}
        }
    }

    fn result(&mut self, id: u64, outcome: LogResult, now: Instant) -> Option<LogLine> {
        let running = self.activities.get(&id).copied();
        let drv = running.and_then(|a| a.drv);
        match outcome {
            LogResult::BuildLogLine(text) | LogResult::PostBuildLogLine(text) => {
                if let Some(index) = drv {
                    let entry = &mut self.derivations[index];
                    entry.lines += 1;
                    entry.last_line = Some(now);
                    // Lines prove the remote build runs (2.8 loses remote
                    // setPhase, so this is the only sign of it over ssh://).
                    if entry.phase < Phase::Building && entry.machine.is_some() {
                        entry.phase = Phase::Building;
                    }
                }
                Some(LogLine {
                    drv,
                    kind: LineKind::Build,
                    text,
                })
            }
            LogResult::SetPhase(phase) => {
                if let Some(index) = drv {
                    let entry = &mut self.derivations[index];
                    entry.builder_phase = Some(phase);
                    entry.last_line = Some(now);
                }
                None
            }
            LogResult::Progress {
                done,
                expected,
                running,
                failed,
            } if Some(id) == self.top_builds => {
                self.counts = Counts {
                    done,
                    expected,
                    running,
                    failed,
                };
                None
            }
            LogResult::SetExpected { activity, expected }
                if Some(id) == self.top_realise && activity == 100 =>
            {
                self.expected_copies = expected;
                None
            }
            LogResult::UntrustedPath(path) | LogResult::CorruptedPath(path) => Some(LogLine {
                drv,
                kind: LineKind::Nix(1),
                text: format!("path '{path}' is untrusted or corrupted"),
            }),
            _ => None,
        }
    }

    fn message(&mut self, message: Message, now: Instant) -> LogLine {
        let Message { level, text, .. } = message;
        let plain = strip_ansi(&text);
        match forms::message_kind(level, &plain) {
            MessageKind::Error => {
                self.errors.push(text.clone());
                self.record_failure(&plain, now);
            }
            MessageKind::Warning => self.warnings.push(text.clone()),
            MessageKind::Info => {}
        }
        self.read_plan(&plain, now);
        let drv = store_drv_in(&plain).and_then(|d| self.by_drv.get(d).copied());
        LogLine {
            drv,
            kind: LineKind::Nix(level),
            text,
        }
    }

    /// A build plan's header and its path lines: each path a planned
    /// derivation, so one that never starts still shows.
    fn read_plan(&mut self, plain: &str, now: Instant) {
        if forms::plan_header(plain) {
            self.in_plan = true;
            return;
        }
        if !self.in_plan {
            return;
        }
        match forms::plan_entry(plain) {
            Some(drv) => {
                self.derivation_as(drv, DrvStatus::Planned, now);
            }
            None => self.in_plan = false,
        }
    }

    /// Only Nix's forms for a derivation's own failure mark it failed
    /// ([`forms::own_failure`]); the first one seen is kept, since `build of
    /// '<drv>' on '<uri>' failed: builder … exit code 3` names the remote
    /// builder's own code before the local summary.
    fn record_failure(&mut self, plain: &str, now: Instant) {
        let Some(failure) = forms::own_failure(plain) else {
            return;
        };
        let exit_code = failure.exit_code;
        let index = self.derivation(failure.drv, now);
        let entry = &mut self.derivations[index];
        if !matches!(entry.status, DrvStatus::Failed { .. }) {
            let message = plain
                .strip_prefix("error: ")
                .unwrap_or(plain)
                .trim()
                .to_string();
            entry.status = DrvStatus::Failed { message, exit_code };
            entry.phase = Phase::Finished;
            entry.finished = Some(now);
        }
    }
}

/// The text between the quotes after `prefix`: `connecting to 'ssh://b1'`.
fn quoted_after<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let rest = text.strip_prefix(prefix)?.strip_prefix('\'')?;
    rest.find('\'').map(|end| &rest[..end])
}

/// The first `/nix/store/….drv` path in a message.
fn store_drv_in(text: &str) -> Option<&str> {
    let start = text.find("/nix/store/")?;
    let rest = &text[start..];
    let end = rest.find(".drv")? + ".drv".len();
    let path = &rest[..end];
    (!path.contains(char::is_whitespace) && !path.contains('\'')).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::record::parse_line;

    /// Activity 1: derivation `a` starts building on ssh://b1.
    const BUILD_A_ON_B1: &str = r#"@nix {"action":"start","fields":["/nix/store/00000000000000000000000000000000-a.drv","ssh://b1",1,1],"id":1,"level":3,"text":"building","type":105}"#;

    fn feed(lines: &[&str]) -> (BuildProgress, Vec<LogLine>) {
        let mut progress = BuildProgress::new();
        let now = Instant::now();
        let log = lines
            .iter()
            .filter_map(|l| progress.apply(parse_line(l), now))
            .collect();
        (progress, log)
    }

    #[test]
    fn names_of_derivations() {
        assert_eq!(
            drv_name("/nix/store/xwr92aq5411d8hzx7nhj56grfhy96z7v-rbtop-numbered-1.drv"),
            "rbtop-numbered-1"
        );
        assert_eq!(drv_name("odd"), "odd");
    }

    #[test]
    fn hook_steps_move_the_build_on_its_machine() {
        let (progress, _) = feed(&[
            BUILD_A_ON_B1,
            r#"@nix {"action":"start","id":2,"level":4,"text":"waiting for the upload lock to 'ssh://b1'","type":0}"#,
        ]);
        assert_eq!(progress.derivations()[0].phase, Phase::WaitingForUploadLock);
        let (progress, _) = feed(&[
            BUILD_A_ON_B1,
            r#"@nix {"action":"start","id":2,"level":4,"text":"copying dependencies to 'ssh://b1'","type":0}"#,
            r#"@nix {"action":"stop","id":2}"#,
        ]);
        assert_eq!(progress.derivations()[0].phase, Phase::Building);
    }

    #[test]
    fn connecting_before_the_build_activity_is_kept_for_the_build_there() {
        // Nix 2.8 connects first, then starts the build activity naming the machine.
        let connect_b2 = r#"@nix {"action":"start","id":5,"level":4,"text":"connecting to 'ssh://b2'","type":0}"#;
        let connect_b1 = r#"@nix {"action":"start","id":6,"level":4,"text":"connecting to 'ssh://b1'","type":0}"#;
        let mut progress = BuildProgress::new();
        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_millis(200);
        progress.apply(parse_line(connect_b2), t0);
        progress.apply(parse_line(connect_b1), t0);
        progress.apply(parse_line(BUILD_A_ON_B1), t1);
        let drv = &progress.derivations()[0];
        assert_eq!(drv.connecting_since, Some(t0));
        assert_eq!(drv.started, t1);
        // Taken: a second build on b1 does not inherit it.
        let build_b = BUILD_A_ON_B1.replace(
            "00000000000000000000000000000000-a",
            "11111111111111111111111111111111-b",
        );
        progress.apply(parse_line(&build_b), t1);
        assert_eq!(progress.derivations()[1].connecting_since, None);
    }

    #[test]
    fn hook_step_for_another_machine_changes_nothing() {
        let (progress, _) = feed(&[
            BUILD_A_ON_B1,
            r#"@nix {"action":"start","id":2,"level":4,"text":"waiting for the upload lock to 'ssh://b2'","type":0}"#,
        ]);
        assert_eq!(progress.derivations()[0].phase, Phase::Connecting);
    }

    #[test]
    fn a_build_stopped_without_being_counted_done_was_interrupted() {
        let start = r#"@nix {"action":"start","fields":["/nix/store/00000000000000000000000000000000-a.drv","",1,1],"id":1,"level":3,"text":"building","type":105}"#;
        let builds = r#"@nix {"action":"start","id":9,"level":0,"text":"","type":104}"#;
        let done = r#"@nix {"action":"result","fields":[1,1,0,0],"id":9,"type":105}"#;
        let stop = r#"@nix {"action":"stop","id":1}"#;
        let (progress, _) = feed(&[builds, start, done, stop]);
        assert_eq!(progress.derivations()[0].status, DrvStatus::Succeeded);
        let (progress, _) = feed(&[builds, start, stop]);
        assert_eq!(progress.derivations()[0].status, DrvStatus::Stopped);
    }

    #[test]
    fn a_build_nix_stopped_after_the_cancel_counts_as_interrupted() {
        let builds = r#"@nix {"action":"start","id":9,"level":0,"text":"","type":104}"#;
        let start = BUILD_A_ON_B1;
        let stop = r#"@nix {"action":"stop","id":1}"#;
        let mut progress = BuildProgress::new();
        let t0 = Instant::now();
        let cancel = t0 + std::time::Duration::from_millis(1);
        progress.apply(parse_line(builds), t0);
        progress.apply(parse_line(start), t0);
        // Nix stops the activity after the cancel, without counting it done.
        progress.apply(parse_line(stop), cancel);
        assert_eq!(progress.derivations()[0].status, DrvStatus::Stopped);
        let interrupted = progress.interrupted_since(cancel, cancel);
        assert_eq!(interrupted.len(), 1, "the builder must be checked");
        assert_eq!(interrupted[0].machine.as_deref(), Some("ssh://b1"));
    }

    #[test]
    fn failure_keeps_the_builders_exit_code() {
        let (progress, _) = feed(&[
            BUILD_A_ON_B1,
            r#"@nix {"action":"msg","level":0,"msg":"error: build of '/nix/store/00000000000000000000000000000000-a.drv' on 'ssh://b1' failed: builder for '/nix/store/00000000000000000000000000000000-a.drv' failed with exit code 3"}"#,
            r#"@nix {"action":"stop","id":1}"#,
            r#"@nix {"action":"msg","level":0,"msg":"error: builder for '/nix/store/00000000000000000000000000000000-a.drv' failed with exit code 1"}"#,
        ]);
        let drv = &progress.derivations()[0];
        assert!(
            matches!(&drv.status, DrvStatus::Failed { exit_code: Some(3), message } if message.starts_with("build of")),
            "{:?}",
            drv.status
        );
        assert_eq!(progress.errors().len(), 2);
    }

    const B: &str = "/nix/store/11111111111111111111111111111111-b.drv";
    const A: &str = "/nix/store/00000000000000000000000000000000-a.drv";

    fn msg(level: u8, text: &str) -> String {
        serde_json::json!({"action": "msg", "level": level, "msg": text}).to_string()
    }

    fn fed(lines: &[String]) -> BuildProgress {
        let lines: Vec<String> = lines.iter().map(|l| format!("@nix {l}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        feed(&refs).0
    }

    #[test]
    fn a_daemons_warning_is_never_the_failure_reason() {
        let progress = fed(&[
            msg(
                0,
                "\u{1b}[35;1mwarning:\u{1b}[0m ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user",
            ),
            msg(0, "linking '/nix/store/x-a' to '/nix/store/.links/abc'"),
            msg(
                0,
                &format!("error: builder for '{A}' failed with exit code 2"),
            ),
            msg(0, &format!("error: build of '{A}', '{B}' failed")),
        ]);
        assert_eq!(progress.warnings().len(), 1);
        assert_eq!(progress.errors().len(), 2, "{:?}", progress.errors());
        assert_eq!(
            progress.failure_reason().as_deref(),
            Some(format!("error: builder for '{A}' failed with exit code 2").as_str())
        );
        let only_warned = fed(&[
            msg(0, "warning: ignoring untrusted substituter"),
            msg(0, "error: unexpected end-of-file"),
        ]);
        assert_eq!(
            only_warned.failure_reason().as_deref(),
            Some("error: unexpected end-of-file")
        );
    }

    #[test]
    fn summaries_and_dependency_failures_mark_nothing_failed() {
        let progress = fed(&[
            msg(3, "these 2 derivations will be built:"),
            msg(3, &format!("  {A}")),
            msg(3, &format!("  {B}")),
            msg(0, &format!("error: build of '{A}', '{B}' failed")),
            msg(
                0,
                &format!("error: Cannot build '{B}'.\n       Reason: 1 dependency failed."),
            ),
        ]);
        let statuses: Vec<_> = progress
            .derivations()
            .iter()
            .map(|d| d.status.clone())
            .collect();
        assert_eq!(statuses, vec![DrvStatus::Planned, DrvStatus::Planned]);
        let failed = fed(&[msg(
            0,
            &format!("error: Cannot build '{B}'.\n       Reason: builder failed with exit code 4."),
        )]);
        assert!(matches!(
            failed.derivations()[0].status,
            DrvStatus::Failed {
                exit_code: Some(4),
                ..
            }
        ));
    }

    #[test]
    fn the_plan_ends_at_the_first_other_message() {
        let progress = fed(&[
            msg(3, "this derivation will be built:"),
            msg(3, &format!("  {A}")),
            msg(3, "these 1 paths will be fetched (0.1 MiB download):"),
            msg(3, "  /nix/store/22222222222222222222222222222222-c.drv"),
        ]);
        assert_eq!(progress.derivations().len(), 1);
        assert_eq!(progress.derivations()[0].drv, A);
    }

    #[test]
    fn a_resolved_derivation_is_not_waiting_for_a_lock() {
        let text = format!("resolved derivation: '{A}' -> '{B}'");
        let start = serde_json::json!({"action":"start","id":3,"level":4,"text":text,"type":111})
            .to_string();
        let build = serde_json::json!({"action":"start","fields":[B,"",1,1],"id":4,"level":3,"text":"building","type":105}).to_string();
        let progress = fed(std::slice::from_ref(&start));
        assert_eq!(progress.derivations()[0].phase, Phase::Queued);
        // What Nix then builds under the resolved name is the same one.
        let progress = fed(&[start, build]);
        assert_eq!(progress.derivations().len(), 1);
        assert_eq!(progress.derivations()[0].phase, Phase::Building);
    }

    #[test]
    fn a_second_realisation_counts_its_own_builds() {
        let first = r#"@nix {"action":"start","id":1,"level":0,"text":"","type":104}"#;
        let first_done = r#"@nix {"action":"result","fields":[0,0,0,0],"id":1,"type":105}"#;
        let first_stop = r#"@nix {"action":"stop","id":1}"#;
        let second = r#"@nix {"action":"start","id":2,"level":0,"text":"","type":104}"#;
        let build = r#"@nix {"action":"start","fields":["/nix/store/00000000000000000000000000000000-a.drv","",1,1],"id":3,"level":3,"text":"building","type":105}"#;
        let done = r#"@nix {"action":"result","fields":[1,1,0,0],"id":2,"type":105}"#;
        let stop = r#"@nix {"action":"stop","id":3}"#;
        let (progress, _) = feed(&[first, first_done, first_stop, second, build, done, stop]);
        assert_eq!(progress.derivations()[0].status, DrvStatus::Succeeded);
        assert_eq!(progress.counts().done, 1);
    }
}
