//! `rbtop log [FILE | -] [--json]`: follow the internal-json log of a build
//! rbtop did not start (a CI job, a colleague's terminal, a saved log) and
//! print what `rbtop build` prints, until the input ends.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::Instant;

use futures_util::FutureExt;
use rbtop::jobs::job::{Event, Job, JobEnd, JobId};
use rbtop::jobs::progress::{DrvStatus, Phase};
use rbtop::jobs::runner::Lines;
use rbtop::nix_text::strip_ansi;
use rbtop::sanitize::for_terminal_lines;
use serde_json::json;
use tokio::io::AsyncRead;

use super::build::{Printer, failed_derivations};
use crate::cli::LogArgs;
use crate::config::Settings;
use crate::setup;

/// Lines read between two prints while the input keeps coming (it is
/// printed at once whenever the input pauses).
const PRINT_EVERY: u32 = 4096;

/// `rbtop log`: read the log, print as it goes (or JSON at the end).
pub fn run(settings: &Settings, args: &LogArgs) -> ExitCode {
    let name = match &args.file {
        Some(path) if path.as_os_str() != "-" => path.display().to_string(),
        _ => "-".to_string(),
    };
    let Some(runtime) = setup::runtime() else {
        return ExitCode::from(2);
    };
    // Keep at least a print's worth of lines: nothing read between two
    // prints is dropped from the output.
    let line_cap = settings.jobs.line_cap.max(PRINT_EVERY as usize);
    runtime.block_on(async {
        let job = if name == "-" {
            follow(&name, tokio::io::stdin(), line_cap, args.json).await
        } else {
            match tokio::fs::File::open(&name).await {
                Ok(file) => follow(&name, file, line_cap, args.json).await,
                Err(e) => return setup::usage_error(&format!("cannot read {name}: {e}")),
            }
        };
        let mut stdout = std::io::stdout().lock();
        let text = if args.json {
            format!("{}\n", render_json(&job))
        } else {
            summary(&job)
        };
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        ExitCode::from(exit_status(&job))
    })
}

/// Read `input` to its end into a read-only job, printing progress (unless
/// `quiet`) whenever the input pauses and every [`PRINT_EVERY`] lines.
async fn follow<R: AsyncRead + Unpin>(name: &str, input: R, line_cap: usize, quiet: bool) -> Job {
    let mut job = Job::reading(JobId(1), name, line_cap, Instant::now());
    let mut lines = Lines::new(input);
    let mut printer = Printer::new(std::io::stdout().is_terminal());
    let mut unprinted = 0u32;
    loop {
        // Print what is pending before waiting on a quiet input.
        let next = match lines.next().now_or_never() {
            Some(next) => next,
            None => {
                if !quiet && unprinted > 0 {
                    print(&printer.update(&job));
                    unprinted = 0;
                }
                lines.next().await
            }
        };
        let Some(line) = next else { break };
        job.handle(Event::Stderr(line), Instant::now());
        unprinted += 1;
        if unprinted >= PRINT_EVERY {
            if !quiet {
                print(&printer.update(&job));
            }
            unprinted = 0;
        }
    }
    job.handle(Event::InputEnded, Instant::now());
    if !quiet {
        print(&printer.update(&job));
    }
    job
}

fn print(text: &str) {
    if text.is_empty() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// 0 when nothing failed, 1 when something did.
pub fn exit_status(job: &Job) -> u8 {
    match job.ended() {
        Some(JobEnd::Succeeded) => 0,
        _ => 1,
    }
}

/// A derivation's status as `--json` names it.
fn status_word(status: &DrvStatus) -> &'static str {
    match status {
        DrvStatus::Planned => "planned",
        DrvStatus::Running => "running",
        DrvStatus::Succeeded => "succeeded",
        DrvStatus::Failed { .. } => "failed",
        DrvStatus::Stopped => "stopped",
    }
}

/// The closing lines: how many derivations ended how, the error that ended
/// the build, and each failed derivation's last lines.
pub fn summary(job: &Job) -> String {
    let mut out = String::new();
    let counts = counts(job);
    let listed: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(word, n)| format!("{n} {word}"))
        .collect();
    let verdict = match job.ended() {
        Some(JobEnd::Succeeded) => "nothing failed",
        _ => "failed",
    };
    let _ = writeln!(
        out,
        "rbtop: log ended, {verdict}: {}",
        if listed.is_empty() {
            "no derivations".to_string()
        } else {
            listed.join(", ")
        }
    );
    if let Some(JobEnd::Failed {
        error: Some(error), ..
    }) = job.ended()
    {
        let _ = writeln!(out, "rbtop: {}", for_terminal_lines(error));
    }
    out.push_str(&failed_derivations(job));
    out
}

