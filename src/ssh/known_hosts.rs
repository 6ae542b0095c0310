//! Pinned host keys (column #7): a known-hosts file keyed the way ssh will
//! look the host up.
//!
//! Nix keys its file by the URI's host, so a pin fails through an ssh_config
//! alias or on a port other than 22 (nix-reference §1). ssh looks keys up by
//! `HostKeyAlias` if set, else by the real `HostName`, as `[name]:port` off
//! port 22; `ssh -G` tells us all three after the config is applied.

use std::collections::HashMap;

/// What `ssh -G` resolved for a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SshDestination {
    pub hostname: String,
    pub port: u16,
    pub host_key_alias: Option<String>,
}

impl SshDestination {
    /// Parse `ssh -G` output (`keyword value` lines, keywords in lower case).
    pub(super) fn parse(dump: &str) -> Option<SshDestination> {
        let settings: HashMap<&str, &str> = dump
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(key, value)| (key, value.trim()))
            .collect();
        Some(SshDestination {
            hostname: settings.get("hostname")?.to_string(),
            port: settings.get("port")?.parse().ok()?,
            host_key_alias: settings
                .get("hostkeyalias")
                .filter(|alias| !alias.is_empty() && **alias != "none")
                .map(|alias| alias.to_string()),
        })
    }

    /// The name ssh searches known-hosts files for.
    pub(super) fn lookup_name(&self) -> String {
        if let Some(alias) = &self.host_key_alias {
            return alias.clone();
        }
        if self.port == 22 {
            self.hostname.clone()
        } else {
            format!("[{}]:{}", self.hostname, self.port)
        }
    }
}

/// One known-hosts line pinning `pub_line` (`type base64 [comment]`) for `name`.
pub(super) fn pin_line(name: &str, pub_line: &str) -> String {
    format!("{name} {}\n", pub_line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "user root\nhostname 127.0.0.11\nport 2222\naddressfamily any\n\
                        stricthostkeychecking true\n";

    #[test]
    fn an_alias_on_a_custom_port_is_looked_up_by_address_and_port() {
        let resolved = SshDestination::parse(DUMP).unwrap();
        assert_eq!(resolved.hostname, "127.0.0.11");
        assert_eq!(resolved.lookup_name(), "[127.0.0.11]:2222");
        assert_eq!(
            pin_line(&resolved.lookup_name(), "ssh-ed25519 AAAAC3 root@b1\n"),
            "[127.0.0.11]:2222 ssh-ed25519 AAAAC3 root@b1\n"
        );
    }

    #[test]
    fn port_22_uses_the_bare_name_and_host_key_alias_wins() {
        let plain = SshDestination::parse("hostname builder.example\nport 22\n").unwrap();
        assert_eq!(plain.lookup_name(), "builder.example");
        let aliased =
            SshDestination::parse("hostname 10.1.1.1\nport 2200\nhostkeyalias builder-key\n")
                .unwrap();
        assert_eq!(aliased.lookup_name(), "builder-key");
        let none = SshDestination::parse("hostname h\nport 22\nhostkeyalias none\n").unwrap();
        assert_eq!(none.lookup_name(), "h");
    }

    #[test]
    fn an_incomplete_dump_is_rejected() {
        assert_eq!(SshDestination::parse("hostname h\n"), None);
        assert_eq!(SshDestination::parse("hostname h\nport x\n"), None);
    }
}
