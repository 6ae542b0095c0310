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

/// ssh flags in `NIX_SSHOPTS` that would take the connection out of rbtop's
/// hands: where the master listens or logs (`-S`, `-E`), whether it is a
/// master at all (`-M`, `-f`, `-N`, `-O`, `-W`), or silence the errors that
/// name a failure (`-q`). Nix passes them on; rbtop drops them, with a warning.
const FLAGS_WITH_VALUE: &[char] = &['E', 'S', 'O', 'W'];
const BARE_FLAGS: &[char] = &['M', 'f', 'N', 'q'];
/// Every ssh flag that takes no value (ssh(1)), so a cluster such as `-Cq` is read whole.
const SSH_NO_VALUE_FLAGS: &str = "46AaCfGgKkMNnqsTtVvXxYy";

/// `NIX_SSHOPTS` words without the flags above, and a warning per flag dropped.
pub fn without_control_flags(words: &[String]) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let Some(flags) = word.strip_prefix('-').filter(|f| !f.starts_with('-')) else {
            kept.push(word.clone());
            continue;
        };
        // A cluster like `-qC`, or a flag with its value attached (`-E/tmp/log`).
        let mut remaining = String::new();
        for (i, flag) in flags.char_indices() {
            if FLAGS_WITH_VALUE.contains(&flag) {
                let attached = &flags[i + flag.len_utf8()..];
                let value = if attached.is_empty() {
                    words.next().cloned().unwrap_or_default()
                } else {
                    attached.to_string()
                };
                dropped.push(format!("-{flag} {value}"));
                break;
            }
            if BARE_FLAGS.contains(&flag) {
                dropped.push(format!("-{flag}"));
            } else if SSH_NO_VALUE_FLAGS.contains(flag) {
                remaining.push(flag);
            } else {
                // A flag with a value: the rest of the word is that value (`-oOpt=x`).
                remaining.push_str(&flags[i..]);
                break;
            }
        }
        if !remaining.is_empty() {
            kept.push(format!("-{remaining}"));
        }
    }
    let warnings = dropped
        .into_iter()
        .map(|flag| {
            format!(
                "NIX_SSHOPTS: ignoring '{flag}': rbtop runs its own ssh master and needs its errors"
            )
        })
        .collect();
    (kept, warnings)
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

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn control_flags_are_dropped_with_a_warning_and_the_rest_kept() {
        let (kept, warnings) = without_control_flags(&words(&[
            "-F",
            "/f",
            "-S",
            "/sock",
            "-q",
            "-E/tmp/log",
            "-qC",
            "-oUser=x",
            "-M",
            "-p",
            "22",
            "-Cq",
            "-lMaq",
        ]));
        assert_eq!(
            kept,
            words(&["-F", "/f", "-C", "-oUser=x", "-p", "22", "-C", "-lMaq"])
        );
        assert_eq!(warnings.len(), 6, "{warnings:?}");
        assert!(warnings[0].contains("'-S /sock'"), "{warnings:?}");
        assert!(warnings[2].contains("'-E /tmp/log'"), "{warnings:?}");
        let (kept, warnings) = without_control_flags(&words(&["-i", "/k", "-o", "Port=22"]));
        assert_eq!(kept, words(&["-i", "/k", "-o", "Port=22"]));
        assert!(warnings.is_empty());
    }

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
