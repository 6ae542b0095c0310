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
    /// `Ok(None)` for stores not reached over SSH; `Err` when the machine
    /// pins a host key that cannot be used: never connect without the pin.
    pub fn of(machine: &Machine) -> Result<Option<SshTarget>, String> {
        let store = &machine.store;
        let Some(host) = store.host.clone().filter(|_| store.is_ssh()) else {
            return Ok(None);
        };
        let pinned_key = machine
            .public_host_key
            .as_deref()
            .or(store
                .params
                .get("base64-ssh-public-host-key")
                .map(String::as_str))
            .map(host_key::pinned_key)
            .transpose()?;
        Ok(Some(SshTarget {
            host,
            user: store.user.clone(),
            port: store.port,
            // Nix lets the columns override the URI's own parameters.
            identity: machine
                .ssh_key
                .clone()
                .or_else(|| store.params.get("ssh-key").cloned()),
            pinned_key,
            compress: store.params.get("compress").is_some_and(|v| v == "true"),
        }))
    }
}
