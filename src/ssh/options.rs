//! Settings shared by every SSH connection of a run.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// How to treat a host key when the machines file pins none.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// `StrictHostKeyChecking=yes`: the key must already be in known_hosts.
    #[default]
    Strict,
    /// `StrictHostKeyChecking=accept-new`: learn unknown hosts, refuse changed keys.
    AcceptNew,
}

impl HostKeyPolicy {
    pub fn ssh_value(self) -> &'static str {
        match self {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SshSettings {
    /// The `ssh` binary (a name looked up in `PATH`, or a path).
    pub program: PathBuf,
    /// `NIX_SSHOPTS`, already split into words.
    pub extra_args: Vec<String>,
    pub host_key_policy: HostKeyPolicy,
    /// ssh's own `ConnectTimeout` (TCP connect and banner exchange).
    pub connect_timeout: Duration,
    /// Where per-host control directories are made.
    pub control_parent: PathBuf,
}

impl SshSettings {
    pub fn new(extra_args: Vec<String>, host_key_policy: HostKeyPolicy) -> SshSettings {
        SshSettings {
            program: PathBuf::from("ssh"),
            extra_args,
            host_key_policy,
            connect_timeout: Duration::from_secs(10),
            control_parent: default_control_parent(),
        }
    }
}

/// Split `NIX_SSHOPTS` as a shell would (quotes and backslashes), as Nix ≥ 2.12 does.
pub fn split_nix_sshopts(value: &str) -> Result<Vec<String>, String> {
    shell_words::split(value).map_err(|e| format!("NIX_SSHOPTS cannot be split into words: {e}"))
}

/// `$XDG_RUNTIME_DIR` when set (private, short paths), else the temp dir.
/// Unix socket paths are limited to ~104 bytes, so keep this short.
fn default_control_parent() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_sshopts_split_like_a_shell() {
        assert_eq!(
            split_nix_sshopts(r#"-F "/etc/my ssh/config" -o 'ProxyJump=a b' -p\ 22"#).unwrap(),
            ["-F", "/etc/my ssh/config", "-o", "ProxyJump=a b", "-p 22"]
        );
        assert_eq!(split_nix_sshopts("  ").unwrap(), Vec::<String>::new());
        assert!(
            split_nix_sshopts("-o 'unclosed")
                .unwrap_err()
                .contains("NIX_SSHOPTS")
        );
    }
}
