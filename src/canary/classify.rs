//! Why a canary build failed, read from Nix's own words (its messages and
//! the lines ssh and the builder printed). Kept apart from `jobs/`: the
//! jobs module says what a message *is*; this says what a failed canary
//! *means* for the host.

use serde::Serialize;

/// The class of a canary failure; its JSON name is [`FailureClass::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// The building account (the daemon's: root) does not know or rejects the host key.
    Hostkey,
    /// The building account's SSH identity is refused.
    Auth,
    /// The remote user may connect but not build.
    NotTrusted,
    /// The builder is not of the canary's system.
    System,
    /// The builder lacks a feature the machine's line makes mandatory.
    Feature,
    /// The builder's store has no space left.
    StoreFull,
    /// The local daemon ignored `--builders`: the build did not go where pinned.
    NotPinned,
    /// No result within `--build-timeout`; the canary was cancelled.
    Timeout,
    /// Anything else; the message carries Nix's last lines.
    RemoteError,
}

impl FailureClass {
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Hostkey => "hostkey",
            FailureClass::Auth => "auth",
            FailureClass::NotTrusted => "not-trusted",
            FailureClass::System => "system",
            FailureClass::Feature => "feature",
            FailureClass::StoreFull => "store-full",
            FailureClass::NotPinned => "not-pinned",
            FailureClass::Timeout => "timeout",
            FailureClass::RemoteError => "remote-error",
        }
    }

    /// One line saying how to fix it.
    pub fn fix(self) -> &'static str {
        match self {
            FailureClass::Hostkey => {
                "add the host's key to root's known_hosts (e.g. `sudo ssh HOST` once) or pin it in column 8 of the machines line"
            }
            FailureClass::Auth => {
                "let the daemon's identity in: root's key (or the key in column 3) must be in the remote user's authorized_keys"
            }
            FailureClass::NotTrusted => {
                "add the remote user to `trusted-users` in the builder's nix.conf, or use ssh-ng:// with a trusted user"
            }
            FailureClass::System => {
                "fix the systems column (#2) of the machines line to what the builder is"
            }
            FailureClass::Feature => {
                "add the feature to `system-features` in the builder's nix.conf, or drop it from the machines line"
            }
            FailureClass::StoreFull => {
                "free space in the builder's /nix/store (nix-collect-garbage there)"
            }
            FailureClass::NotPinned => {
                "the local nix-daemon ignores --builders from untrusted users: run the check as root or as a user in trusted-users"
            }
            FailureClass::Timeout => {
                "see why the build hangs there (rbtop build --on HOST), or raise --build-timeout"
            }
            FailureClass::RemoteError => "read Nix's lines above",
        }
    }
}

/// The text that marks each class, most specific first (a full store or an
/// untrusted user on a builder also ends in a generic "build failed").
const MARKS: &[(FailureClass, &[&str])] = &[
    (
        FailureClass::NotPinned,
        &[
            // Nix >= 2.12 says it (the daemon forwards it as a message).
            "ignoring the client-specified setting 'builders'",
            // 2.8's daemon ignores it silently, then builds with its own
            // `builders`: none at all says so, as rbtop always gives one.
            "either increase '--max-jobs' or enable remote builds",
        ],
    ),
    (
        FailureClass::Hostkey,
        &[
            "Host key verification failed",
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            "host key is known",
        ],
    ),
    (
        FailureClass::Auth,
        &["Permission denied (", "Too many authentication failures"],
    ),
    (FailureClass::NotTrusted, &["not privileged to build"]),
    (FailureClass::StoreFull, &["No space left on device"]),
    (
        FailureClass::Feature,
        &[
            "missing system features",
            "remote machines may not have all required system features",
        ],
    ),
    (FailureClass::System, &["Reason: platform mismatch"]),
];

/// How many of Nix's last lines an unclassified failure reports.
pub const LAST_LINES: usize = 5;

