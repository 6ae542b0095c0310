//! The nix-daemon's side of a check, without building. A user's build goes
//! through the nix-daemon, whose build hook connects as root with root's
//! SSH identity, ssh_config, known_hosts and the daemon's own `NIX_SSHOPTS`
//! (the Nix manual: the daemon's account "should have SSH access"). So:
//! - [`LocalView`] says which account a check ran as, and when that is
//!   not what the daemon will see;
//! - run as root, [`check_hosts`] checks root's view of every SSH host
//!   through the same prober (host key, identity), so a host `up` for the
//!   user but unknown to root is `hostkey` for the daemon.

mod account;
mod daemon_env;
mod hosts;

use std::path::{Path, PathBuf};

pub use account::Account;
pub use hosts::{DaemonHostView, DaemonSsh, IdentityFrom, check_hosts};

/// The account the nix-daemon (and so its build hook's ssh) runs as.
pub const DAEMON_ACCOUNT: &str = "root";

/// Who ran the check, and whether a nix-daemon serves this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalView {
    pub account: Account,
    /// The daemon's socket, when it exists.
    pub daemon_socket: Option<PathBuf>,
}

impl LocalView {
    pub fn detect() -> LocalView {
        LocalView {
            account: Account::current(),
            daemon_socket: crate::canary::request::daemon_socket(),
        }
    }

    /// A nix-daemon builds here and this is not its account: what was
    /// checked is this user's SSH view, not the one builds will use.
    pub fn user_view_only(&self) -> bool {
        self.daemon_socket.is_some() && !self.account.is_root()
    }

    /// A nix-daemon builds here and rbtop runs as root: root's SSH view
    /// can be checked too.
    pub fn can_check_daemon(&self) -> bool {
        self.daemon_socket.is_some() && self.account.is_root()
    }

    /// What to tell the operator about the account checked; `None` when
    /// it is the account builds use (root, or no daemon: builds run as
    /// this user's own Nix).
    pub fn note(&self) -> Option<String> {
        self.user_view_only().then(|| {
            format!(
                "checked as {} (uid {}), with this account's SSH view; the nix-daemon ({}) connects as {DAEMON_ACCOUNT}, \
                 with {DAEMON_ACCOUNT}'s SSH identity, ssh_config and known_hosts: run the check as {DAEMON_ACCOUNT} \
                 (`sudo rbtop check`) for the daemon's view, or `rbtop check --build`",
                self.account.name,
                self.account.uid,
                self.daemon_socket
                    .as_deref()
                    .map_or("".into(), |p| p.display().to_string()),
            )
        })
    }

    /// A few words for a header: `checked as alice; daemon: root`.
    pub fn short(&self) -> Option<String> {
        self.user_view_only()
            .then(|| format!("checked as {}; daemon: {DAEMON_ACCOUNT}", self.account.name))
    }
}

/// The running daemon's pid and `NIX_SSHOPTS`, from `/proc` (root only).
pub(crate) fn daemon_nix_sshopts() -> Option<(u32, Option<String>)> {
    let socket = crate::canary::request::daemon_socket()?;
    daemon_env::of_socket(&socket, Path::new("/proc")).map(|env| (env.pid, env.nix_sshopts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(uid: u32, socket: bool) -> LocalView {
        LocalView {
            account: Account {
                uid,
                name: if uid == 0 {
                    "root".into()
                } else {
                    "alice".into()
                },
                home: None,
            },
            daemon_socket: socket.then(|| PathBuf::from("/nix/var/nix/daemon-socket/socket")),
        }
    }

    #[test]
    fn only_a_user_with_a_daemon_is_told_the_daemon_sees_otherwise() {
        let alice = view(1000, true);
        assert!(alice.user_view_only() && !alice.can_check_daemon());
        let note = alice.note().unwrap();
        assert!(note.starts_with("checked as alice (uid 1000)"), "{note}");
        assert!(note.contains("connects as root"), "{note}");
        assert_eq!(
            alice.short().as_deref(),
            Some("checked as alice; daemon: root")
        );
        assert_eq!(
            view(1000, false).note(),
            None,
            "no daemon: the user's own Nix builds"
        );
        let root = view(0, true);
        assert_eq!(root.note(), None);
        assert!(root.can_check_daemon());
        assert!(!view(0, false).can_check_daemon());
    }
}
