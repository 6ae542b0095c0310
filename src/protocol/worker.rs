//! The worker protocol (`ssh-ng://` stores and the local daemon socket):
//! what `nix-daemon --stdio` speaks. The daemon reports its Nix version
//! (≥1.33) and whether it trusts us (≥1.35); from 1.38 both sides first
//! swap feature sets.

use tokio::io::{AsyncRead, AsyncWrite};

use super::wire::{Message, read_string, read_strings, read_u64, read_version};
use super::{ProtocolError, ProtocolVersion, magic, stderr};

pub const MAGIC_1: u64 = 0x6e69_7863;
pub const MAGIC_2: u64 = 0x6478_696f;

/// Newest version without the feature exchange (Nix 2.20–2.23); it still
/// gets the Nix version and trust from daemons that have them.
pub const CLIENT_VERSION: ProtocolVersion = ProtocolVersion::new(1, 37);
/// Newest version this module speaks (Nix ≥2.24): adds the feature exchange.
pub const LATEST: ProtocolVersion = ProtocolVersion::new(1, 38);
/// The features daemons offer today (1.38 on the wire; features instead of
/// new versions): Nix master's `WorkerProto::feature*` and Determinate
/// Nix's `queryActiveBuilds`. rbtop offers none, so uses none; this says
/// which offered ones it recognises.
pub const KNOWN_FEATURES: &[&str] = &[
    "realisation-with-path-not-hash",
    "delete-dead-specific-referrers",
    "disable-set-options",
    "add-to-store-scanning",
    "submit-output",
    "queryActiveBuilds",
];

/// The daemon's features rbtop does not know (a newer Nix than it knows).
pub fn unknown_features(features: &[String]) -> Vec<&str> {
    features
        .iter()
        .map(String::as_str)
        .filter(|f| !KNOWN_FEATURES.contains(f))
        .collect()
}

/// Nix refuses older daemons (master even wants 1.18).
pub const MINIMUM: ProtocolVersion = ProtocolVersion::new(1, 10);

const V_RESERVE_SPACE: ProtocolVersion = ProtocolVersion::new(1, 11);
const V_QUERY_VALID_PATHS: ProtocolVersion = ProtocolVersion::new(1, 12);
const V_CPU_AFFINITY: ProtocolVersion = ProtocolVersion::new(1, 14);
const V_SUBSTITUTE_FLAG: ProtocolVersion = ProtocolVersion::new(1, 27);
const V_NIX_VERSION: ProtocolVersion = ProtocolVersion::new(1, 33);
const V_TRUST: ProtocolVersion = ProtocolVersion::new(1, 35);
const V_FEATURES: ProtocolVersion = ProtocolVersion::new(1, 38);

const OP_QUERY_VALID_PATHS: u64 = 31;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerHello {
    /// Negotiated: the lower of ours and the daemon's.
    pub version: ProtocolVersion,
    pub server_version: ProtocolVersion,
    /// The daemon's Nix version, e.g. "2.8.0" (negotiated ≥1.33).
    pub nix_version: Option<String>,
    /// Whether the daemon trusts us (negotiated ≥1.35 and the daemon knows).
    pub trusted: Option<bool>,
    /// The features the daemon offered (negotiated ≥1.38). We offer none, so
    /// none is in use; this is what the daemon could do.
    pub features: Vec<String>,
}

