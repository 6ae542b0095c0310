//! The wording of the builds running on a builder and their clients, shared
//! by `rbtop check` and the dashboard, so that both say the same thing.

use super::{Client, RemoteBuild};

/// `2`, or `3 (1 orphan)`: how many builds run on a host.
pub fn count(builds: &[RemoteBuild]) -> String {
    let orphans = builds.iter().filter(|b| b.client == Client::Orphan).count();
    match orphans {
        0 => builds.len().to_string(),
        n => format!("{} ({n} orphan)", builds.len()),
    }
}

/// `building hello (pid 5120, user nixbld1, 50 s, this-machine): slot 0 ...`
pub fn build(build: &RemoteBuild) -> String {
    format!(
        "building {} (pid {}, user {}, {} s, {}): {}",
        build.name,
        build.pid,
        build.user,
        build.elapsed_s,
        build.client.name(),
        build.detail
    )
}

/// `unknown: this host has no Linux /proc`: why a host's builds could not
/// be listed.
pub fn unknown(why: &impl std::fmt::Display) -> String {
    format!("unknown: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_builds::classify::tests::sample_build;

    #[test]
    fn builds_read_the_same_wherever_they_are_shown() {
        let mut builds = vec![sample_build(5120, Client::ThisMachine)];
        builds[0].detail = "slot 0 of this machine (hook 4242)".into();
        assert_eq!(
            build(&builds[0]),
            "building x (pid 5120, user root, 1 s, this-machine): slot 0 of this machine (hook 4242)"
        );
        assert_eq!(count(&builds), "1");
        builds.push(sample_build(6000, Client::Orphan));
        assert_eq!(count(&builds), "2 (1 orphan)");
        assert_eq!(count(&[]), "0");
        assert_eq!(unknown(&"no /proc"), "unknown: no /proc");
    }
}
