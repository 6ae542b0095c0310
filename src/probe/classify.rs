//! Failure classification: from what ssh and the remote store said to a
//! stable status name and one line a human can act on.
//!
//! ssh reports everything as text on stderr, so this reads the text; the
//! patterns are OpenSSH's messages (Linux and macOS wording).

use std::time::Duration;

use super::report::{Failure, Status};
use crate::protocol::ProtocolError;

/// Lines of ssh's stderr that never explain a failure.
fn is_noise(line: &str) -> bool {
    let line = line.trim();
    line.is_empty()
        || line.starts_with("Warning: Permanently added")
        || line.starts_with("** ")
        || line.starts_with("@@@")
        || line.starts_with("debug")
        || line.starts_with("Pseudo-terminal")
}

/// ssh's last line that says something, e.g. `Host key verification failed.`.
pub(super) fn last_ssh_line(log: &str) -> Option<&str> {
    log.lines().rev().find(|l| !is_noise(l)).map(str::trim)
}

/// `ssh: ` before a line, unless ssh already put it there.
fn with_ssh_prefix(line: &str) -> String {
    if line.starts_with("ssh: ") {
        line.to_string()
    } else {
        format!("ssh: {line}")
    }
}

/// A master that did not come up.
pub(super) fn ssh_failure(log: &str, pinned: bool) -> Failure {
    let Some(line) = last_ssh_line(log) else {
        return Failure::new(Status::Error, "ssh exited without saying why");
    };
    let has = |needle: &str| log.contains(needle);
    let status = if has("Host key verification failed")
        || has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || has("host key is known for")
    {
        Status::Hostkey
    } else if has("Could not resolve hostname")
        || has("Name or service not known")
        || has("nodename nor servname")
        || has("Temporary failure in name resolution")
        || has("No address associated with hostname")
    {
        Status::Dns
    } else if has("Connection refused") {
        Status::Refused
    } else if has("timed out") || has("Operation timed out") || has("Timeout, server") {
        Status::Timeout
    } else if has("Bad configuration option")
        || has("command-line line")
        || has("unknown option")
        || has("Unsupported option")
    {
        // Before any connection: ssh refused its own options.
        return Failure::new(
            Status::Error,
            format!(
                "ssh refused its options (check NIX_SSHOPTS and ssh_config): {}",
                with_ssh_prefix(line)
            ),
        )
        .with_stderr(log);
    } else if has("Permission denied")
        || has("Too many authentication failures")
        || has("Authentication failed")
        || has("no mutual signature")
    {
        Status::Auth
    } else {
        Status::Error
    };
    let reason = match status {
        Status::Hostkey if pinned => {
            format!("host key does not match the key pinned in the machines line (ssh: {line})")
        }
        Status::Hostkey => format!("host key not trusted (ssh: {line})"),
        _ => with_ssh_prefix(line),
    };
    if pinned {
        // ssh's "remove with: ssh-keygen -f <file>" names rbtop's temporary file.
        let log = super::host_key_advice::without_temp_file_advice(log);
        return Failure::new(status, reason).with_stderr(&log);
    }
    Failure::new(status, reason).with_stderr(log)
}

/// The deadline passed. `phase` says what was going on, `ssh_log` what ssh said.
pub(super) fn timed_out(limit: Duration, phase: &str, ssh_log: &str) -> Failure {
    let mut reason = format!("no answer within {} while {phase}", seconds(limit));
    if let Some(line) = last_ssh_line(ssh_log) {
        reason.push_str(&format!(" ({})", with_ssh_prefix(line)));
    }
    Failure::new(Status::Timeout, reason).with_stderr(ssh_log)
}

fn seconds(limit: Duration) -> String {
    let secs = limit.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

/// What the store's process left behind when its handshake failed.
#[derive(Clone, Debug, Default)]
pub(super) struct StoreExit<'a> {
    /// The remote command as the shell saw it, e.g. `nix-store --serve --write`.
    pub command: &'a str,
    /// Its stderr (the last few lines are enough).
    pub stderr: &'a str,
    /// Its exit code, when it had exited.
    pub code: Option<i32>,
}

/// A store process that did not complete its handshake, with the end of
/// what it wrote to stderr.
pub(super) fn store_failure(error: &ProtocolError, exit: &StoreExit<'_>) -> Failure {
    classify_store_failure(error, exit).with_stderr(exit.stderr)
}

