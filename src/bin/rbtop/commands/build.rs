//! `rbtop build`: one job, headless. The log and compact progress go to
//! stdout as they come; Ctrl-C (or SIGTERM, SIGHUP) cancels the build the
//! way the dashboard's `x` does, and a second one skips the grace period.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rbtop::jobs::job::{Job, JobEnd};
use rbtop::jobs::launch::{BuildTool, LaunchRequest, Placement};
use rbtop::jobs::progress::{Counts, DrvStatus, LineKind, Phase};
use rbtop::jobs::runner::{JobSettings, Supervisor, lock};
use rbtop::machines::Machine;
use rbtop::nix_text::strip_ansi;
use rbtop::sanitize::{for_build_log, for_terminal, for_terminal_lines};

use crate::cli::BuildArgs;
use crate::config::Settings;
use crate::setup;

/// `rbtop build`: launch the build, print as it goes, cancel on a signal.
pub fn run(settings: &Settings, args: &BuildArgs) -> ExitCode {
    let tool = match args.command.as_deref().map(BuildTool::parse) {
        None => settings.jobs.tool,
        Some(Ok(tool)) => tool,
        Some(Err(e)) => return setup::usage_error(&format!("--command: {e}")),
    };
    let (extra_args, resolved) = match setup::headless(settings) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let machines = resolved.parsed.machines;
    let placement = match &args.on {
        Some(name) => match rbtop::machines::find(&machines, name) {
            Ok(machine) => Placement::pinned(machine),
            Err(e) => return setup::usage_error(&format!("--on {name}: {e}")),
        },
        None => Placement::fleet(&settings.source),
    };
    let request = LaunchRequest {
        args: args.args.clone(),
        placement,
        tool,
    };
    let jobs = settings.job_settings(settings.ssh_settings(extra_args));
    let Some(runtime) = setup::runtime() else {
        return ExitCode::from(1);
    };
    runtime.block_on(follow(jobs, machines, request, settings.jobs.stall_after))
}

/// Launch `request` and print its progress until it ends; the first
/// Ctrl-C, SIGTERM or SIGHUP cancels it, a second one skips the grace.
async fn follow(
    jobs: JobSettings,
    machines: Vec<Machine>,
    request: LaunchRequest,
    stall_after: Duration,
) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut supervisor, mut changed) = Supervisor::new(jobs, machines);
    let id = match supervisor.launch(request) {
        Ok(id) => id,
        Err(e) => return setup::usage_error(&e),
    };
    let job = supervisor.job(id).expect("just launched").clone();
    if let Some(path) = &lock(&job).log_file {
        say!("rbtop: log file: {}", path.display());
    }
    let mut printer = Printer::new(std::io::stdout().is_terminal());
    let mut stop_signals = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ]
    .map(|kind| signal(kind).ok());
    let mut cancels = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let stop = async {
            let waits: Vec<_> = stop_signals
                .iter_mut()
                .flatten()
                .map(|s| Box::pin(s.recv()))
                .collect();
            // select_all of nothing would panic: no handler, no signal.
            if waits.is_empty() {
                std::future::pending::<()>().await;
            }
            futures_util::future::select_all(waits).await;
        };
        tokio::select! {
            Some(_) = changed.recv() => {
                // Take every pending change at once: one print per burst.
                while changed.try_recv().is_ok() {}
                let (text, finished) = {
                    let job = lock(&job);
                    (printer.update(&job), job.is_finished())
                };
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
                if finished {
                    break;
                }
            }
            _ = tick.tick() => {
                let text = printer.stall_check(&lock(&job), Instant::now(), stall_after);
                let _ = std::io::stdout().write_all(text.as_bytes());
            }
            _ = stop => {
                cancels += 1;
                say!(
                    "rbtop: cancelling the build{}",
                    if cancels == 1 { " (again to stop waiting for it)" } else { "" }
                );
                supervisor.cancel(id);
            }
        }
    }
    let job = lock(&job);
    let _ = std::io::stdout().write_all(summary(&job).as_bytes());
    ExitCode::from(job.exit_status().unwrap_or(1))
}

