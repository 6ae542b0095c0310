//! One ControlMaster per builder, kept open for later refreshes and closed
//! (master told to exit, control directory removed) on [`HostSession::close`]
//! or drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::argv;
use super::known_hosts::{self, SshDestination};
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
    /// `None` once a session owns it.
    dir: Option<TempDir>,
    path: PathBuf,
}

impl PendingDir {
    pub fn create(settings: &SshSettings) -> Result<PendingDir, ConnectError> {
        // Private: it holds the control socket (ssh also checks the peer's uid).
        let dir = tempfile::Builder::new()
            .prefix("rbtop-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&settings.control_parent)
            .map_err(|e| {
                ConnectError::Local(format!(
                    "cannot create a control directory in {}: {e}",
                    settings.control_parent.display()
                ))
            })?;
        Ok(PendingDir {
            path: dir.path().to_path_buf(),
            dir: Some(dir),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn socket(&self) -> PathBuf {
        self.path.join("master")
    }

    /// What ssh has written so far: its log, then its own stderr (where
    /// it complains before the log is open, e.g. of a bad `-o` option in
    /// `NIX_SSHOPTS`). The end of each, bounded.
    pub fn log(&self) -> String {
        let mut log = read_tail(&self.path.join("log"));
        log.push_str(&read_tail(&self.path.join("stderr")));
        log
    }

    /// Hand the directory to a session, which closes the master on drop.
    fn into_owned(mut self) -> TempDir {
        self.dir.take().expect("owned once")
    }
}

impl Drop for PendingDir {
    /// A deadline can land after `ssh -f` forked but before rbtop saw it:
    /// the master is then up with nobody to close it. Tell it to go before
    /// its socket is removed with the directory.
    fn drop(&mut self) {
        let socket = self.socket();
        if self.dir.is_some() && socket.exists() {
            let _ = openssh_mux_client::shutdown_mux_master(&socket);
        }
    }
}

/// How long closing a master may take before it is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A live ControlMaster to one builder.
pub struct HostSession {
    session: Arc<openssh::Session>,
    control_dir: PathBuf,
    /// The master's pid, from the mux protocol: the last resort when it does
    /// not answer a polite request to exit.
    master_pid: Option<u32>,
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
        // A file, not a pipe: the forked master keeps the descriptor open,
        // and a pipe would never end.
        let stderr = std::fs::File::create(dir.join("stderr"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let status = tokio::process::Command::new(&settings.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // A deadline that drops this future kills ssh before it forks.
            .kill_on_drop(true)
            .status()
            .await
            .map_err(|e| {
                ConnectError::Local(format!("cannot run {}: {e}", settings.program.display()))
            })?;
        let connect_time = started.elapsed();
        if !status.success() {
            let log = pending.as_ref().map(PendingDir::log).unwrap_or_default();
            return Err(ConnectError::Ssh {
                log,
                pinned: pin_file.is_some(),
            });
        }
        // From here the session owns the directory and closes the master on drop.
        let pending = pending.take().expect("a pending control dir");
        let socket = pending.socket();
        let session = Arc::new(openssh::Session::new_native_mux(pending.into_owned()));
        let master_pid = master_pid(&socket).await;
        Ok(HostSession {
            session,
            control_dir: dir,
            master_pid,
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
        read_tail(&self.control_dir.join("log"))
    }

    /// Tell the master to exit and remove the control directory; kill the
    /// master if it does not answer within `CLOSE_GRACE`. Runs on its own
    /// thread, so cancelling the caller cannot leave it half done.
    pub async fn close(self) {
        let HostSession {
            session,
            control_dir,
            master_pid,
            ..
        } = self;
        // Dropping the last handle asks the master to stop and removes the directory.
        let closing = tokio::task::spawn_blocking(move || drop(session));
        if tokio::time::timeout(CLOSE_GRACE, closing).await.is_err() {
            tracing::warn!(?master_pid, "ssh master did not close; killing it");
            if let Some(pid) = master_pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
                // SAFETY: kill(2) with a pid and a signal number touches no memory.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let _ = std::fs::remove_dir_all(control_dir);
        }
    }
}

/// The last [`SSH_LOG_KEPT`] bytes of one of ssh's files (a server's banner
/// or a chatty master can make them long), from a line start where it can.
fn read_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let keep = SSH_LOG_KEPT as u64;
    let cut = len > keep;
    if cut && file.seek(SeekFrom::Start(len - keep)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.take(keep).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match text.find('\n') {
        Some(at) if cut => text[at + 1..].to_string(),
        _ => text,
    }
}

/// How much of ssh's log and stderr is read back.
const SSH_LOG_KEPT: usize = 64 * 1024;

/// The master's pid, asked over its control socket.
async fn master_pid(socket: &Path) -> Option<u32> {
    let mut connection = openssh_mux_client::Connection::connect(socket).await.ok()?;
    let pid = connection.send_alive_check().await.ok()?;
    Some(pid.get())
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
    let resolved = SshDestination::parse(&dump).ok_or_else(|| {
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
