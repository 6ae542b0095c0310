//! Root's SSH view of every host, as the daemon's build hook will have it:
//! the daemon's `NIX_SSHOPTS`, root's ssh_config and known_hosts, the
//! machine's pin and identity. Checked through the same prober as the
//! user's view (a real connection, no build), always with strict host-key
//! checking: the daemon has no terminal to accept a key on.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{Account, DAEMON_ACCOUNT};
use crate::machines::Machine;
use crate::probe::{self, ProbeSettings, Status};
use crate::ssh::{self, HostKeyPolicy, SshSettings};

/// Where the daemon's SSH options come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSsh {
    /// The daemon's `NIX_SSHOPTS`, split, without the control flags rbtop drops.
    pub extra_args: Vec<String>,
    /// Where they were read, for the report.
    pub source: String,
    pub home: PathBuf,
}

impl DaemonSsh {
    /// Root's view: the running daemon's `NIX_SSHOPTS` if one runs (else
    /// none: a socket-activated daemon starts with a clean environment).
    pub fn detect(account: &Account) -> Result<DaemonSsh, String> {
        let home = account
            .home
            .clone()
            .unwrap_or_else(|| PathBuf::from("/root"));
        let (extra_args, source) = match super::daemon_nix_sshopts() {
            Some((pid, Some(value))) => {
                let words = ssh::split_nix_sshopts(&value)
                    .map_err(|e| format!("the nix-daemon's (pid {pid}) {e}"))?;
                let (kept, _) = ssh::without_control_flags(&words);
                (kept, format!("NIX_SSHOPTS of the nix-daemon (pid {pid})"))
            }
            Some((pid, None)) => (
                Vec::new(),
                format!("the nix-daemon (pid {pid}) has no NIX_SSHOPTS"),
            ),
            None => (
                Vec::new(),
                "no nix-daemon process found: root's ssh defaults".into(),
            ),
        };
        Ok(DaemonSsh {
            extra_args,
            source,
            home,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityFrom {
    /// The machines line's column 3 (or the URI's `ssh-key`).
    Column3,
    /// Root's ssh_config or ssh's default files.
    SshConfig,
}

/// One host as the daemon's account sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DaemonHostView {
    pub account: &'static str,
    /// The identity ssh will offer first (an existing file), if any.
    pub identity: Option<PathBuf>,
    pub identity_from: IdentityFrom,
    pub status: Status,
    pub reason: Option<String>,
}

/// Check root's view of every machine reached over SSH (others: `None`):
/// all at once, bounded by `concurrency`, each within `timeout`. `stop`
/// ends it early (`None`), every session closed.
pub async fn check_hosts(
    machines: &[Machine],
    daemon: &DaemonSsh,
    timeout: Duration,
    concurrency: usize,
    stop: impl std::future::Future<Output = ()>,
) -> Option<Vec<Option<DaemonHostView>>> {
    let ssh_settings = SshSettings::new(daemon.extra_args.clone(), HostKeyPolicy::Strict);
    let mut settings = ProbeSettings::new(timeout, concurrency, ssh_settings.clone());
    settings.list_builds = false;
    let ssh_machines: Vec<usize> = (0..machines.len())
        .filter(|&i| machines[i].store.is_ssh())
        .collect();
    let subset: Vec<Machine> = ssh_machines.iter().map(|&i| machines[i].clone()).collect();
    let identities = futures_util::future::join_all(
        subset
            .iter()
            .map(|m| ssh::identities(m, &ssh_settings, &daemon.home)),
    );
    let probes = probe::probe_once(&subset, settings, |_| {}, stop);
    let (identities, reports) = tokio::join!(identities, probes);
    let reports = reports.ok()?;
    let mut out = vec![None; machines.len()];
    for ((index, identity), report) in ssh_machines.into_iter().zip(identities).zip(reports) {
        let machine = &machines[index];
        out[index] = Some(DaemonHostView {
            account: DAEMON_ACCOUNT,
            identity: identity.ok().and_then(|ids| ids.into_iter().next()),
            identity_from: if machine.ssh_key.is_some()
                || machine.store.params.contains_key("ssh-key")
            {
                IdentityFrom::Column3
            } else {
                IdentityFrom::SshConfig
            },
            status: report.status,
            reason: report.reason,
        });
    }
    Some(out)
}