/// Opens the connection speaking `client` (1.10 up to [`LATEST`]; usually
/// [`CLIENT_VERSION`] or [`LATEST`]) and reads the daemon's hello up to its
/// first LAST frame.
pub async fn handshake<R, W>(
    r: &mut R,
    w: &mut W,
    client: ProtocolVersion,
) -> Result<WorkerHello, ProtocolError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if client.major != 1 || client < MINIMUM || client > LATEST {
        return Err(ProtocolError::UnsupportedVersion {
            version: client,
            reason: "rbtop speaks worker protocol 1.10 to 1.38",
        });
    }
    let hello = Message::default().u64(MAGIC_1).u64(client.to_wire());
    magic::open(r, w, hello, MAGIC_2).await?;

    let server_version = read_version(r).await?;
    let unsupported = |reason| ProtocolError::UnsupportedVersion {
        version: server_version,
        reason,
    };
    if server_version.major != 1 {
        return Err(unsupported("the worker protocol's major version is 1"));
    }
    if server_version < MINIMUM {
        return Err(unsupported("Nix refuses daemons older than 1.10"));
    }
    let version = server_version.min(client);

    // Our (empty) feature set, then the two obsolete fields Nix still sends
    // as zeros; the daemon reads them in this order, so one write suffices.
    Message::default()
        .u64_if(version >= V_FEATURES, 0)
        .u64_if(version >= V_CPU_AFFINITY, 0)
        .u64_if(version >= V_RESERVE_SPACE, 0)
        .send(w)
        .await?;
    read_hello_rest(r, version, server_version).await
}

/// The daemon's hello in one round trip, for asking its trust alone: speaking
/// [`CLIENT_VERSION`] (no feature exchange), everything the client says
/// depends only on the negotiated version being ≥1.14, so it goes out with the
/// magic in one write. A daemon older than 1.14 (Nix < 1.11) is refused.
pub async fn handshake_at_once<R, W>(r: &mut R, w: &mut W) -> Result<WorkerHello, ProtocolError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    magic::open(r, w, at_once_message(), MAGIC_2).await?;
    read_at_once_reply_after_magic(r).await
}

/// The bytes [`handshake_at_once`] sends, for a client that sends them by
/// other means (the facts script feeds them to a remote `nix-daemon --stdio`).
pub fn at_once_hello() -> Vec<u8> {
    at_once_message().into_bytes()
}

/// The daemon's answer to [`at_once_hello`], read from `r` (bytes relayed
/// by someone else): the same checks as [`handshake_at_once`].
pub async fn read_at_once_reply<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<WorkerHello, ProtocolError> {
    magic::open(r, &mut tokio::io::sink(), Message::default(), MAGIC_2).await?;
    read_at_once_reply_after_magic(r).await
}

fn at_once_message() -> Message {
    Message::default()
        .u64(MAGIC_1)
        .u64(CLIENT_VERSION.to_wire())
        .u64(0) // obsolete CPU affinity (≥1.14)
        .u64(0) // obsolete reserveSpace (≥1.11)
}

async fn read_at_once_reply_after_magic<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<WorkerHello, ProtocolError> {
    let server_version = read_version(r).await?;
    if server_version.major != 1 || server_version < V_CPU_AFFINITY {
        return Err(ProtocolError::UnsupportedVersion {
            version: server_version,
            reason: "asking a daemon's trust in one write needs worker protocol 1.14 to 1.x",
        });
    }
    let version = server_version.min(CLIENT_VERSION);
    read_hello_rest(r, version, server_version).await
}

/// The daemon's side of the hello after the versions: features (≥1.38), its
/// Nix version (≥1.33), trust (≥1.35), then log frames up to LAST.
async fn read_hello_rest<R: AsyncRead + Unpin>(
    r: &mut R,
    version: ProtocolVersion,
    server_version: ProtocolVersion,
) -> Result<WorkerHello, ProtocolError> {
    let features = if version >= V_FEATURES {
        read_strings(r, "daemon features").await?
    } else {
        Vec::new()
    };
    let nix_version = if version >= V_NIX_VERSION {
        Some(read_string(r, "nix version string").await?)
    } else {
        None
    };
    let trusted = if version >= V_TRUST {
        match read_u64(r, "trust flag").await? {
            0 => None,
            1 => Some(true),
            2 => Some(false),
            n => return Err(ProtocolError::malformed("trust flag", format!("{n}"))),
        }
    } else {
        None
    };
    stderr::read_until_last(r, version).await?;

    Ok(WorkerHello {
        version,
        server_version,
        nix_version,
        trusted,
        features,
    })
}

