//! A session of its own for one operator action on a builder (the builder
//! check after a cancel, killing a build), apart from the prober's kept one.

use std::time::Duration;

use super::session::PendingDir;
use super::{ConnectError, HostSession, SshSettings, SshTarget};
use crate::machines::Machine;

/// How long the connection may take.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(15);

/// Connect to `machine` over SSH, or say why not in one line.
pub async fn connect(machine: &Machine, ssh: &SshSettings) -> Result<HostSession, String> {
    let target = match SshTarget::of(machine) {
        Ok(Some(target)) => target,
        Ok(None) => return Err("not reached over SSH".into()),
        Err(e) => return Err(e),
    };
    let mut pending = Some(PendingDir::create(ssh).map_err(describe)?);
    let connect = HostSession::connect(&target, ssh, &mut pending);
    match tokio::time::timeout(CONNECT_LIMIT, connect).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(format!("cannot connect: {}", describe(e))),
        Err(_) => Err("cannot connect: timed out".into()),
    }
}

fn describe(error: ConnectError) -> String {
    match error {
        ConnectError::Local(why) => why,
        // ssh's log ends with its reason.
        ConnectError::Ssh { log, .. } => log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("ssh failed")
            .trim()
            .to_string(),
    }
}
