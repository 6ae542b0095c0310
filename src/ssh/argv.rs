//! The argument vectors rbtop gives `ssh`. Pure, so every flag is tested.
//!
//! Order matters. For `-o` options ssh keeps the first value, so the host-key
//! options come before `NIX_SSHOPTS` and nothing in it can weaken a pin. For
//! `-E` and `-S` it keeps the last, so rbtop's log and socket come after it.

use std::ffi::OsString;
use std::path::Path;

use super::options::SshSettings;
use super::target::SshTarget;

/// How long an idle master (no channel open) outlives rbtop if rbtop dies
/// without closing it. A running rbtop always keeps a channel open or closes
/// the master itself.
pub(super) const CONTROL_PERSIST_SECS: u32 = 60;

/// `ssh -G ...`: resolve what ssh will connect to, with the same options.
pub(super) fn resolve_args(target: &SshTarget, settings: &SshSettings) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-G".into()];
    args.extend(settings.extra_args.iter().map(OsString::from));
    push_destination(&mut args, target);
    args
}

/// `ssh -G ...` with the machine's identity (column #3) too: what ssh
/// would offer, for the identity check.
pub(super) fn resolve_identity_args(target: &SshTarget, settings: &SshSettings) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-G".into()];
    args.extend(settings.extra_args.iter().map(OsString::from));
    if let Some(identity) = &target.identity {
        args.push("-i".into());
        args.push(identity.into());
    }
    push_destination(&mut args, target);
    args
}

/// The ControlMaster: authenticates, forks into the background (`-f`) once
/// the control socket listens, runs no command (`-N`).
pub(super) fn master_args(
    target: &SshTarget,
    settings: &SshSettings,
    control_dir: &Path,
    pin_file: Option<&Path>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-M", "-f", "-N"].map(OsString::from).to_vec();
    let connect_timeout = settings.connect_timeout.as_secs().max(1);
    let mut options = vec![
        format!("ControlPersist={CONTROL_PERSIST_SECS}"),
        "BatchMode=yes".to_string(),
        format!("ConnectTimeout={connect_timeout}"),
        // Keepalives let a long-lived session notice a dead builder.
        "ServerAliveInterval=15".to_string(),
        "ServerAliveCountMax=3".to_string(),
    ];
    match pin_file {
        // Only the pinned key may match: no other known-hosts file or
        // command, no DNS (SSHFP), no learning.
        Some(pin_file) => options.extend([
            "StrictHostKeyChecking=yes".to_string(),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            "KnownHostsCommand=none".to_string(),
            "VerifyHostKeyDNS=no".to_string(),
            "CheckHostIP=no".to_string(),
            "UpdateHostKeys=no".to_string(),
            format!("UserKnownHostsFile={}", quoted(pin_file)),
        ]),
        None => options.push(format!(
            "StrictHostKeyChecking={}",
            settings.host_key_policy.ssh_value()
        )),
    }
    for option in options {
        args.push("-o".into());
        args.push(option.into());
    }
    // As Nix: no X11 or agent forwarding to a builder.
    args.push("-x".into());
    args.push("-a".into());
    args.extend(settings.extra_args.iter().map(OsString::from));
    if let Some(identity) = &target.identity {
        args.push("-i".into());
        args.push(identity.into());
    }
    if target.compress {
        args.push("-C".into());
    }
    for (flag, file) in [("-E", "log"), ("-S", "master")] {
        args.push(flag.into());
        args.push(control_dir.join(file).into());
    }
    push_destination(&mut args, target);
    args
}

/// ssh splits option values on whitespace unless double-quoted.
fn quoted(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    }
}

