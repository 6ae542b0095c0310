//! The worker protocol's "stderr" stream: after the handshake and after each
//! operation the daemon sends tagged frames (log lines, activities, results)
//! ending in LAST, or an ERROR that replaces the reply.

use tokio::io::AsyncRead;

use super::wire::{read_count, read_string, read_u64};
use super::{ProtocolError, ProtocolVersion, text};

const NEXT: u64 = 0x6f6c_6d67;
const READ: u64 = 0x6461_7461;
const WRITE: u64 = 0x6461_7416;
const LAST: u64 = 0x616c_7473;
const ERROR: u64 = 0x6378_7470;
const START_ACTIVITY: u64 = 0x5354_5254;
const STOP_ACTIVITY: u64 = 0x5354_4f50;
const RESULT: u64 = 0x5253_4c54;

/// Structured errors (`readError`) replaced `string msg, u64 status` in 1.26.
const STRUCTURED_ERRORS: ProtocolVersion = ProtocolVersion::new(1, 26);

/// Reads frames up to LAST, skipping log output. An ERROR frame becomes
/// [`ProtocolError::Remote`]. READ/WRITE frames are refused: they only come
/// with operations that stream data, and we send none of those.
pub(crate) async fn read_until_last<R: AsyncRead + Unpin>(
    r: &mut R,
    version: ProtocolVersion,
) -> Result<(), ProtocolError> {
    loop {
        match read_u64(r, "stderr frame").await? {
            LAST => return Ok(()),
            NEXT => {
                let line = read_string(r, "log line").await?;
                tracing::debug!(line = %text::strip_ansi(line.trim_end()), "daemon log");
            }
            START_ACTIVITY => {
                read_u64(r, "activity id").await?;
                read_u64(r, "activity level").await?;
                read_u64(r, "activity type").await?;
                read_string(r, "activity text").await?;
                skip_fields(r).await?;
                read_u64(r, "activity parent").await?;
            }
            STOP_ACTIVITY => {
                read_u64(r, "activity id").await?;
            }
            RESULT => {
                read_u64(r, "activity id").await?;
                read_u64(r, "result type").await?;
                skip_fields(r).await?;
            }
            ERROR => return Err(read_error(r, version).await?),
            tag @ (READ | WRITE) => {
                return Err(ProtocolError::malformed(
                    "stderr frame",
                    format!("daemon asked to stream data ({tag:#x}) during a query"),
                ));
            }
            tag => {
                return Err(ProtocolError::malformed(
                    "stderr frame",
                    format!("unknown tag {tag:#x}"),
                ));
            }
        }
    }
}

/// Activity/result fields: a count, then per field 0 + u64 or 1 + string.
async fn skip_fields<R: AsyncRead + Unpin>(r: &mut R) -> Result<(), ProtocolError> {
    for _ in 0..read_count(r, "activity fields").await? {
        match read_u64(r, "field type").await? {
            0 => {
                read_u64(r, "field value").await?;
            }
            1 => {
                read_string(r, "field value").await?;
            }
            t => {
                return Err(ProtocolError::malformed("field type", format!("{t}")));
            }
        }
    }
    Ok(())
}

/// The body of an ERROR frame, as the [`ProtocolError::Remote`] it stands for.
async fn read_error<R: AsyncRead + Unpin>(
    r: &mut R,
    version: ProtocolVersion,
) -> Result<ProtocolError, ProtocolError> {
    let message = if version >= STRUCTURED_ERRORS {
        // "Error", level, name (unused, always "Error"), message, have-position
        // (always 0), then traces, each 0 + text.
        let kind = read_string(r, "error frame").await?;
        if kind != "Error" {
            return Err(ProtocolError::malformed(
                "error frame",
                format!("type {kind:?}"),
            ));
        }
        read_u64(r, "error level").await?;
        read_string(r, "error name").await?;
        let message = read_string(r, "error message").await?;
        expect_no_position(r).await?;
        for _ in 0..read_count(r, "error traces").await? {
            expect_no_position(r).await?;
            read_string(r, "error trace").await?;
        }
        message
    } else {
        let message = read_string(r, "error message").await?;
        read_u64(r, "error status").await?;
        message
    };
    Ok(ProtocolError::Remote {
        message: text::strip_ansi(message.trim_end()),
    })
}

