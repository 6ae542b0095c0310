//! Whether the builder's nix-daemon trusts the SSH user of an `ssh://` store.
//!
//! The serve protocol (`nix-store --serve`) never says, so a user the daemon
//! does not trust looks up until the first build fails with "not privileged
//! to build". The worker protocol says it in its hello (≥1.35, Nix ≥2.15), so
//! a cold probe of an `ssh://` host also opens `nix-daemon --stdio` (found
//! where the store command's `nix-store` is) on a second channel of the SSH
//! connection it already has, side by side with the store's channel, and
//! reads the hello in one round trip. Anything short of a hello with the
//! trust field (no `nix-daemon` there, an older protocol, a daemon that is
//! not running for a non-root user, a timeout) is `None`: unknown, never
//! `false`.
//!
//! Why a second channel and not the facts script's own session: the script
//! would have to give `nix-daemon --stdio` the hello on a pipe, and a pipe's
//! end of input makes Nix's stdio proxy exit before relaying the daemon's
//! answer (Nix 2.26 as a non-root user, or "interrupted by the user" as
//! root); keeping the pipe open leaves a waiting process on the builder, and
//! reading the hello from the channel itself would let `nix-daemon` swallow
//! the store's pipelined handshake. See README.md ("TRUSTED over ssh://").

use std::sync::Arc;
use std::time::Duration;

use super::channel::Channel;
use super::report::ProbeCost;
use super::route::program_words;
use crate::protocol::worker;

/// What asking cost and found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    pub trusted: Option<bool>,
    pub cost: ProbeCost,
}

/// `nix-daemon --stdio [--store X]` for an `ssh://` store command whose
/// program is `nix-store` (by name or path: `/opt/nix/bin/nix-store` gives
/// `/opt/nix/bin/nix-daemon`; words before it, such as `env`, are kept).
/// `None` for any other program: a wrapper's daemon is not guessed.
pub(crate) fn daemon_command(store_command: &[String]) -> Option<Vec<String>> {
    let program = program_words(store_command);
    let (last, before) = program.split_last()?;
    let dir = last.strip_suffix("nix-store")?;
    if !(dir.is_empty() || dir.ends_with('/')) {
        return None;
    }
    let mut command: Vec<String> = before.to_vec();
    command.push(format!("{dir}nix-daemon"));
    command.push("--stdio".to_string());
    // `remote-store=X`: the trust of the store the builds would use.
    let flags = &store_command[program.len()..];
    if let Some(at) = flags.iter().position(|w| w == "--store")
        && let Some(store) = flags.get(at + 1)
    {
        command.extend(["--store".to_string(), store.clone()]);
    }
    Some(command)
}

/// Ask over `session` before `until`. Never fails: what could not be learnt is `None`.
pub(crate) async fn ask(
    session: &Arc<openssh::Session>,
    command: &[String],
    until: tokio::time::Instant,
) -> Asked {
    let mut asked = Asked::default();
    let round = async {
        let mut channel = Channel::remote(session, command)
            .await
            .map_err(|e| format!("cannot start '{}': {e}", command.join(" ")))?;
        asked.cost = ProbeCost {
            sessions: 1,
            round_trips: 1,
        };
        let hello = worker::handshake_at_once(&mut channel.reader, &mut channel.writer).await;
        asked.cost.round_trips += 1;
        // Closing stdin ends `nix-daemon --stdio` (and its daemon connection)
        // cleanly; its exit is not waited for here.
        tokio::spawn(channel.finish(Duration::from_secs(2)));
        hello.map_err(|e| format!("'{}': {e}", command.join(" ")))
    };
    let answer = tokio::time::timeout_at(until, round).await;
    match answer {
        Ok(Ok(hello)) => {
            if hello.trusted.is_none() {
                tracing::debug!(
                    "the daemon did not say whether it trusts us (worker protocol {})",
                    hello.version
                );
            }
            asked.trusted = hello.trusted;
        }
        Ok(Err(why)) => tracing::info!("daemon trust unknown: {why}"),
        Err(_) => tracing::info!("daemon trust unknown: no hello in time"),
    }
    asked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_daemon_is_found_where_nix_store_is() {
        let cases = [
            ("nix-store --serve --write", Some("nix-daemon --stdio")),
            (
                "/nix/var/nix/profiles/default/bin/nix-store --serve --write",
                Some("/nix/var/nix/profiles/default/bin/nix-daemon --stdio"),
            ),
            (
                "env nix-store --serve --write",
                Some("env nix-daemon --stdio"),
            ),
            (
                "nix-store --serve --write --store /mnt/store",
                Some("nix-daemon --stdio --store /mnt/store"),
            ),
            // Not nix-store: a wrapper, or another program that ends the same way.
            ("my-nix-wrapper --serve --write", None),
            ("/opt/not-nix-store --serve --write", None),
            ("--serve --write", None),
        ];
        for (store, daemon) in cases {
            assert_eq!(
                daemon_command(&words(store)),
                daemon.map(words),
                "store command {store:?}"
            );
        }
    }
}
