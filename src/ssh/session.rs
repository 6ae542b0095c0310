//! One ControlMaster per builder, kept open for later refreshes and closed
//! (master told to exit, control directory removed) on [`HostSession::close`]
//! or drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::argv;
use super::known_hosts::{self, Resolved};
use super::options::SshSettings;
use super::target::SshTarget;

/// Why no session came up. `log` is ssh's own stderr, for classification.
#[derive(Debug)]
pub enum ConnectError {
    /// ssh ran and failed (refused, timeout, auth, host key, ...).
    Ssh { log: String, pinned: bool },
    /// rbtop could not run ssh or prepare its files.
    Local(String),
}

/// A control directory being set up. Kept by the caller while connecting so
/// that, if the caller's deadline cuts the attempt short, ssh's log can still
/// be read for the reason.
pub struct PendingDir {
    dir: TempDir,
}

impl PendingDir {
    pub fn create(settings: &SshSettings) -> Result<PendingDir, ConnectError> {
        let dir = tempfile::Builder::new()
            .prefix("rbtop-")
            .tempdir_in(&settings.control_parent)
            .map_err(|e| {
                ConnectError::Local(format!(
                    "cannot create a control directory in {}: {e}",
                    settings.control_parent.display()
                ))
            })?;
        Ok(PendingDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What ssh has written to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

/// A live ControlMaster to one builder.
pub struct HostSession {
    session: Arc<openssh::Session>,
    control_dir: PathBuf,
    /// TCP connect, key exchange and authentication.
    pub connect_time: Duration,
}

impl HostSession {
    /// Start the master. `pending` is the caller's; on success it is consumed
    /// into the session, which removes the directory when closed.
    pub async fn connect(
        target: &SshTarget,
        settings: &SshSettings,
        pending: &mut Option<PendingDir>,
    ) -> Result<HostSession, ConnectError> {
        let dir = pending
            .as_ref()
            .expect("a pending control dir")
            .path()
            .to_path_buf();
        let started = Instant::now();
        let pin_file = match &target.pinned_key {
            Some(pub_line) => Some(write_pin(target, settings, &dir, pub_line).await?),
            None => None,
        };
        let args = argv::master_args(target, settings, &dir, pin_file.as_deref());
        tracing::debug!(host = %target.host, ?args, "starting ssh master");
        let status = tokio::process::Command::new(&settings.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A deadline that drops this future kills ssh before it forks.
            .kill_on_drop(true)
            .status()
            .await
            .map_err(|e| {
                ConnectError::Local(format!("cannot run {}: {e}", settings.program.display()))
            })?;
        let connect_time = started.elapsed();
        let pending = pending.take().expect("a pending control dir");
        if !status.success() {
            return Err(ConnectError::Ssh {
                log: pending.log(),
                pinned: pin_file.is_some(),
            });
        }
        let session = openssh::Session::new_native_mux(pending.dir);
        Ok(HostSession {
            session: Arc::new(session),
            control_dir: dir,
            connect_time,
        })
    }

    pub fn session(&self) -> &Arc<openssh::Session> {
        &self.session
    }

    /// Whether the master still answers on its control socket.
    pub async fn is_alive(&self) -> bool {
        self.session.check().await.is_ok()
    }

    /// ssh's log for this session (the master keeps writing to it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.control_dir.join("log")).unwrap_or_default()
    }

    /// Tell the master to exit and remove the control directory.
    pub async fn close(self) {
        match Arc::try_unwrap(self.session) {
            Ok(session) => {
                if let Err(e) = session.close().await {
                    tracing::debug!("closing ssh master: {e}");
                }
            }
            // A channel still holds the session; dropping the last handle closes it.
            Err(shared) => drop(shared),
        }
    }
}

/// Write the pin under the name ssh will look up, found with `ssh -G`.
async fn write_pin(
    target: &SshTarget,
    settings: &SshSettings,
    dir: &Path,
    pub_line: &str,
) -> Result<PathBuf, ConnectError> {
    let output = tokio::process::Command::new(&settings.program)
        .args(argv::resolve_args(target, settings))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ConnectError::Local(format!("cannot run ssh -G: {e}")))?;
    let dump = String::from_utf8_lossy(&output.stdout);
    let resolved = Resolved::parse(&dump).ok_or_else(|| {
        ConnectError::Local(format!(
            "ssh -G could not resolve '{}': {}",
            target.host,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })?;
    let path = dir.join("pinned_host_key");
    let line = known_hosts::pin_line(&resolved.lookup_name(), pub_line);
    tracing::debug!(host = %target.host, pin = %line.trim(), "pinned host key");
    std::fs::write(&path, line)
        .map_err(|e| ConnectError::Local(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}
