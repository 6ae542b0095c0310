//! Where and as whom to connect, from one machines line.

use crate::machines::{Machine, host_key};

#[derive(Clone, Debug, PartialEq)]
pub struct SshTarget {
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// Column #2, passed as `-i`.
    pub identity: Option<String>,
    /// Column #7 decoded: the host's `.pub` line, enforced when present.
    pub pinned_key: Option<String>,
    /// `?compress=true` in the URI: ssh `-C`, as Nix passes it.
    pub compress: bool,
}

impl SshTarget {
    /// `None` for stores that are not reached over SSH.
    pub fn of(machine: &Machine) -> Option<SshTarget> {
        let store = &machine.store;
        if !store.is_ssh() {
            return None;
        }
        Some(SshTarget {
            host: store.host.clone()?,
            user: store.user.clone(),
            port: store.port,
            // Nix lets the columns override the URI's own parameters.
            identity: machine
                .ssh_key
                .clone()
                .or_else(|| store.params.get("ssh-key").cloned()),
            pinned_key: machine
                .public_host_key
                .as_deref()
                .or(store
                    .params
                    .get("base64-ssh-public-host-key")
                    .map(String::as_str))
                .and_then(host_key::decode),
            compress: store.params.get("compress").is_some_and(|v| v == "true"),
        })
    }
}
