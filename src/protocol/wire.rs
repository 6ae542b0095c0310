//! Nix's wire encoding (libutil `serialise`): integers and bools are u64
//! little-endian; a string is its u64 length, the bytes, then zero padding
//! to a multiple of 8; a list is a u64 count, then its items.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ProtocolError, ProtocolVersion};

/// Longest string accepted from a peer (log lines, error messages, paths).
pub const MAX_STRING: u64 = crate::bounds::PROTOCOL_STRING.limit as u64;
/// Most items accepted in a list from a peer.
pub const MAX_LIST: u64 = crate::bounds::PROTOCOL_LIST.limit as u64;
/// Most bytes accepted in the strings of one list.
const MAX_LIST_BYTES: u64 = crate::bounds::PROTOCOL_LIST_BYTES.limit as u64;

/// One outgoing message, built whole so it goes out in one write + flush.
#[derive(Debug, Default)]
pub(crate) struct Message(Vec<u8>);

impl Message {
    pub(crate) fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }

    pub(crate) fn u64_if(self, cond: bool, n: u64) -> Self {
        if cond { self.u64(n) } else { self }
    }

    pub(crate) async fn send<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(&self.0).await?;
        w.flush().await
    }

    #[cfg(test)]
    pub(crate) fn string(mut self, s: &[u8]) -> Self {
        self = self.u64(s.len() as u64);
        self.0.extend_from_slice(s);
        self.0.resize(self.0.len() + padding(s.len() as u64), 0);
        self
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

fn padding(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}

/// Reads exactly `buf.len()` bytes; EOF part-way is `UnexpectedEof { what }`.
async fn read_exact<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), ProtocolError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(ProtocolError::UnexpectedEof { what })
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn read_u64<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
) -> Result<u64, ProtocolError> {
    let mut buf = [0u8; 8];
    read_exact(r, &mut buf, what).await?;
    Ok(u64::from_le_bytes(buf))
}

/// A protocol version; anything above 16 bits is rejected as garbage.
pub(crate) async fn read_version<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<ProtocolVersion, ProtocolError> {
    let n = read_u64(r, "protocol version").await?;
    ProtocolVersion::from_wire(n)
        .ok_or_else(|| ProtocolError::malformed("protocol version", format!("{n:#x}")))
}

pub(crate) async fn read_bytes<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
) -> Result<Vec<u8>, ProtocolError> {
    let len = read_u64(r, what).await?;
    if len > MAX_STRING {
        return Err(ProtocolError::TooLong {
            what,
            len,
            max: MAX_STRING,
        });
    }
    let mut buf = vec![0u8; len as usize + padding(len)];
    read_exact(r, &mut buf, what).await?;
    // Nix rejects non-zero padding too: it means we lost the framing.
    if buf[len as usize..].iter().any(|&b| b != 0) {
        return Err(ProtocolError::malformed(what, "non-zero padding"));
    }
    buf.truncate(len as usize);
    Ok(buf)
}

/// A string, decoded lossily: peers' strings are text for display here.
pub(crate) async fn read_string<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
) -> Result<String, ProtocolError> {
    let bytes = read_bytes(r, what).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A list count, checked against [`MAX_LIST`].
pub(crate) async fn read_count<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
) -> Result<u64, ProtocolError> {
    let n = read_u64(r, what).await?;
    if n > MAX_LIST {
        return Err(ProtocolError::TooLong {
            what,
            len: n,
            max: MAX_LIST,
        });
    }
    Ok(n)
}

