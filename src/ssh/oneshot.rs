//! A session of its own for one operator action on a builder (the builder
//! check after a cancel, killing a build), apart from the prober's kept one.

use std::time::Duration;

use super::session::PendingDir;
use super::{ConnectError, HostSession, SshSettings, SshTarget};
use crate::machines::Machine;

/// How long the connection may take.
pub(crate) const CONNECT_LIMIT: Duration = Duration::from_secs(15);

/// Why [`connect`] brought no session up. Its `Display` is the one line the
/// operator reads (the builder check's "unknown: ...", `K`'s refusal); the
/// cause is part of that line, so no variant also names it as a `source`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OneshotError {
    /// The machine's store is not an SSH one (`local`, `daemon`, ...).
    #[error("not reached over SSH")]
    NotSsh,
    /// The machine pins a host key that cannot be used: never connect
    /// without the pin.
    #[error("{0}")]
    UnusablePin(String),
    /// rbtop could not prepare the control directory.
    #[error("{0}")]
    ControlDir(String),
    /// ssh ran and failed, or could not be run; the line is ssh's last one.
    #[error("cannot connect: {}", describe(.0))]
    Connect(ConnectError),
    /// No session within [`CONNECT_LIMIT`].
    #[error("cannot connect: timed out")]
    TimedOut,
}

/// Connect to `machine` over SSH, or say why not.
pub(crate) async fn connect(
    machine: &Machine,
    ssh: &SshSettings,
) -> Result<HostSession, OneshotError> {
    let target = match SshTarget::of(machine) {
        Ok(Some(target)) => target,
        Ok(None) => return Err(OneshotError::NotSsh),
        Err(why) => return Err(OneshotError::UnusablePin(why)),
    };
    let mut pending = Some(
        PendingDir::create(ssh).map_err(|e| OneshotError::ControlDir(describe(&e).to_string()))?,
    );
    let connect = HostSession::connect(&target, ssh, &mut pending);
    match tokio::time::timeout(CONNECT_LIMIT, connect).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(OneshotError::Connect(e)),
        Err(_) => Err(OneshotError::TimedOut),
    }
}

fn describe(error: &ConnectError) -> &str {
    match error {
        ConnectError::Local(why) => why,
        // ssh's log ends with its reason.
        ConnectError::Ssh { log, .. } => log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("ssh failed")
            .trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machines::testing::machine;

    #[test]
    fn each_reason_reads_as_before() {
        let cases = [
            (OneshotError::NotSsh, "not reached over SSH"),
            (
                OneshotError::UnusablePin("the pinned key is not base64".into()),
                "the pinned key is not base64",
            ),
            (
                OneshotError::ControlDir("cannot create a control directory in /x".into()),
                "cannot create a control directory in /x",
            ),
            (
                OneshotError::Connect(ConnectError::Ssh {
                    log: "debug1: hello\nssh: connect to host b1 port 22: Connection refused\n\n"
                        .into(),
                    pinned: false,
                }),
                "cannot connect: ssh: connect to host b1 port 22: Connection refused",
            ),
            (
                OneshotError::Connect(ConnectError::Ssh {
                    log: " \n".into(),
                    pinned: false,
                }),
                "cannot connect: ssh failed",
            ),
            (
                OneshotError::Connect(ConnectError::Local("cannot run ssh: not found".into())),
                "cannot connect: cannot run ssh: not found",
            ),
            (OneshotError::TimedOut, "cannot connect: timed out"),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text, "{error:?}");
        }
    }

    /// ssh complains of a bad option on its stderr, before its log file is
    /// open: that line is kept (it was "ssh exited without saying why").
    #[tokio::test]
    async fn a_bad_option_is_what_ssh_said_on_stderr() {
        let ssh = SshSettings::new(
            vec!["-o".into(), "Bogus=1".into()],
            crate::ssh::HostKeyPolicy::default(),
        );
        let error = connect(&machine("ssh://127.0.0.1:1"), &ssh).await.err();
        let Some(OneshotError::Connect(error)) = error else {
            panic!("{error:?}")
        };
        let text = OneshotError::Connect(error).to_string();
        assert!(text.contains("Bad configuration option: bogus"), "{text}");
    }

    #[tokio::test]
    async fn a_store_without_ssh_or_with_a_bad_pin_is_refused_before_connecting() {
        let ssh = SshSettings::new(Vec::new(), crate::ssh::HostKeyPolicy::default());
        let local = connect(&machine("local"), &ssh).await.err();
        assert!(matches!(local, Some(OneshotError::NotSsh)), "{local:?}");
        // Decodes to "hello world": base64, but no .pub line.
        let line = "ssh://b1 x86_64-linux - 1 1 - - aGVsbG8gd29ybGQ=";
        let pinned = connect(&machine(line), &ssh).await.err();
        let Some(OneshotError::UnusablePin(why)) = pinned else {
            panic!("{pinned:?}")
        };
        assert!(why.starts_with("the pinned host key"), "{why}");
    }
}