/// What has been printed of a job so far, to print only what is new.
#[derive(Debug, Default)]
pub struct Printer {
    next_seq: u64,
    phases: Vec<(Phase, Option<String>)>,
    counts: Counts,
    /// The job was reported stalled (and has printed nothing since).
    stalled: bool,
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
            // As `nix build -L`: colour kept, every other escape removed.
            let text = for_build_log(&entry.text);
            let text = if self.colour {
                text.into_owned()
            } else {
                strip_ansi(&text)
            };
            match entry.drv.and_then(|i| derivations.get(i)) {
                Some(drv) if entry.kind == LineKind::Build => {
                    let _ = writeln!(out, "{}> {text}", for_terminal(drv.name()));
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
                .map(|m| format!(" ({})", for_terminal(m)))
                .unwrap_or_default();
            let label = if drv.status == DrvStatus::Planned {
                "planned"
            } else {
                drv.phase.label()
            };
            let _ = writeln!(out, "rbtop: {}: {label}{on}", for_terminal(drv.name()));
        }
        let counts = job.progress.counts();
        if counts != self.counts && counts.expected > 1 {
            let _ = writeln!(
                out,
                "rbtop: {}/{} built, {} running{}",
                counts.done,
                counts.expected,
                counts.running,
                if counts.failed > 0 {
                    format!(", {} failed", counts.failed)
                } else {
                    String::new()
                }
            );
        }
        self.counts = counts;
        out
    }

    /// A line when the job has printed nothing for `after` (once per
    /// silence), for the clock tick of a headless build.
    pub fn stall_check(&mut self, job: &Job, now: Instant, after: Duration) -> String {
        let quiet = job.quiet_for(now);
        if job.is_finished() || quiet < after {
            self.stalled = false;
            return String::new();
        }
        if std::mem::replace(&mut self.stalled, true) {
            return String::new();
        }
        format!("rbtop: stalled: no log line for {} s\n", quiet.as_secs())
    }
}

/// Each failed derivation, where and with what code, and its last lines.
pub fn failed_derivations(job: &Job) -> String {
    let mut out = String::new();
    for (index, drv) in job.progress.derivations().iter().enumerate() {
        let DrvStatus::Failed { exit_code, .. } = &drv.status else {
            continue;
        };
        let code = exit_code.map_or(String::new(), |c| format!(", builder exit code {c}"));
        let on = drv
            .machine
            .as_deref()
            .map_or("this machine".into(), for_terminal);
        let _ = writeln!(
            out,
            "rbtop: {} failed on {on}{code}; its last lines:",
            for_terminal(drv.name())
        );
        for line in job.log.last_build_lines(Some(index), LAST_LINES) {
            let _ = writeln!(out, "  {}", strip_ansi(&for_build_log(line)));
        }
    }
    out
}

/// Lines of a failed derivation repeated at the end.
const LAST_LINES: usize = 10;

