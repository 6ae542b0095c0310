//! What one probe of one machine found: the shape shared by `rbtop check`,
//! its JSON, and (later) the dashboard.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::facts::Facts;

/// Stable status names: scripts match on them, so never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The store answered its protocol handshake.
    Up,
    /// Nothing listens on the port (`Connection refused`).
    Refused,
    /// No answer in time: TCP connect, SSH banner, or the store itself.
    Timeout,
    /// The host name does not resolve.
    Dns,
    /// SSH authentication failed (`Permission denied (publickey)` and the like).
    Auth,
    /// The host key is unknown, changed, or not the one pinned in column #8.
    Hostkey,
    /// The remote `nix-store` / `nix-daemon` was not found.
    Nonix,
    /// The store spoke, but not the expected protocol (a banner before the magic, a version mismatch).
    Protocol,
    /// Anything else.
    Error,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Up,
        Status::Refused,
        Status::Timeout,
        Status::Dns,
        Status::Auth,
        Status::Hostkey,
        Status::Nonix,
        Status::Protocol,
        Status::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Refused => "refused",
            Status::Timeout => "timeout",
            Status::Dns => "dns",
            Status::Auth => "auth",
            Status::Hostkey => "hostkey",
            Status::Nonix => "nonix",
            Status::Protocol => "protocol",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the store was reached: over SSH, or locally as Nix itself would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// An SSH ControlMaster session to the builder.
    Ssh,
    /// A local `nix-store --serve` / `nix-daemon --stdio` child (`ssh://localhost`, `local`).
    LocalProcess,
    /// The local daemon's socket (`daemon`, `unix://`, `auto`).
    DaemonSocket,
    /// rbtop has no way to probe this kind of store.
    Unsupported,
}

/// The outcome of one probe.
#[derive(Clone, Debug, PartialEq)]
pub struct HostReport {
    pub status: Status,
    /// One line for humans, including ssh's own last stderr line. `None` when up.
    pub reason: Option<String>,
    pub via: Via,
    /// SSH master set-up (TCP, key exchange, authentication). `None` without SSH
    /// or when the connection never came up.
    pub connect: Option<Duration>,
    /// From the client hello to the server hello, remote process start included.
    pub handshake: Option<Duration>,
    /// One store round trip on the open channel (`QueryValidPaths` of nothing).
    pub ping: Option<Duration>,
    /// Negotiated store protocol version, `"2.7"` or `"1.37"`.
    pub protocol_version: Option<String>,
    pub nix_version: Option<String>,
    /// Worker protocol ≥ 1.35 only; `None` when the store does not say.
    pub trusted: Option<bool>,
    pub facts: Option<Facts>,
    /// The last lines ssh (or the store's process) wrote before a failure,
    /// for the dashboard's detail pane; `reason` quotes only the telling one.
    pub stderr: Option<String>,
}

impl HostReport {
    pub fn failed(status: Status, via: Via, reason: impl Into<String>) -> HostReport {
        HostReport {
            status,
            reason: Some(reason.into()),
            via,
            connect: None,
            handshake: None,
            ping: None,
            protocol_version: None,
            nix_version: None,
            trusted: None,
            facts: None,
            stderr: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.status == Status::Up
    }
}

/// What one probe cost a host: the remote sessions it opened (channels
/// started through the SSH master, each paying the host's login shell) and
/// the round trips it waited on one after another (the SSH connection's own
/// set-up is not counted: it is the same for every client). Kept per host by
/// the prober ([`crate::probe::Fleet::last_cost`]), so tests can see a new
/// session or a serial round trip sneak in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCost {
    pub sessions: u32,
    pub round_trips: u32,
}

impl ProbeCost {
    /// Two exchanges run side by side: their sessions add up, their round
    /// trips do not (the longer chain is what the probe waits for).
    pub(crate) fn alongside(self, other: ProbeCost) -> ProbeCost {
        ProbeCost {
            sessions: self.sessions + other.sessions,
            round_trips: self.round_trips.max(other.round_trips),
        }
    }
}

/// Lines of stderr kept with a failure.
pub(super) const STDERR_LINES: usize = 12;

/// A failure on the way to a report: the status it maps to and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: Status,
    pub reason: String,
    /// The end of what ssh or the store's process wrote, when anything.
    pub stderr: Option<String>,
}

impl Failure {
    pub(crate) fn new(status: Status, reason: impl Into<String>) -> Failure {
        Failure {
            status,
            reason: reason.into(),
            stderr: None,
        }
    }

    /// Keep the last [`STDERR_LINES`] non-blank lines of `text` with the failure.
    pub(crate) fn with_stderr(mut self, text: &str) -> Failure {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(STDERR_LINES)..];
        self.stderr = (!tail.is_empty()).then(|| tail.join("\n"));
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::text::failure(self.status, &self.reason))
    }
}
