//! The wording of a probe's outcome, shared by `rbtop check` and the
//! dashboard (its events), so that both say the same thing.

use super::Status;

/// `refused: ssh: connect to host b1 port 22: Connection refused`: a host
/// that is not up, and why.
pub fn failure(status: Status, reason: &str) -> String {
    format!("{status}: {reason}")
}

/// What a `false` TRUSTED means for the builds sent there.
pub const NOT_PRIVILEGED: &str = "builds will fail: not privileged";

/// Who the daemon was asked about: `user@host` from the URI, else the SSH
/// login that ssh's configuration picks for `host`.
pub fn ssh_user(user: Option<&str>, host: &str) -> String {
    match user {
        Some(user) => format!("{user}@{host}"),
        None => format!("the SSH user of {host}"),
    }
}

/// The line for an up host whose daemon does not trust the SSH user (`who`,
/// e.g. `nixremote@b1`): the first build there fails with Nix's "you are not
/// privileged to build derivations".
pub fn not_trusted(who: &str) -> String {
    format!(
        "{NOT_PRIVILEGED} (the builder's nix-daemon does not trust {who}; fix: add the user to \
         trusted-users in the builder's nix.conf, or reach it as a trusted user)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_its_status_then_its_reason() {
        assert_eq!(
            failure(Status::Timeout, "no answer within 3 s"),
            "timeout: no answer within 3 s"
        );
    }

    #[test]
    fn an_untrusted_user_is_told_builds_will_fail_and_the_fix() {
        let line = not_trusted("nixremote@b1");
        assert!(line.starts_with("builds will fail: not privileged (the builder's nix-daemon does not trust nixremote@b1;"), "{line}");
        assert!(line.contains("trusted-users"), "{line}");
    }
}
