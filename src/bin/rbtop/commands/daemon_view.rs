//! What `rbtop check` says of the nix-daemon's side: which account was
//! checked, and (run as root with a daemon) root's SSH view of each host,
//! checked beside the user's probe so it costs no extra wall time.

use std::thread::JoinHandle;

use serde::Serialize;

use rbtop::daemon_view::{
    DAEMON_ACCOUNT, DaemonHostView, DaemonSsh, IdentityFrom, LocalView, check_hosts,
};
use rbtop::machines::Machine;
use rbtop::probe::{HostReport, ProbeSettings, Status};

/// Root's view, being checked on its own thread.
pub struct Pending {
    thread: JoinHandle<Result<DaemonCheck, String>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

pub struct DaemonCheck {
    pub ssh: DaemonSsh,
    pub hosts: Vec<Option<DaemonHostView>>,
}

/// Start checking root's view when this process may (root, a daemon);
/// `None` otherwise.
pub fn start(view: &LocalView, machines: &[Machine], settings: &ProbeSettings) -> Option<Pending> {
    if !view.can_check_daemon() {
        return None;
    }
    let account = view.account.clone();
    let machines = machines.to_vec();
    let (timeout, concurrency) = (settings.timeout, settings.concurrency);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let ssh = DaemonSsh::detect(&account)?;
        let runtime = crate::setup::runtime().ok_or("cannot start the async runtime")?;
        let stopped = async {
            let _ = stopped.await;
        };
        let hosts = runtime
            .block_on(check_hosts(&machines, &ssh, timeout, concurrency, stopped))
            .ok_or("interrupted")?;
        Ok(DaemonCheck { ssh, hosts })
    });
    Some(Pending { thread, stop })
}

impl Pending {
    pub fn finish(self) -> Result<DaemonCheck, String> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err("the daemon's view check failed (see the log)".into()))
    }

    /// Stop it, its SSH sessions closed, and wait for that.
    pub fn cancel(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// `"checked_as"` in `rbtop check --json`.
#[derive(Debug, Serialize)]
pub struct CheckedAs {
    pub user: String,
    pub uid: u32,
    pub daemon_socket: Option<String>,
    /// The account the daemon's build hook connects as (null: no daemon).
    pub daemon_account: Option<&'static str>,
    /// Whether the daemon's view was checked (`daemon` on each SSH host).
    pub daemon_view_checked: bool,
    /// Where the daemon's SSH options were read, when checked.
    pub daemon_ssh_options: Option<String>,
    /// Why the daemon's view was not checked, or what to know of it.
    pub note: Option<String>,
}

impl CheckedAs {
    pub fn of(view: &LocalView, check: Option<&Result<DaemonCheck, String>>) -> CheckedAs {
        let note = match check {
            Some(Err(e)) => Some(format!("the daemon's view could not be checked: {e}")),
            _ => view.note(),
        };
        let checked = check.and_then(|c| c.as_ref().ok());
        CheckedAs {
            user: view.account.name.clone(),
            uid: view.account.uid,
            daemon_socket: view.daemon_socket.as_ref().map(|p| p.display().to_string()),
            daemon_account: view.daemon_socket.is_some().then_some(DAEMON_ACCOUNT),
            daemon_view_checked: checked.is_some(),
            daemon_ssh_options: checked.map(|c| c.ssh.source.clone()),
            note,
        }
    }
}

/// Whether the daemon's view, when checked, failed anywhere.
pub fn any_failed(check: Option<&Result<DaemonCheck, String>>) -> bool {
    check
        .and_then(|c| c.as_ref().ok())
        .is_some_and(|c| c.hosts.iter().flatten().any(|d| d.status != Status::Up))
}

/// The lines after the check table.
pub fn render(
    view: &LocalView,
    check: Option<&Result<DaemonCheck, String>>,
    machines: &[Machine],
    reports: &[HostReport],
) -> String {
    let mut out = String::new();
    match check {
        None => {
            if let Some(note) = view.note() {
                out.push_str(&format!("\n{note}\n"));
            }
        }
        Some(Err(e)) => out.push_str(&format!("\nthe daemon's view could not be checked: {e}\n")),
        Some(Ok(check)) => {
            out.push_str(&format!(
                "\nthe nix-daemon's view ({DAEMON_ACCOUNT}; {}):\n",
                check.ssh.source
            ));
            for ((m, r), d) in machines.iter().zip(reports).zip(&check.hosts) {
                let Some(d) = d else { continue };
                let identity = match (&d.identity, d.identity_from) {
                    (Some(path), IdentityFrom::Column3) => {
                        format!("identity {} (column 3)", path.display())
                    }
                    (Some(path), IdentityFrom::SshConfig) => {
                        format!("identity {} (ssh config)", path.display())
                    }
                    (None, IdentityFrom::Column3) => {
                        "identity: column 3's file does not exist".into()
                    }
                    (None, IdentityFrom::SshConfig) => {
                        format!("no identity file for {DAEMON_ACCOUNT}")
                    }
                };
                let host = m.host_name();
                if d.status == Status::Up {
                    out.push_str(&format!("{host}: up, {identity}\n"));
                } else {
                    let reason = d.reason.as_deref().unwrap_or("");
                    out.push_str(&format!(
                        "{host}: {} for the daemon: {reason}; {identity}\n",
                        d.status.name(),
                    ));
                    if r.is_up() {
                        out.push_str(&format!(
                            "  up for this check ({}, with rbtop's SSH options) but not for the daemon: builds sent there will fail\n",
                            view.account.name
                        ));
                    }
                }
            }
        }
    }
    out
}
