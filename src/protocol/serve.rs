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

/// The newest serve protocol rbtop knows of: Nix 2.35's 2.8. A server at
/// 2.8 is Nix ≥ 2.35; one above it is newer than rbtop (still spoken to at 2.7).
pub const NEWEST_KNOWN: ProtocolVersion = ProtocolVersion::new(2, 8);

/// Which Nix speaks a serve protocol version, as far as rbtop knows.
pub fn nix_of(server: ProtocolVersion) -> &'static str {
    match server.minor {
        _ if server.major != 2 => "not a serve protocol version",
        0..=4 => "Nix older than 2.4 (too old for current Nix)",
        5..=6 => "Nix older than 2.8",
        7 => "Nix 2.8 to 2.34 (or Lix)",
        8 => "Nix 2.35 or later",
        _ => "a Nix newer than rbtop knows",
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_nix_2_35_server_is_known_and_spoken_to_at_2_7() {
        let reply = Message::default()
            .u64(MAGIC_2)
            .u64(NEWEST_KNOWN.to_wire())
            .into_bytes();
        let mut sent = Vec::new();
        let hello = handshake(&mut &reply[..], &mut sent).await.unwrap();
        assert_eq!(hello.server_version, ProtocolVersion::new(2, 8));
        assert_eq!(hello.version, CLIENT_VERSION);
        assert_eq!(nix_of(hello.server_version), "Nix 2.35 or later");
        assert_eq!(
            nix_of(ProtocolVersion::new(2, 9)),
            "a Nix newer than rbtop knows"
        );
    }
}