fn classify_store_failure(error: &ProtocolError, exit: &StoreExit<'_>) -> Failure {
    let stderr_line = last_ssh_line(exit.stderr);
    let words: Vec<String> = exit
        .command
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let program = super::route::program_words(&words).join(" ");
    // The word a shell names when it cannot find it: the last of the program.
    let missing_word = program.rsplit(' ').next().unwrap_or("nix-store");
    // The shell's own words: `sh: 1: nix-store: not found`, `bash: nix-store:
    // command not found`, `zsh:1: command not found: nix-store`. Other errors
    // that merely mention a missing file are not this.
    let said = |text: &str| {
        text.contains(missing_word)
            && (text.contains("not found") || text.contains("No such file or directory"))
    };
    let missing = exit.code == Some(127)
        || stderr_line.is_some_and(said)
        || error.garbage_text().as_deref().is_some_and(said);
    if missing && !matches!(error, ProtocolError::Remote { .. }) {
        let detail = stderr_line
            .map(str::to_string)
            .or_else(|| error.garbage_text())
            .unwrap_or_else(|| format!("exit code {}", exit.code.unwrap_or(127)));
        return Failure::new(
            Status::Nonix,
            format!("remote {program} not found ({detail})"),
        );
    }
    let with_stderr = |mut reason: String| {
        if let Some(line) = stderr_line {
            reason.push_str(&format!(" (stderr: {line})"));
        }
        if let Some(code) = exit.code {
            reason.push_str(&format!(" (exit code {code})"));
        }
        reason
    };
    match error {
        ProtocolError::WrongMagic { .. } => Failure::new(
            Status::Protocol,
            format!(
                "'{}' protocol mismatch, got '{}'",
                exit.command,
                error.garbage_text().unwrap_or_default()
            ),
        ),
        ProtocolError::UnsupportedVersion { .. } => {
            Failure::new(Status::Protocol, format!("'{}': {error}", exit.command))
        }
        ProtocolError::UnexpectedEof { what } => Failure::new(
            Status::Error,
            with_stderr(format!(
                "'{}' closed the connection before the {what}",
                exit.command
            )),
        ),
        other => Failure::new(
            Status::Error,
            with_stderr(format!("'{}': {other}", exit.command)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_the_last_lines_of_what_ssh_said() {
        let log: String = (1..=20)
            .map(|n| format!("debug1: line {n}\n\n"))
            .collect::<String>()
            + "user@host: Permission denied (publickey).\n";
        let failure = ssh_failure(&log, false);
        let stderr = failure.stderr.unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            crate::probe::report::STDERR_LINES,
            "blank lines dropped too"
        );
        assert_eq!(lines[0], "debug1: line 10");
        assert_eq!(
            lines.last(),
            Some(&"user@host: Permission denied (publickey).")
        );
        assert_eq!(
            timed_out(Duration::from_secs(3), "connecting", "").stderr,
            None
        );
    }

    #[test]
    fn each_ssh_failure_gets_its_own_status() {
        let cases = [
            (
                "ssh: connect to host 127.0.1.2 port 2222: Connection refused\r\n",
                Status::Refused,
            ),
            (
                "Connection timed out during banner exchange\r\nConnection to 127.0.1.3 port 2222 timed out\r\n",
                Status::Timeout,
            ),
            (
                "ssh: connect to host 10.0.0.1 port 22: Operation timed out\n",
                Status::Timeout,
            ),
            (
                "ssh: Could not resolve hostname nosuch.invalid: Name or service not known\r\n",
                Status::Dns,
            ),
            (
                "root@127.0.1.4: Permission denied (publickey).\r\n",
                Status::Auth,
            ),
            (
                "@@@@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n\
                 Host key verification failed.\r\n",
                Status::Hostkey,
            ),
            (
                "No ED25519 host key is known for [127.0.0.11]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n",
                Status::Hostkey,
            ),
            (
                "kex_exchange_identification: read: Connection reset by peer\r\n",
                Status::Error,
            ),
        ];
        for (log, status) in cases {
            assert_eq!(ssh_failure(log, false).status, status, "{log}");
        }
        let bad_option = ssh_failure(
            "command-line line 0: Bad configuration option: bogus\n",
            false,
        );
        assert_eq!(bad_option.status, Status::Error);
        assert_eq!(
            bad_option.reason,
            "ssh refused its options (check NIX_SSHOPTS and ssh_config): \
             ssh: command-line line 0: Bad configuration option: bogus"
        );
    }

    #[test]
    fn the_reason_quotes_sshs_last_meaningful_line() {
        let log = "Warning: Permanently added '[x]:22' (ED25519) to the list of known hosts.\r\n\
                   root@b4: Permission denied (publickey).\r\n";
        assert_eq!(
            ssh_failure(log, false).reason,
            "ssh: root@b4: Permission denied (publickey)."
        );
        let pinned = ssh_failure("Host key verification failed.\n", true);
        assert_eq!(pinned.status, Status::Hostkey);
        assert!(pinned.reason.contains("pinned"), "{}", pinned.reason);
        assert!(pinned.reason.contains("Host key verification failed."));
        assert_eq!(ssh_failure("", false).status, Status::Error);
        assert_eq!(
            ssh_failure(
                "ssh: connect to host h port 22: Connection refused\n",
                false
            )
            .reason,
            "ssh: connect to host h port 22: Connection refused"
        );
    }

    #[test]
    fn a_timeout_names_the_phase_and_what_ssh_said() {
        let failure = timed_out(Duration::from_secs(3), "connecting over SSH", "");
        assert_eq!(failure.status, Status::Timeout);
        assert_eq!(
            failure.reason,
            "no answer within 3 s while connecting over SSH"
        );
        let failure = timed_out(
            Duration::from_millis(2500),
            "connecting over SSH",
            "Connection timed out during banner exchange\n",
        );
        assert_eq!(
            failure.reason,
            "no answer within 2.5 s while connecting over SSH (ssh: Connection timed out during banner exchange)"
        );
    }

    #[test]
    fn a_missing_remote_program_is_nonix() {
        let eof = ProtocolError::UnexpectedEof {
            what: "server magic",
        };
        let failure = store_failure(
            &eof,
            &StoreExit {
                command: "nix-store --serve --write",
                stderr: "sh: 1: nix-store: not found\n",
                code: Some(127),
            },
        );
        assert_eq!(failure.status, Status::Nonix);
        assert_eq!(
            failure.reason,
            "remote nix-store not found (sh: 1: nix-store: not found)"
        );
        // The exit code alone is enough when stderr was lost.
        let failure = store_failure(
            &eof,
            &StoreExit {
                command: "nix-daemon --stdio",
                stderr: "",
                code: Some(127),
            },
        );
        assert_eq!(failure.status, Status::Nonix);
        assert!(failure.reason.contains("nix-daemon"), "{}", failure.reason);
    }

    #[test]
    fn a_multi_word_program_is_named_whole() {
        let failure = store_failure(
            &ProtocolError::UnexpectedEof {
                what: "server magic",
            },
            &StoreExit {
                command: "env nix-store --serve --write",
                stderr: "env: 'nix-store': No such file or directory\n",
                code: Some(127),
            },
        );
        assert_eq!(failure.status, Status::Nonix);
        assert!(
            failure.reason.starts_with("remote env nix-store not found"),
            "{}",
            failure.reason
        );
    }

    #[test]
    fn a_missing_file_inside_nix_is_not_nonix() {
        let failure = store_failure(
            &ProtocolError::UnexpectedEof {
                what: "server magic",
            },
            &StoreExit {
                command: "nix-daemon --stdio",
                stderr: "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': No such file or directory\n",
                code: Some(1),
            },
        );
        assert_eq!(failure.status, Status::Error);
        let failure = store_failure(
            &ProtocolError::UnexpectedEof {
                what: "server magic",
            },
            &StoreExit {
                command: "/opt/nix/bin/nix-store --serve --write",
                stderr: "zsh:1: no such file or directory: /opt/nix/bin/nix-store\nbash: /opt/nix/bin/nix-store: No such file or directory\n",
                code: None,
            },
        );
        assert_eq!(failure.status, Status::Nonix);
    }

    #[test]
    fn a_banner_before_the_magic_is_a_protocol_failure() {
        let error = ProtocolError::WrongMagic {
            expected: 0x5452eecb,
            garbage: b"Welcome to builder 7!\nEnjoy.\n".to_vec(),
        };
        let failure = store_failure(
            &error,
            &StoreExit {
                command: "nix-store --serve --write",
                ..Default::default()
            },
        );
        assert_eq!(failure.status, Status::Protocol);
        assert_eq!(
            failure.reason,
            "'nix-store --serve --write' protocol mismatch, got 'Welcome to builder 7!'"
        );
    }

    #[test]
    fn an_early_close_keeps_stderr_and_exit_code() {
        let failure = store_failure(
            &ProtocolError::UnexpectedEof {
                what: "protocol version",
            },
            &StoreExit {
                command: "nix-store --serve --write",
                stderr: "error: opening lock file '/nix/var/nix/db/big-lock': Permission denied\n",
                code: Some(1),
            },
        );
        assert_eq!(failure.status, Status::Error);
        assert!(failure.reason.contains("big-lock"), "{}", failure.reason);
        assert!(failure.reason.contains("exit code 1"), "{}", failure.reason);
    }
}