/// The class of a failed canary and the message to show: the line that
/// told, or Nix's last lines when nothing did. `lines` are plain text (no
/// ANSI), in the order Nix printed them.
pub fn classify(lines: &[String]) -> (FailureClass, String) {
    for (class, marks) in MARKS {
        if let Some(line) = lines
            .iter()
            .find(|l| marks.iter().any(|mark| l.contains(mark)))
        {
            return (*class, line.trim().to_string());
        }
    }
    if let Some((class, line)) = lines
        .iter()
        .find_map(|l| platform_rejection(l).map(|c| (c, l)))
    {
        return (class, line.trim().to_string());
    }
    let last: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let from = last.len().saturating_sub(LAST_LINES);
    let message = if last.is_empty() {
        "Nix failed without a message".to_string()
    } else {
        last[from..].join("\n")
    };
    (FailureClass::RemoteError, message)
}

/// Nix 2.8's refusal: `a 'X' with features {F} is required to build 'D', but
/// I am a 'Y' with features {G}`: a system mismatch when X ≠ Y, else a
/// missing feature.
fn platform_rejection(line: &str) -> Option<FailureClass> {
    let rest = line.split_once("a '")?.1;
    let (wanted, rest) = rest.split_once('\'')?;
    let rest = rest.split_once("is required to build")?.1;
    let have = rest.split_once("but I am a '")?.1.split_once('\'')?.0;
    Some(if wanted == have {
        FailureClass::Feature
    } else {
        FailureClass::System
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_class_from_nix_s_words() {
        let cases = [
            (
                "error: cannot build on 'ssh://b1': error: cannot connect to 'b1': Host key verification failed.",
                FailureClass::Hostkey,
            ),
            (
                "error: cannot connect to 'authfail': root@127.0.1.4: Permission denied (publickey).",
                FailureClass::Auth,
            ),
            (
                "error: you are not privileged to build input-addressed derivations",
                FailureClass::NotTrusted,
            ),
            (
                "/bin/sh: 1: cannot create /nix/store/x-rbtop-canary: No space left on device",
                FailureClass::StoreFull,
            ),
            (
                "error: a 'x86_64-linux' with features {big} is required to build '/nix/store/a.drv', but I am a 'x86_64-linux' with features {benchmark}",
                FailureClass::Feature,
            ),
            (
                "error: a 'aarch64-linux' with features {} is required to build '/nix/store/a.drv', but I am a 'x86_64-linux' with features {}",
                FailureClass::System,
            ),
            (
                "error: Cannot build '/nix/store/a.drv'. Reason: platform mismatch",
                FailureClass::System,
            ),
            (
                "warning: ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user",
                FailureClass::NotPinned,
            ),
        ];
        for (line, class) in cases {
            let (got, message) = classify(&lines(&[
                "some noise",
                line,
                "error: unexpected end-of-file",
            ]));
            assert_eq!(got, class, "{line}");
            assert_eq!(message, line);
        }
    }

    #[test]
    fn a_silent_daemon_s_empty_builders_mean_the_pin_was_ignored() {
        // Nix 2.8's daemon: no warning, just no builders on its side.
        let (class, message) = classify(&lines(&[
            "this derivation will be built:",
            "error: unable to start any build; either increase '--max-jobs' or enable remote builds.",
        ]));
        assert_eq!(class, FailureClass::NotPinned);
        assert!(message.contains("enable remote builds"));
    }

    #[test]
    fn a_pin_ignored_wins_over_what_followed_from_it() {
        let (class, _) = classify(&lines(&[
            "warning: ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user",
            "error: unable to start any build; either increase '--max-jobs' or enable remote builds.",
        ]));
        assert_eq!(class, FailureClass::NotPinned);
    }

    #[test]
    fn anything_else_is_a_remote_error_with_the_last_lines_verbatim() {
        let text: Vec<String> = (1..=8).map(|i| format!("line {i}")).collect();
        let (class, message) = classify(&text);
        assert_eq!(class, FailureClass::RemoteError);
        assert_eq!(message, "line 4\nline 5\nline 6\nline 7\nline 8");
        let (class, message) = classify(&[]);
        assert_eq!(class, FailureClass::RemoteError);
        assert_eq!(message, "Nix failed without a message");
    }

    #[test]
    fn names_are_the_json_words() {
        assert_eq!(
            serde_json::to_string(&FailureClass::NotTrusted).unwrap(),
            "\"not-trusted\""
        );
        assert_eq!(FailureClass::StoreFull.name(), "store-full");
    }
}