/// Derivations per status, in the order `--json` gives them.
fn counts(job: &Job) -> [(&'static str, usize); 5] {
    let mut counts = [
        ("planned", 0),
        ("running", 0),
        ("succeeded", 0),
        ("failed", 0),
        ("stopped", 0),
    ];
    for drv in job.progress.derivations() {
        let word = status_word(&drv.status);
        if let Some(entry) = counts.iter_mut().find(|(w, _)| *w == word) {
            entry.1 += 1;
        }
    }
    counts
}

/// `{"derivations": [...], "counts": {...}, "errors": [...], "warnings": [...]}`.
pub fn render_json(job: &Job) -> serde_json::Value {
    let derivations: Vec<serde_json::Value> = job
        .progress
        .derivations()
        .iter()
        .map(|drv| {
            let exit_code = match &drv.status {
                DrvStatus::Failed { exit_code, .. } => *exit_code,
                _ => None,
            };
            // Nix's phase name when the builder announced one, else where
            // rbtop saw it last (never for one that did not start).
            let phase = drv.builder_phase.clone().or_else(|| {
                (drv.status != DrvStatus::Planned && drv.phase != Phase::Finished)
                    .then(|| drv.phase.label().to_string())
            });
            json!({
                "drv": drv.drv,
                "name": drv.name(),
                "host": drv.machine,
                "status": status_word(&drv.status),
                "exit_code": exit_code,
                "phase": phase,
            })
        })
        .collect();
    let counts: serde_json::Map<String, serde_json::Value> = counts(job)
        .into_iter()
        .map(|(word, n)| (word.to_string(), json!(n)))
        .collect();
    let plain = |texts: &[String]| texts.iter().map(|t| strip_ansi(t)).collect::<Vec<_>>();
    json!({
        "derivations": derivations,
        "counts": counts,
        "errors": plain(job.progress.errors()),
        "warnings": plain(job.progress.warnings()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/00000000000000000000000000000000-a.drv";

    fn read(lines: &[String]) -> Job {
        let now = Instant::now();
        let mut job = Job::reading(JobId(1), "-", 100, now);
        for line in lines {
            job.handle(Event::Stderr(line.clone()), now);
        }
        job.handle(Event::InputEnded, now);
        job
    }

    fn msg(level: u8, text: &str) -> String {
        format!(
            "@nix {}",
            json!({"action": "msg", "level": level, "msg": text})
        )
    }

    #[test]
    fn a_failed_log_names_its_reason_and_exits_1() {
        let job = read(&[
            format!(
                r#"@nix {{"action":"start","fields":["{A}","ssh://b1",1,1],"id":5,"level":3,"text":"building","type":105}}"#
            ),
            r#"@nix {"action":"result","fields":["compiling"],"id":5,"type":101}"#.to_string(),
            msg(
                0,
                "warning: ignoring the client-specified setting 'builders'",
            ),
            msg(
                0,
                &format!(
                    "error: build of '{A}' on 'ssh://b1' failed: builder for '{A}' failed with exit code 3"
                ),
            ),
        ]);
        assert_eq!(exit_status(&job), 1);
        let text = summary(&job);
        assert!(
            text.starts_with("rbtop: log ended, failed: 1 failed\nrbtop: error: build of"),
            "{text}"
        );
        assert!(
            text.contains(
                "rbtop: a failed on ssh://b1, builder exit code 3; its last lines:\n  compiling\n"
            ),
            "{text}"
        );
        let json = render_json(&job);
        assert_eq!(json["derivations"][0]["host"], "ssh://b1");
        assert_eq!(json["derivations"][0]["exit_code"], 3);
        assert_eq!(json["derivations"][0]["status"], "failed");
        assert_eq!(json["counts"]["failed"], 1);
        assert_eq!(json["warnings"].as_array().unwrap().len(), 1);
        assert_eq!(json["errors"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_log_with_only_warnings_did_not_fail() {
        let job = read(&[msg(0, "warning: you don't have Internet access")]);
        assert_eq!(exit_status(&job), 0);
        assert_eq!(
            summary(&job),
            "rbtop: log ended, nothing failed: no derivations\n"
        );
    }

    #[test]
    fn a_local_build_has_no_host_and_an_unfinished_one_is_stopped() {
        let job = read(&[format!(
            r#"@nix {{"action":"start","fields":["{A}","",1,1],"id":5,"level":3,"text":"building","type":105}}"#
        )]);
        let json = render_json(&job);
        assert_eq!(json["derivations"][0]["host"], serde_json::Value::Null);
        assert_eq!(json["derivations"][0]["status"], "stopped");
        assert_eq!(exit_status(&job), 0);
    }
}