pub(crate) async fn read_strings<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
) -> Result<Vec<String>, ProtocolError> {
    let n = read_count(r, what).await?;
    let mut out = Vec::new();
    let mut total = 0u64;
    for _ in 0..n {
        let s = read_string(r, what).await?;
        total += s.len() as u64;
        if total > MAX_LIST_BYTES {
            return Err(ProtocolError::TooLong {
                what,
                len: total,
                max: MAX_LIST_BYTES,
            });
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn string_is_length_bytes_and_padding() {
        let bytes = Message::default().string(b"2.8.0").into_bytes();
        assert_eq!(bytes, b"\x05\0\0\0\0\0\0\x002.8.0\0\0\0");
        assert_eq!(read_string(&mut &bytes[..], "s").await.unwrap(), "2.8.0");
        let eight = Message::default().string(b"12345678").into_bytes();
        assert_eq!(eight.len(), 16);
        let empty = Message::default().string(b"").into_bytes();
        assert_eq!(empty, [0; 8]);
        assert_eq!(read_string(&mut &empty[..], "s").await.unwrap(), "");
    }

    #[tokio::test]
    async fn a_list_of_many_long_strings_stops_at_its_total_bound() {
        // 65,536 strings of 1 MiB (64 GiB) once all read and kept: now
        // the 17th string of 1 MiB ends it.
        let one = Message::default()
            .string(&vec![b'x'; MAX_STRING as usize])
            .into_bytes();
        let mut bytes = Message::default().u64(MAX_LIST).into_bytes();
        for _ in 0..17 {
            bytes.extend_from_slice(&one);
        }
        let e = read_strings(&mut &bytes[..], "system features").await;
        assert!(
            matches!(e, Err(ProtocolError::TooLong { what: "system features", max, .. }) if max == MAX_LIST_BYTES),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn short_reads_name_the_value() {
        let e = read_u64(&mut &[1u8, 2, 3][..], "trust flag").await;
        assert!(matches!(
            e,
            Err(ProtocolError::UnexpectedEof { what: "trust flag" })
        ));
        // Length says 5, only 4 bytes follow (padding missing too).
        let short = b"\x05\0\0\0\0\0\0\x002.8.";
        let e = read_string(&mut &short[..], "nix version string").await;
        assert!(matches!(
            e,
            Err(ProtocolError::UnexpectedEof {
                what: "nix version string"
            })
        ));
        // Content complete but padding cut off.
        let short = b"\x05\0\0\0\0\0\0\x002.8.0\0";
        let e = read_string(&mut &short[..], "s").await;
        assert!(matches!(e, Err(ProtocolError::UnexpectedEof { what: "s" })));
    }

    #[tokio::test]
    async fn oversized_lengths_are_refused_before_allocating() {
        let huge = Message::default().u64(u64::MAX).into_bytes();
        let e = read_string(&mut &huge[..], "log line").await;
        assert!(matches!(
            e,
            Err(ProtocolError::TooLong {
                what: "log line",
                len: u64::MAX,
                max: MAX_STRING
            })
        ));
        let big = Message::default().u64(MAX_STRING + 1).into_bytes();
        assert!(matches!(
            read_bytes(&mut &big[..], "s").await,
            Err(ProtocolError::TooLong { .. })
        ));
        let many = Message::default().u64(MAX_LIST + 1).into_bytes();
        assert!(matches!(
            read_strings(&mut &many[..], "features").await,
            Err(ProtocolError::TooLong {
                what: "features",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn non_zero_padding_is_malformed() {
        let bad = b"\x01\0\0\0\0\0\0\x00a\0\0\0\0\0\0\x01";
        assert!(matches!(
            read_string(&mut &bad[..], "s").await,
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[tokio::test]
    async fn lists_and_versions() {
        let bytes = Message::default()
            .u64(2)
            .string(b"a")
            .string(b"bc")
            .u64(0x126)
            .u64(0x1_0126)
            .u64(0x1_0000_0126)
            .into_bytes();
        let r = &mut &bytes[..];
        assert_eq!(read_strings(r, "l").await.unwrap(), ["a", "bc"]);
        assert_eq!(read_version(r).await.unwrap(), ProtocolVersion::new(1, 38));
        // Bits above 15 are masked away, as Nix does.
        assert_eq!(read_version(r).await.unwrap(), ProtocolVersion::new(1, 38));
        assert!(matches!(
            read_version(r).await,
            Err(ProtocolError::Malformed {
                what: "protocol version",
                ..
            })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes as a list of strings: an error or a list within every
        /// bound, never a panic or an allocation from a length unchecked.
        #[test]
        fn any_frame_reads_within_its_bounds(
            count in proptest::prop_oneof![0u64..8, proptest::prelude::any::<u64>()],
            lens in proptest::collection::vec(proptest::prop_oneof![0u64..64, proptest::prelude::any::<u64>()], 0..8),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let mut bytes = Message::default().u64(count).into_bytes();
            for len in lens {
                bytes.extend_from_slice(&len.to_le_bytes());
                bytes.extend_from_slice(&tail);
            }
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            if let Ok(list) = rt.block_on(read_strings(&mut &bytes[..], "list")) {
                proptest::prop_assert!(list.len() as u64 <= MAX_LIST);
                proptest::prop_assert!(list.iter().all(|s| s.len() as u64 <= MAX_STRING));
            }
        }
    }
}
