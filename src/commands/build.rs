//! `rbtop build`: one job, headless. The log and compact progress go to
//! stdout as they come; Ctrl-C (or SIGTERM, SIGHUP) cancels the build the
//! way the dashboard's `x` does, and a second one skips the grace period.

use std::fmt::Write as _;

use crate::jobs::job::{Ended, Job};
use crate::jobs::launch::Placement;
use crate::jobs::progress::{DrvStatus, LineKind, Phase};
use crate::machines::Machine;
use crate::nix_text::strip_ansi;

/// The machine `--on NAME` means: its store URI exactly, else its host
/// (with or without `user@`). An unknown or ambiguous name is an error that
/// lists the choices.
pub fn find_machine<'m>(machines: &'m [Machine], name: &str) -> Result<&'m Machine, String> {
    if let Some(machine) = machines.iter().find(|m| m.uri() == name) {
        return Ok(machine);
    }
    let by_host: Vec<&Machine> = machines
        .iter()
        .filter(|m| {
            let host = m.store.host.as_deref();
            let user_host = m
                .store
                .user
                .as_deref()
                .zip(host)
                .map(|(u, h)| format!("{u}@{h}"));
            host == Some(name) || user_host.as_deref() == Some(name)
        })
        .collect();
    match by_host.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "--on {name}: no such machine; the machines are: {}",
            list(machines.iter())
        )),
        many => Err(format!(
            "--on {name}: {} machines match ({}); give the store URI",
            many.len(),
            list(many.iter().copied())
        )),
    }
}

fn list<'m>(machines: impl Iterator<Item = &'m Machine>) -> String {
    let uris: Vec<&str> = machines.map(Machine::uri).collect();
    if uris.is_empty() {
        "none".into()
    } else {
        uris.join(", ")
    }
}

/// Pinned to one machine: Nix may use only its line, and no local slot.
pub fn pinned(machine: &Machine) -> Placement {
    Placement::Pinned {
        uri: machine.uri().to_string(),
        line: machine.line.clone(),
    }
}

/// What has been printed of a job so far, to print only what is new.
#[derive(Debug, Default)]
pub struct Printer {
    next_seq: u64,
    phases: Vec<(Phase, Option<String>)>,
    colour: bool,
}

impl Printer {
    pub fn new(colour: bool) -> Printer {
        Printer {
            colour,
            ..Printer::default()
        }
    }

    /// New log lines and phase changes since the last call.
    pub fn update(&mut self, job: &Job) -> String {
        let mut out = String::new();
        if job.log.dropped() > self.next_seq {
            let missed = job.log.dropped() - self.next_seq;
            let _ = writeln!(
                out,
                "rbtop: {missed} lines not shown (all are in the log file)"
            );
            self.next_seq = job.log.dropped();
        }
        let derivations = job.progress.derivations();
        for entry in job.log.since(self.next_seq) {
            let text = if self.colour {
                entry.text.clone()
            } else {
                strip_ansi(&entry.text)
            };
            match entry.drv.and_then(|i| derivations.get(i)) {
                Some(drv) if entry.kind == LineKind::Build => {
                    let _ = writeln!(out, "{}> {text}", drv.name());
                }
                _ => {
                    let _ = writeln!(out, "{text}");
                }
            }
            self.next_seq = entry.seq + 1;
        }
        for (i, drv) in derivations.iter().enumerate() {
            let now = (drv.phase, drv.machine.clone());
            if self.phases.get(i) == Some(&now) {
                continue;
            }
            if i >= self.phases.len() {
                self.phases.resize(i + 1, (Phase::Queued, None));
            }
            self.phases[i] = now;
            if drv.phase == Phase::Finished {
                continue;
            }
            let on = drv
                .machine
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            let _ = writeln!(out, "rbtop: {}: {}{on}", drv.name(), drv.phase.label());
        }
        out
    }
}

/// Lines of a failed derivation repeated at the end.
const LAST_LINES: usize = 10;

/// The closing lines: outputs, Nix's error and status, or what a cancel did.
pub fn summary(job: &Job) -> String {
    let mut out = String::new();
    let elapsed = job.elapsed(job.ended.unwrap_or(job.started));
    let secs = elapsed.as_secs_f64();
    match job.ended() {
        Some(Ended::Succeeded) => {
            let _ = writeln!(out, "rbtop: build succeeded in {secs:.1} s");
            for path in &job.outputs {
                let _ = writeln!(out, "{path}");
            }
        }
        Some(Ended::Failed { exit_code, error }) => {
            let _ = writeln!(
                out,
                "rbtop: build failed in {secs:.1} s: {} exited with {exit_code}",
                job.argv[0]
            );
            if let Some(error) = error {
                let _ = writeln!(out, "rbtop: {error}");
            }
            for (index, drv) in job.progress.derivations().iter().enumerate() {
                let DrvStatus::Failed { exit_code, .. } = &drv.status else {
                    continue;
                };
                let code = exit_code.map_or(String::new(), |c| format!(", builder exit code {c}"));
                let on = drv.machine.as_deref().unwrap_or("this machine");
                let _ = writeln!(
                    out,
                    "rbtop: {} failed on {on}{code}; its last lines:",
                    drv.name()
                );
                for line in job.log.last_build_lines(Some(index), LAST_LINES) {
                    let _ = writeln!(out, "  {}", strip_ansi(line));
                }
            }
        }
        Some(Ended::Cancelled) => {
            let _ = writeln!(out, "rbtop: build cancelled after {secs:.1} s");
        }
        Some(Ended::LaunchFailed(why)) => {
            let _ = writeln!(out, "rbtop: cannot start {}: {why}", job.argv[0]);
        }
        None => {}
    }
    if let Some(path) = &job.log_file {
        let _ = writeln!(out, "rbtop: full log: {}", path.display());
    }
    out
}
