//! The serve protocol (`ssh://` stores): what `nix-store --serve --write`
//! speaks on stdin/stdout. It has no Nix version, no trust and no stderr
//! frames: the server's errors go to its stderr and it exits.

use tokio::io::{AsyncRead, AsyncWrite};

use super::wire::{Message, read_strings, read_version};
use super::{ProtocolError, ProtocolVersion, magic};

pub const MAGIC_1: u64 = 0x390c_9deb;
pub const MAGIC_2: u64 = 0x5452_eecb;

/// What we advertise. 2.7 is what Nix 2.8 up to 2.34 send; master's 2.8
/// only changes how BuildDerivation reports built outputs, which we never
/// ask for, so claiming it would buy nothing and hide that we don't parse it.
pub const CLIENT_VERSION: ProtocolVersion = ProtocolVersion::new(2, 7);

/// Nix master refuses servers older than 2.5 (Nix 2.8 only checked major 2).
pub const MINIMUM: ProtocolVersion = ProtocolVersion::new(2, 5);

const CMD_QUERY_VALID_PATHS: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeHello {
    /// Negotiated: the lower of ours and the server's.
    pub version: ProtocolVersion,
    pub server_version: ProtocolVersion,
}

/// Sends magic and version in one write, then reads and checks the server's.
pub async fn handshake<R, W>(r: &mut R, w: &mut W) -> Result<ServeHello, ProtocolError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let hello = Message::default()
        .u64(MAGIC_1)
        .u64(CLIENT_VERSION.to_wire());
    magic::open(r, w, hello, MAGIC_2).await?;
    let server_version = read_version(r).await?;
    let unsupported = |reason| ProtocolError::UnsupportedVersion {
        version: server_version,
        reason,
    };
    if server_version.major != 2 {
        return Err(unsupported("the serve protocol's major version is 2"));
    }
    if server_version < MINIMUM {
        return Err(unsupported("Nix needs serve protocol 2.5 or later"));
    }
    Ok(ServeHello {
        version: server_version.min(CLIENT_VERSION),
        server_version,
    })
}

/// One round trip on an open channel: QueryValidPaths of nothing (no lock,
/// no substitution), answered by an empty set. Repeatable.
pub async fn ping<R, W>(r: &mut R, w: &mut W) -> Result<(), ProtocolError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    Message::default()
        .u64(CMD_QUERY_VALID_PATHS)
        .u64(0) // lock
        .u64(0) // substitute
        .u64(0) // no paths
        .send(w)
        .await?;
    read_strings(r, "valid paths").await?;
    Ok(())
}
