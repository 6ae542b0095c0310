//! What can go wrong talking to a remote Nix.

use super::ProtocolVersion;
use super::text;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// EOF before a complete value; `what` names the value ("server magic",
    /// "protocol version", "nix version string", ...).
    #[error("connection closed while reading the {what}")]
    UnexpectedEof { what: &'static str },

    /// The peer sent something that is not the expected magic. `garbage` is
    /// what arrived: the 8 bytes read plus whatever else came within
    /// ~200 ms (at most 512 bytes), or fewer than 8 bytes if the peer then
    /// closed. Typically a shell banner or a "command not found".
    #[error(
        "protocol mismatch: expected magic {expected:#x}, got '{}'",
        printable_garbage(garbage)
    )]
    WrongMagic { expected: u64, garbage: Vec<u8> },

    #[error("unsupported protocol version {version}: {reason}")]
    UnsupportedVersion {
        version: ProtocolVersion,
        reason: &'static str,
    },

    /// An error frame sent by the daemon (worker protocol), colour codes removed.
    #[error("{message}")]
    Remote { message: String },

    /// A string or list longer than we accept (see `MAX_STRING`, `MAX_LIST`).
    #[error("{what} is too long ({len}, at most {max})")]
    TooLong {
        what: &'static str,
        len: u64,
        max: u64,
    },

    /// Well-framed bytes that make no sense here: an unknown stderr frame,
    /// a trust flag that is not 0/1/2, non-zero padding, ...
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ProtocolError {
    /// For [`ProtocolError::WrongMagic`]: the first non-empty line of what the
    /// peer sent, decoded lossily, trimmed, without terminal colour codes.
    pub fn garbage_text(&self) -> Option<String> {
        match self {
            ProtocolError::WrongMagic { garbage, .. } => text::first_line(garbage),
            _ => None,
        }
    }

    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        ProtocolError::Malformed {
            what,
            detail: detail.into(),
        }
    }
}

/// The first line if there is one, else the bytes in hex (binary noise).
fn printable_garbage(garbage: &[u8]) -> String {
    text::first_line(garbage).unwrap_or_else(|| {
        garbage
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_magic_shows_the_first_line() {
        let e = ProtocolError::WrongMagic {
            expected: 0x5452eecb,
            garbage: b"\n\nWelcome to host\nLast login: never\n".to_vec(),
        };
        assert_eq!(e.garbage_text().as_deref(), Some("Welcome to host"));
        assert_eq!(
            e.to_string(),
            "protocol mismatch: expected magic 0x5452eecb, got 'Welcome to host'"
        );
    }

    #[test]
    fn wrong_magic_of_blank_bytes_shows_hex() {
        let e = ProtocolError::WrongMagic {
            expected: 1,
            garbage: vec![0, 0, 0, 0, 0, 0, 0, 0x0a],
        };
        assert_eq!(e.garbage_text(), None);
        assert!(e.to_string().ends_with("got '000000000000000a'"));
    }

    #[test]
    fn garbage_text_only_for_wrong_magic() {
        let e = ProtocolError::Remote {
            message: "x".into(),
        };
        assert_eq!(e.garbage_text(), None);
    }
}