/// One round trip on an open channel, `version` being the negotiated one:
/// QueryValidPaths of nothing (without substitution), answered by log frames
/// up to LAST and an empty set. Repeatable; an ERROR frame becomes
/// [`ProtocolError::Remote`].
pub async fn ping<R, W>(r: &mut R, w: &mut W, version: ProtocolVersion) -> Result<(), ProtocolError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if version < V_QUERY_VALID_PATHS {
        return Err(ProtocolError::UnsupportedVersion {
            version,
            reason: "QueryValidPaths needs worker protocol 1.12",
        });
    }
    Message::default()
        .u64(OP_QUERY_VALID_PATHS)
        .u64(0) // no paths
        .u64_if(version >= V_SUBSTITUTE_FLAG, 0)
        .send(w)
        .await?;
    stderr::read_until_last(r, version).await?;
    read_strings(r, "valid paths").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const LAST: u64 = 0x616c_7473;

    /// A daemon that checks the client's one write and answers `reply`.
    async fn at_once_against(reply: Vec<u8>) -> (Result<WorkerHello, ProtocolError>, Vec<u8>) {
        let (client, mut daemon) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut said = vec![0u8; 32];
            daemon.read_exact(&mut said).await.unwrap();
            daemon.write_all(&reply).await.unwrap();
            // Nothing more is sent before the client closes.
            let mut rest = Vec::new();
            daemon.read_to_end(&mut rest).await.unwrap();
            said.extend(rest);
            said
        });
        let (mut r, mut w) = tokio::io::split(client);
        let hello = handshake_at_once(&mut r, &mut w).await;
        drop((r, w));
        (hello, server.await.unwrap())
    }

    fn daemon_reply(server: u64, nix: Option<&[u8]>, trust: Option<u64>) -> Vec<u8> {
        let mut m = Message::default().u64(MAGIC_2).u64(server);
        if let Some(nix) = nix {
            m = m.string(nix);
        }
        if let Some(trust) = trust {
            m = m.u64(trust);
        }
        m.u64(LAST).into_bytes()
    }

    #[tokio::test]
    async fn one_write_says_magic_version_and_the_two_obsolete_zeros() {
        let (hello, said) = at_once_against(daemon_reply(0x122, Some(b"2.8.0"), None)).await;
        let expected = Message::default()
            .u64(MAGIC_1)
            .u64(0x125)
            .u64(0)
            .u64(0)
            .into_bytes();
        assert_eq!(said, expected);
        // Nix 2.8 (1.34): a version but no trust field.
        let hello = hello.unwrap();
        assert_eq!(hello.nix_version.as_deref(), Some("2.8.0"));
        assert_eq!(hello.trusted, None);
    }

    #[tokio::test]
    async fn trust_comes_from_daemons_of_1_35_and_later() {
        let (hello, _) = at_once_against(daemon_reply(0x123, Some(b"2.15.0"), Some(1))).await;
        assert_eq!(hello.unwrap().trusted, Some(true));
        let (hello, _) = at_once_against(daemon_reply(0x126, Some(b"2.26.3"), Some(2))).await;
        // 1.38 offered, 1.37 spoken: no feature exchange, trust follows the version.
        let hello = hello.unwrap();
        assert_eq!(
            (hello.version, hello.trusted),
            (CLIENT_VERSION, Some(false))
        );
        assert!(hello.features.is_empty());
        let (hello, _) = at_once_against(daemon_reply(0x125, Some(b"2.20.0"), Some(0))).await;
        assert_eq!(hello.unwrap().trusted, None, "0 is 'unknown'");
        let (hello, _) = at_once_against(daemon_reply(0x125, Some(b"2.20.0"), Some(7))).await;
        assert!(
            matches!(hello, Err(ProtocolError::Malformed { .. })),
            "{hello:?}"
        );
    }

    #[tokio::test]
    async fn daemons_older_than_1_14_are_refused() {
        let (hello, _) = at_once_against(daemon_reply(0x10d, None, None)).await;
        assert!(
            matches!(hello, Err(ProtocolError::UnsupportedVersion { .. })),
            "{hello:?}"
        );
    }

    #[test]
    fn features_of_todays_daemons_are_known() {
        let offered: Vec<String> = [
            "realisation-with-path-not-hash",
            "queryActiveBuilds",
            "teleport",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(unknown_features(&offered), ["teleport"]);
    }
}