/// The closing lines: outputs, Nix's error and status, or what a cancel did.
pub fn summary(job: &Job) -> String {
    let mut out = String::new();
    let elapsed = job.elapsed(job.ended.unwrap_or(job.started));
    let secs = elapsed.as_secs_f64();
    match job.ended() {
        Some(JobEnd::Succeeded) => {
            let _ = writeln!(out, "rbtop: build succeeded in {secs:.1} s");
            for path in &job.outputs {
                let _ = writeln!(out, "{path}");
            }
        }
        Some(JobEnd::Failed { exit_code, error }) => {
            let _ = writeln!(
                out,
                "rbtop: build failed in {secs:.1} s: {} exited with {exit_code}",
                job.argv[0]
            );
            if let Some(error) = error {
                let _ = writeln!(out, "rbtop: {}", for_terminal_lines(error));
            }
            out.push_str(&failed_derivations(job));
        }
        Some(JobEnd::Cancelled) => {
            let _ = writeln!(out, "rbtop: build cancelled after {secs:.1} s");
        }
        Some(JobEnd::LaunchFailed(why)) => {
            let _ = writeln!(out, "rbtop: cannot start {}: {why}", job.argv[0]);
        }
        None => {}
    }
    if let Some(path) = &job.log_file {
        let _ = writeln!(out, "rbtop: full log: {}", path.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbtop::jobs::job::{Event, Graces, JobId};
    use rbtop::jobs::launch::{BuildTool, LaunchRequest};

    fn job(now: Instant) -> Job {
        let request = LaunchRequest {
            args: vec!["x.nix".into()],
            placement: Placement::Fleet { builders: None },
            tool: BuildTool::NixBuild,
        };
        Job::new(
            JobId(1),
            request,
            vec!["nix".into()],
            3,
            Graces::default(),
            now,
        )
    }

    const BUILD: &str = r#"@nix {"action":"start","fields":["/nix/store/00000000000000000000000000000000-a.drv","ssh://b1",1,1],"id":5,"level":3,"text":"building 'a' on 'ssh://b1'","type":105}"#;

    fn line(n: u32) -> String {
        format!(
            r#"@nix {{"action":"result","fields":["\u001b[1mline {n}\u001b[0m"],"id":5,"type":101}}"#
        )
    }

    #[test]
    fn prints_new_lines_phases_and_what_the_cap_dropped() {
        let now = Instant::now();
        let mut job = job(now);
        let mut printer = Printer::new(false);
        job.handle(Event::Spawned { pid: 1 }, now);
        job.handle(Event::Stderr(BUILD.into()), now);
        job.handle(Event::Stderr(line(1)), now);
        assert_eq!(
            printer.update(&job),
            "building 'a' on 'ssh://b1'\na> line 1\nrbtop: a: building (ssh://b1)\n"
        );
        assert_eq!(printer.update(&job), "", "nothing new, nothing printed");
        for n in 2..=6 {
            job.handle(Event::Stderr(line(n)), now);
        }
        // The cap is 3 lines: 2 of the 5 new ones are only in the file.
        assert_eq!(
            printer.update(&job),
            "rbtop: 2 lines not shown (all are in the log file)\na> line 4\na> line 5\na> line 6\n"
        );
    }

    #[test]
    fn colour_is_kept_only_when_asked() {
        let now = Instant::now();
        let mut job = job(now);
        job.handle(Event::Stderr(BUILD.into()), now);
        job.handle(Event::Stderr(line(1)), now);
        assert!(Printer::new(true).update(&job).contains("\x1b[1mline 1"));
    }

    #[test]
    fn a_stall_is_reported_once_per_silence() {
        let now = Instant::now();
        let mut job = job(now);
        let mut printer = Printer::new(false);
        job.handle(Event::Spawned { pid: 1 }, now);
        let after = Duration::from_secs(600);
        assert_eq!(
            printer.stall_check(&job, now + Duration::from_secs(599), after),
            ""
        );
        let later = now + Duration::from_secs(601);
        assert_eq!(
            printer.stall_check(&job, later, after),
            "rbtop: stalled: no log line for 601 s\n"
        );
        assert_eq!(printer.stall_check(&job, later, after), "");
    }

    #[test]
    fn summary_of_a_failure_repeats_the_failed_derivations_last_lines() {
        let now = Instant::now();
        let mut job = job(now);
        job.handle(Event::Spawned { pid: 1 }, now);
        job.handle(Event::Stderr(BUILD.into()), now);
        job.handle(Event::Stderr(line(1)), now);
        job.handle(
            Event::Stderr(r#"@nix {"action":"msg","level":0,"msg":"error: build of '/nix/store/00000000000000000000000000000000-a.drv' on 'ssh://b1' failed: builder for '/nix/store/00000000000000000000000000000000-a.drv' failed with exit code 3"}"#.into()),
            now,
        );
        job.handle(
            Event::Exited {
                code: Some(1),
                signal: None,
            },
            now,
        );
        let text = summary(&job);
        assert!(text.contains("nix exited with 1"), "{text}");
        assert!(
            text.contains(
                "rbtop: a failed on ssh://b1, builder exit code 3; its last lines:\n  line 1\n"
            ),
            "{text}"
        );
    }
}
