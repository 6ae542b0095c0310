//! Logs go to a daily-rotated file under the XDG state dir, never to the
//! terminal (the TUI owns it).

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;

/// Days of log files kept before the oldest is deleted.
pub const KEEP_DAYS: usize = 14;

/// `$XDG_STATE_HOME/rbtop` (default `~/.local/state/rbtop`).
pub fn default_directory() -> Option<PathBuf> {
    rbtop::state_directory()
}

/// Logging as started for this run: keep it alive until exit so buffered
/// lines are flushed.
pub struct Started {
    guard: Option<WorkerGuard>,
    directory: Option<PathBuf>,
}

impl Started {
    /// Where the log goes, when logging could start.
    pub fn directory(&self) -> Option<PathBuf> {
        self.guard.as_ref().and(self.directory.clone())
    }
}

/// Start logging as the settings say. A bad filter is an error (a usage
/// error for the caller); a directory that cannot be written only disables
/// logging, said once on stderr: a read-only home must not stop a check.
pub fn start(settings: &crate::config::Settings) -> Result<Started, String> {
    let filter = parse_filter(&settings.log_filter)?;
    let directory = settings.log_directory.clone().or_else(default_directory);
    let guard = directory
        .as_deref()
        .and_then(|dir| match init(filter, dir) {
            Ok(guard) => Some(guard),
            Err(e) => {
                say!("rbtop: logging disabled: {e}");
                None
            }
        });
    Ok(Started { guard, directory })
}

/// Check a filter such as `info` or `rbtop=debug,warn` before anything runs.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(filter).map_err(|e| format!("invalid log filter '{filter}': {e}"))
}

/// Start logging to `<dir>/rbtop.<date>.log`. Keep the guard alive until exit
/// so buffered lines are flushed.
pub fn init(filter: EnvFilter, directory: &Path) -> Result<WorkerGuard, String> {
    rbtop::private_directory(directory)
        .map_err(|e| format!("cannot create log directory {}: {e}", directory.display()))?;
    // tracing-appender creates its files with the process's umask: 0600 for
    // the one it opens now. (Tomorrow's, after rotation, follow the umask,
    // but sit in this 0700 directory.) Logging starts before any thread.
    let old_umask = unsafe { libc::umask(0o077) };
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("rbtop")
        .filename_suffix("log")
        .max_log_files(KEEP_DAYS)
        .build(directory);
    unsafe { libc::umask(old_umask) };
    let appender =
        appender.map_err(|e| format!("cannot open a log file in {}: {e}", directory.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(guard)
}