/// User and port go as options, never inside the destination, so a host
/// that starts with `-` can never be read as a flag.
fn push_destination(args: &mut Vec<OsString>, target: &SshTarget) {
    if let Some(port) = target.port {
        args.push("-p".into());
        args.push(port.to_string().into());
    }
    if let Some(user) = &target.user {
        args.push("-l".into());
        args.push(user.into());
    }
    args.push("--".into());
    args.push(target.host.as_str().into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::HostKeyPolicy;

    fn target() -> SshTarget {
        SshTarget {
            host: "b1".into(),
            user: Some("nix".into()),
            port: Some(2222),
            identity: Some("/keys/b1".into()),
            pinned_key: None,
            compress: false,
        }
    }

    fn settings(policy: HostKeyPolicy) -> SshSettings {
        let mut s = SshSettings::new(
            vec![
                "-F".into(),
                "/etc/fleet ssh".into(),
                "-o".into(),
                "StrictHostKeyChecking=no".into(),
            ],
            policy,
        );
        s.connect_timeout = std::time::Duration::from_millis(2500);
        s
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    fn position(args: &[String], needle: &str) -> usize {
        args.iter().position(|a| a == needle).unwrap()
    }

    #[test]
    fn master_takes_nix_sshopts_word_for_word_and_the_machine_columns() {
        let args = strings(master_args(
            &target(),
            &settings(HostKeyPolicy::Strict),
            Path::new("/run/rbtop-x"),
            None,
        ));
        assert!(args.windows(2).any(|w| w == ["-F", "/etc/fleet ssh"]));
        assert!(args.windows(2).any(|w| w == ["-i", "/keys/b1"]));
        assert!(args.windows(2).any(|w| w == ["-S", "/run/rbtop-x/master"]));
        assert!(args.windows(2).any(|w| w == ["-E", "/run/rbtop-x/log"]));
        assert!(args.contains(&"ConnectTimeout=2".to_string()));
        assert!(args.contains(&"BatchMode=yes".to_string()));
        assert_eq!(
            &args[args.len() - 6..],
            ["-p", "2222", "-l", "nix", "--", "b1"]
        );
    }

    #[test]
    fn strict_checking_comes_before_nix_sshopts_so_it_wins() {
        let args = strings(master_args(
            &target(),
            &settings(HostKeyPolicy::Strict),
            Path::new("/d"),
            None,
        ));
        assert!(
            position(&args, "StrictHostKeyChecking=yes")
                < position(&args, "StrictHostKeyChecking=no")
        );
        let args = strings(master_args(
            &target(),
            &settings(HostKeyPolicy::AcceptNew),
            Path::new("/d"),
            None,
        ));
        assert!(args.contains(&"StrictHostKeyChecking=accept-new".to_string()));
    }

    #[test]
    fn a_pin_replaces_every_other_known_hosts_source() {
        let args = strings(master_args(
            &target(),
            &settings(HostKeyPolicy::AcceptNew),
            Path::new("/d"),
            Some(Path::new("/d/pinned")),
        ));
        for expected in [
            "UserKnownHostsFile=/d/pinned",
            "GlobalKnownHostsFile=/dev/null",
            "KnownHostsCommand=none",
            "VerifyHostKeyDNS=no",
            "CheckHostIP=no",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
        ] {
            assert!(
                position(&args, expected) < position(&args, "-F"),
                "{expected} must precede NIX_SSHOPTS: {args:?}"
            );
        }
        assert!(!args.contains(&"StrictHostKeyChecking=accept-new".to_string()));
    }

    #[test]
    fn rbtops_log_and_socket_come_after_nix_sshopts_where_the_last_one_wins() {
        let mut s = settings(HostKeyPolicy::Strict);
        s.extra_args = vec!["-S".into(), "/user/socket".into()];
        let args = strings(master_args(&target(), &s, Path::new("/d"), None));
        assert!(position(&args, "/user/socket") < position(&args, "/d/master"));
        assert!(position(&args, "-x") < position(&args, "/d/log"));
    }

    #[test]
    fn resolve_uses_the_same_options_and_destination() {
        let args = strings(resolve_args(&target(), &settings(HostKeyPolicy::Strict)));
        assert_eq!(
            args,
            [
                "-G",
                "-F",
                "/etc/fleet ssh",
                "-o",
                "StrictHostKeyChecking=no",
                "-p",
                "2222",
                "-l",
                "nix",
                "--",
                "b1"
            ]
        );
    }

    #[test]
    fn compression_and_no_user_or_port() {
        let mut t = target();
        t.user = None;
        t.port = None;
        t.identity = None;
        t.compress = true;
        let args = strings(master_args(
            &t,
            &settings(HostKeyPolicy::Strict),
            Path::new("/d"),
            None,
        ));
        assert_eq!(
            &args[args.len() - 7..args.len() - 4],
            ["-C", "-E", "/d/log"]
        );
        assert_eq!(&args[args.len() - 2..], ["--", "b1"]);
        assert!(!args.contains(&"-i".to_string()));
    }
}
