//! The opening move both protocols share: send our magic and version, then
//! expect the server's magic. Anything else is what the remote shell or
//! program said instead (a login banner, "nix-store: not found", ...), so we
//! keep a little of it for the error message.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, timeout_at};

use super::ProtocolError;
use super::wire::Message;

/// How long to keep collecting after a wrong magic, and how much.
const GARBAGE_WAIT: Duration = Duration::from_millis(200);
const GARBAGE_MAX: usize = 512;

/// Sends `hello` and reads the peer's 8-byte magic, which must be `expected`.
pub(crate) async fn open<R, W>(
    r: &mut R,
    w: &mut W,
    hello: Message,
    expected: u64,
) -> Result<(), ProtocolError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match hello.send(w).await {
        // The peer may already have exited after printing why (a missing
        // nix-store): reading tells the user more than "broken pipe".
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    expect(r, expected).await
}

async fn expect<R: AsyncRead + Unpin>(r: &mut R, expected: u64) -> Result<(), ProtocolError> {
    let want = expected.to_le_bytes();
    let mut got = [0u8; 8];
    let mut n = 0;
    while n < 8 {
        match r.read(&mut got[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    if got[..n] == want[..n] {
        return if n == 8 {
            Ok(())
        } else {
            Err(ProtocolError::UnexpectedEof {
                what: "server magic",
            })
        };
    }
    let mut garbage = got[..n].to_vec();
    if n == 8 {
        collect_more(r, &mut garbage).await;
    }
    Err(ProtocolError::WrongMagic { expected, garbage })
}

/// Best effort: whatever else arrives soon, until EOF, an error, the
/// deadline or the size cap.
async fn collect_more<R: AsyncRead + Unpin>(r: &mut R, garbage: &mut Vec<u8>) {
    let deadline = Instant::now() + GARBAGE_WAIT;
    let mut buf = [0u8; GARBAGE_MAX];
    while garbage.len() < GARBAGE_MAX {
        let room = GARBAGE_MAX - garbage.len();
        match timeout_at(deadline, r.read(&mut buf[..room])).await {
            Ok(Ok(k)) if k > 0 => garbage.extend_from_slice(&buf[..k]),
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const MAGIC: u64 = 0x5452eecb;

    #[tokio::test]
    async fn accepts_the_magic_even_in_pieces() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let bytes = MAGIC.to_le_bytes();
        server.write_all(&bytes[..3]).await.unwrap();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            server.write_all(&bytes[3..]).await.unwrap();
            server
        });
        expect(&mut client, MAGIC).await.unwrap();
        drop(writer.await);
    }

    #[tokio::test]
    async fn eof_inside_the_magic_is_a_short_read() {
        let bytes = MAGIC.to_le_bytes();
        for n in 0..8 {
            let e = expect(&mut &bytes[..n], MAGIC).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    ProtocolError::UnexpectedEof {
                        what: "server magic"
                    }
                ),
                "{n}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn short_garbage_then_eof_is_still_garbage() {
        let e = expect(&mut &b"denied\n"[..], MAGIC).await.unwrap_err();
        assert_eq!(e.garbage_text().as_deref(), Some("denied"));
    }

    #[tokio::test]
    async fn garbage_is_capped() {
        let long = vec![b'x'; 4000];
        match expect(&mut &long[..], MAGIC).await.unwrap_err() {
            ProtocolError::WrongMagic { garbage, .. } => assert_eq!(garbage.len(), GARBAGE_MAX),
            e => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn garbage_collection_stops_at_the_deadline() {
        // The peer says one line and then keeps the channel open.
        let (mut client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"Welcome to host\n").await.unwrap();
        let e = expect(&mut client, MAGIC).await.unwrap_err();
        assert_eq!(e.garbage_text().as_deref(), Some("Welcome to host"));
        drop(server);
    }

    #[tokio::test]
    async fn a_closed_pipe_on_write_still_reads_the_reason() {
        let (mut client, server) = tokio::io::duplex(64);
        drop(server);
        let mut reply = &b"sh: 1: nix-store: not found\n"[..];
        let e = open(&mut reply, &mut client, Message::default().u64(1), MAGIC)
            .await
            .unwrap_err();
        assert_eq!(
            e.garbage_text().as_deref(),
            Some("sh: 1: nix-store: not found")
        );
    }
}
