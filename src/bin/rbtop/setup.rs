//! What every command starts with once its settings are known: the machines
//! as Nix reads them, `NIX_SSHOPTS`, the async runtime, and the one way a
//! usage error ends a command.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use rbtop::machines::Machine;
use rbtop::nixconf::NixConfEnv;
use rbtop::probe::HostReport;
use rbtop::probe::{ProbeSettings, probe_once, raise_open_file_limit};
use rbtop::sources::{self, Resolved, SourceChoice};

use crate::commands::machines;
use crate::config::Settings;
use crate::signals::shutdown_signal;

/// Exit status for bad flags, a bad config file or a bad log filter.
pub const USAGE: u8 = 2;

/// Say what is wrong on stderr; the exit status of a usage error.
pub fn usage_error(message: &str) -> ExitCode {
    say!("rbtop: {}", rbtop::sanitize::for_terminal_lines(message));
    ExitCode::from(USAGE)
}

/// Read the machines as Nix would; a usage error when a `--machines` file
/// does not exist.
pub fn resolve_machines(settings: &Settings) -> Result<Resolved, ExitCode> {
    // Only a file that is not there is a usage error; a symlink loop, a
    // FIFO or a directory is reported by the reader, by what it is.
    if let SourceChoice::File(path) = &settings.source
        && std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(usage_error(&format!(
            "machines file {} does not exist",
            path.display()
        )));
    }
    let (local_nix, lix) = rbtop::nix_version::local_with_flavour();
    let resolved = sources::resolve_as(
        &settings.source,
        &NixConfEnv::from_process(),
        local_nix,
        lix,
    );
    tracing::info!(
        machines = resolved.parsed.machines.len(),
        diagnostics = resolved.parsed.diagnostics.len(),
        "machines resolved"
    );
    Ok(resolved)
}

/// What every headless command that reaches builders starts with:
/// `NIX_SSHOPTS` (its warnings on stderr) and the machines, with their
/// problems printed on stderr.
pub fn headless(settings: &Settings) -> Result<(Vec<String>, Resolved), ExitCode> {
    let extra_args = settings
        .ssh_extra_args(|warning| say!("rbtop: warning: {warning}"))
        .map_err(|e| usage_error(&e))?;
    let resolved = resolve_machines(settings)?;
    let _ = std::io::stderr().write_all(machines::render_diagnostics(&resolved).as_bytes());
    Ok((extra_args, resolved))
}

/// With no machine configured, say on stderr where rbtop looked and how
/// to add one; returns whether that was the case.
pub fn say_if_no_machines(resolved: &Resolved) -> bool {
    let empty = resolved.parsed.machines.is_empty();
    if empty {
        let help = machines::render_empty(resolved);
        let _ = std::io::stderr().write_all(help.as_bytes());
    }
    empty
}

/// One thread is plenty: the work is waiting on sockets and child processes.
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .inspect_err(|e| say!("rbtop: cannot start the async runtime: {e}"))
        .ok()
}

/// Why a headless probe of the fleet ended without reports.
pub enum ProbeStopped {
    /// A signal: every session was closed; exit with this status.
    Interrupted(ExitCode),
    /// The async runtime could not start (already said on stderr).
    NoRuntime,
}

/// `probed 7/9 · waiting for hung, slow`, cut to `width` with `…`: the
/// hosts still pending are the ones worth knowing about.
pub fn progress_line(done: usize, total: usize, waiting: &[&str], width: usize) -> String {
    let mut line = format!("probed {done}/{total}");
    if !waiting.is_empty() && done < total {
        line.push_str(&format!(" · waiting for {}", waiting.join(", ")));
    }
    // One column spare: a line filling the terminal would wrap the cursor.
    let room = width.saturating_sub(1);
    if line.chars().count() > room {
        line = line.chars().take(room.saturating_sub(1)).collect();
        line.push('…');
    }
    line
}

/// Probe `machines` at once for a headless command, with a progress count
/// on stderr when it is a terminal and `show_progress`.
pub fn probe_headless(
    machines: &[Machine],
    settings: ProbeSettings,
    show_progress: bool,
) -> Result<Vec<HostReport>, ProbeStopped> {
    if let Some(warning) = raise_open_file_limit(machines.len()) {
        tracing::warn!("{warning}");
        say!("rbtop: warning: {warning}");
    }
    let runtime = runtime().ok_or(ProbeStopped::NoRuntime)?;
    let show_progress = show_progress && std::io::stderr().is_terminal();
    let width = crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w));
    let mut pending = vec![true; machines.len()];
    let progress = |p: rbtop::probe::Progress| {
        if let Some(slot) = pending.get_mut(p.index) {
            *slot = false;
        }
        if show_progress {
            // Host names come from the machines file: shown, never obeyed.
            let waiting: Vec<String> = machines
                .iter()
                .zip(&pending)
                .filter(|(_, pending)| **pending)
                .map(|(m, _)| rbtop::sanitize::for_terminal(m.host_name()).into_owned())
                .collect();
            let waiting: Vec<&str> = waiting.iter().map(String::as_str).collect();
            say_inline!(
                "\r\x1b[K{}",
                progress_line(p.done, p.total, &waiting, width)
            );
        }
    };
    let reports = runtime.block_on(probe_once(machines, settings, progress, shutdown_signal()));
    if show_progress {
        say_inline!("\r\x1b[K");
    }
    reports.map_err(|signal| {
        say!("rbtop: interrupted; every SSH session closed");
        ProbeStopped::Interrupted(ExitCode::from(signal.exit_status()))
    })
}

#[cfg(test)]
mod tests {
    use super::progress_line;

    #[test]
    fn progress_names_the_hosts_still_pending_within_the_width() {
        assert_eq!(
            progress_line(7, 9, &["hung", "slow"], 80),
            "probed 7/9 · waiting for hung, slow"
        );
        assert_eq!(progress_line(9, 9, &[], 80), "probed 9/9");
        let many: Vec<String> = (0..40).map(|i| format!("builder-{i:02}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let line = progress_line(0, 40, &names, 80);
        assert_eq!(line.chars().count(), 79, "{line}");
        assert!(line.ends_with('…'), "{line}");
    }
}