/// Nix never sends positions (and asserts so); one would shift the framing.
async fn expect_no_position<R: AsyncRead + Unpin>(r: &mut R) -> Result<(), ProtocolError> {
    match read_u64(r, "error position").await? {
        0 => Ok(()),
        n => Err(ProtocolError::malformed(
            "error frame",
            format!("position flag {n}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::Message;

    const V1_34: ProtocolVersion = ProtocolVersion::new(1, 34);
    const V1_25: ProtocolVersion = ProtocolVersion::new(1, 25);

    async fn run(bytes: Vec<u8>, version: ProtocolVersion) -> (Result<(), ProtocolError>, usize) {
        let mut r = &bytes[..];
        let res = read_until_last(&mut r, version).await;
        (res, r.len())
    }

    #[tokio::test]
    async fn skips_logs_and_activities_up_to_last() {
        let bytes = Message::default()
            .u64(NEXT)
            .string(b"warning: \x1b[1mhi\x1b[0m\n")
            .u64(START_ACTIVITY)
            .u64(7)
            .u64(3)
            .u64(105)
            .string(b"building")
            .u64(2)
            .u64(1)
            .string(b"/nix/store/x.drv")
            .u64(0)
            .u64(1)
            .u64(0)
            .u64(RESULT)
            .u64(7)
            .u64(101)
            .u64(1)
            .u64(1)
            .string(b"line")
            .u64(STOP_ACTIVITY)
            .u64(7)
            .u64(LAST)
            .u64(42) // the reply that follows is not ours to read
            .into_bytes();
        let (res, left) = run(bytes, V1_34).await;
        res.unwrap();
        assert_eq!(left, 8);
    }

    #[tokio::test]
    async fn structured_error_frame() {
        let bytes = Message::default()
            .u64(ERROR)
            .string(b"Error")
            .u64(0)
            .string(b"Error")
            .string(b"path '\x1b[35;1m/x\x1b[0m' is not in the Nix store")
            .u64(0)
            .u64(1)
            .u64(0)
            .string(b"while doing something")
            .into_bytes();
        let (res, left) = run(bytes, V1_34).await;
        match res {
            Err(ProtocolError::Remote { message }) => {
                assert_eq!(message, "path '/x' is not in the Nix store")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn old_error_frame_is_message_and_status() {
        let bytes = Message::default()
            .u64(ERROR)
            .string(b"error: out of disk\n")
            .u64(1)
            .into_bytes();
        let (res, left) = run(bytes, V1_25).await;
        assert!(
            matches!(res, Err(ProtocolError::Remote { message }) if message == "error: out of disk")
        );
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn structured_error_must_say_error_and_have_no_position() {
        let wrong_kind = Message::default().u64(ERROR).string(b"Oops").into_bytes();
        assert!(matches!(
            run(wrong_kind, V1_34).await.0,
            Err(ProtocolError::Malformed { .. })
        ));
        let with_pos = Message::default()
            .u64(ERROR)
            .string(b"Error")
            .u64(0)
            .string(b"Error")
            .string(b"m")
            .u64(1)
            .into_bytes();
        assert!(matches!(
            run(with_pos, V1_34).await.0,
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[tokio::test]
    async fn short_reads_inside_frames() {
        let cases: [(Vec<u8>, &str); 4] = [
            (vec![0x73, 0x74], "stderr frame"),
            (
                Message::default().u64(NEXT).u64(10).into_bytes(),
                "log line",
            ),
            (
                Message::default().u64(ERROR).string(b"Error").into_bytes(),
                "error level",
            ),
            (
                Message::default().u64(ERROR).string(b"m").into_bytes(),
                "error status",
            ),
        ];
        for (i, (bytes, what)) in cases.into_iter().enumerate() {
            let version = if i == 3 { V1_25 } else { V1_34 };
            match run(bytes, version).await.0 {
                Err(ProtocolError::UnexpectedEof { what: w }) => assert_eq!(w, what),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn refuses_unknown_and_streaming_frames_and_bad_fields() {
        for tag in [READ, WRITE, 0x1234] {
            let bytes = Message::default().u64(tag).into_bytes();
            assert!(matches!(
                run(bytes, V1_34).await.0,
                Err(ProtocolError::Malformed { .. })
            ));
        }
        let bad_field = Message::default()
            .u64(RESULT)
            .u64(1)
            .u64(101)
            .u64(1)
            .u64(2)
            .into_bytes();
        assert!(matches!(
            run(bad_field, V1_34).await.0,
            Err(ProtocolError::Malformed {
                what: "field type",
                ..
            })
        ));
    }
}
