//! Shared by the dashboard's unit tests: machines from text, and an up report.

use std::time::Duration;

use crate::diagnostics::Origin;
use crate::machines::{Machine, MachinesText, Parser};
use crate::probe::{HostReport, Status, Via};

/// The machines of a `--builders` text, unset systems meaning x86_64-linux.
pub(super) fn machines(text: &str) -> Vec<Machine> {
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
    parser.finish().machines
}

/// An up host answering its kept channel in `ping_ms`, without facts.
pub(super) fn up(ping_ms: u64) -> HostReport {
    HostReport {
        status: Status::Up,
        reason: None,
        via: Via::Ssh,
        connect: None,
        handshake: None,
        ping: Some(Duration::from_millis(ping_ms)),
        protocol_version: Some("2.7".into()),
        nix_version: Some("2.8.0".into()),
        trusted: None,
        facts: None,
        stderr: None,
    }
}
