//! The cold probe's one session: the facts script prints one report between
//! `begin NONCE` and `end NONCE`, then execs the store command on the same
//! channel (see `src/remote/scripts/facts.sh`, `--then-exec`). This reader
//! takes that report off the front of the channel's output and passes on
//! everything else, so the store's handshake sees exactly the bytes Nix
//! would see: a login shell's banner before `begin` is given back to it (and
//! fails the handshake as it would fail Nix), and a host where the script
//! never ran (a `ForceCommand`, no shell) shows the store code its real output.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};

use super::channel::Reader;

/// Past this many bytes before `begin` the front is not a report: everything
/// read goes to the store's side as it came.
const MAX_GARBAGE: usize = 64 * 1024;
/// A report (the facts and the builds listing: every process's `stat`)
/// larger than the two answers' bounds together is given up: the facts are
/// missing, the store still works.
const MAX_REPORT: usize = crate::bounds::FACTS_ANSWER.limit + crate::bounds::LISTING_ANSWER.limit;

/// Where the report lands once its `end` line has been read.
pub(crate) type ReportSlot = Arc<Mutex<Option<String>>>;

enum State {
    /// Reading lines until `end NONCE`.
    Front {
        line: Vec<u8>,
        /// What came before `begin`: not ours, handed to the store's side.
        garbage: Vec<u8>,
        /// The report so far, once `begin` was seen.
        report: Option<String>,
        /// The report outgrew [`MAX_REPORT`]: read on to its end, keep nothing.
        overflowed: bool,
    },
    /// Giving back what was read but is not the report.
    Replay { bytes: Vec<u8>, at: usize },
    /// The store's bytes, straight through.
    Through,
}

/// Either protocol's server magic in `bytes`: a store answering, not the
/// script (whose report is text, and whose magic-free lines end in newlines).
fn is_store_hello(bytes: &[u8]) -> bool {
    [
        crate::protocol::serve::MAGIC_2,
        crate::protocol::worker::MAGIC_2,
    ]
    .iter()
    .any(|magic| bytes.windows(8).any(|w| w == magic.to_le_bytes()))
}

pub(crate) struct FactsFirst {
    inner: BufReader<Reader>,
    begin: Vec<u8>,
    end: Vec<u8>,
    state: State,
    slot: ReportSlot,
}

impl FactsFirst {
    pub(crate) fn new(inner: Reader, nonce: &str, slot: ReportSlot) -> FactsFirst {
        FactsFirst {
            inner: BufReader::new(inner),
            begin: format!("begin {nonce}").into_bytes(),
            end: format!("end {nonce}").into_bytes(),
            state: State::Front {
                line: Vec::new(),
                garbage: Vec::new(),
                report: None,
                overflowed: false,
            },
            slot,
        }
    }

    /// One step of the front: `Some(bytes)` when the front is over and
    /// `bytes` go back to the reader of the store's side.
    fn front_step(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<Option<Vec<u8>>>> {
        let State::Front {
            line,
            garbage,
            report,
            overflowed,
        } = &mut self.state
        else {
            return Poll::Ready(Ok(None));
        };
        let available = ready!(Pin::new(&mut self.inner).poll_fill_buf(cx))?;
        if available.is_empty() {
            // Ended before the report was whole: the store's side sees what
            // was not ours (a shell that printed a banner, or no script at all).
            let mut back = std::mem::take(garbage);
            if report.is_none() {
                back.append(line);
            }
            return Poll::Ready(Ok(Some(back)));
        }
        let (taken, whole) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..taken]);
        Pin::new(&mut self.inner).consume(taken);
        // Only the new bytes (and the 7 before them) can complete a magic:
        // a store trickling bytes costs no rescans.
        let fresh = line.len().saturating_sub(taken + 7);
        match report {
            None if is_store_hello(&line[fresh..]) => {
                // The store runs without the script (a `ForceCommand`): its
                // hello has no newline and it now waits for us.
                let mut back = std::mem::take(garbage);
                back.append(line);
                return Poll::Ready(Ok(Some(back)));
            }
            None if garbage.len() + line.len() > MAX_GARBAGE => {
                // No report in sight: all of it is the store side's.
                let mut back = std::mem::take(garbage);
                back.append(line);
                return Poll::Ready(Ok(Some(back)));
            }
            Some(text) if text.len() + line.len() > MAX_REPORT => {
                // Too big to keep, but still ours: drop it and read on to `end`.
                *overflowed = true;
                text.clear();
                if !whole {
                    line.clear();
                    return Poll::Ready(Ok(None));
                }
            }
            _ => {}
        }
        if !whole {
            return Poll::Ready(Ok(None));
        }
        let text = &line[..line.len() - 1];
        match report {
            None if text.ends_with(&self.begin) => {
                // A banner without a newline ends up before `begin` on its line.
                garbage.extend_from_slice(&text[..text.len() - self.begin.len()]);
                *report = Some(String::new());
            }
            None => garbage.extend_from_slice(line),
            Some(_) if text == self.end.as_slice() => {
                let kept = report.take().filter(|_| !*overflowed);
                if *overflowed {
                    tracing::warn!("the first facts report was over {MAX_REPORT} bytes; dropped");
                }
                *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = kept;
                line.clear();
                return Poll::Ready(Ok(Some(std::mem::take(garbage))));
            }
            Some(_) if *overflowed => {}
            Some(text_so_far) => {
                text_so_far.push_str(&String::from_utf8_lossy(text));
                text_so_far.push('\n');
            }
        }
        line.clear();
        Poll::Ready(Ok(None))
    }
}

impl AsyncRead for FactsFirst {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Front { .. } => {
                    if let Some(bytes) = ready!(this.front_step(cx))? {
                        this.state = State::Replay { bytes, at: 0 };
                    }
                }
                State::Replay { bytes, at } => {
                    if *at < bytes.len() {
                        let n = buf.remaining().min(bytes.len() - *at);
                        buf.put_slice(&bytes[*at..*at + n]);
                        *at += n;
                        return Poll::Ready(Ok(()));
                    }
                    this.state = State::Through;
                }
                State::Through => return Pin::new(&mut this.inner).poll_read(cx, buf),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    async fn split(stream: &'static [u8]) -> (Option<String>, Vec<u8>) {
        let slot = ReportSlot::default();
        let mut reader = FactsFirst::new(Box::new(stream), "N1", Arc::clone(&slot));
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        let report = slot.lock().unwrap().take();
        (report, rest)
    }

    #[tokio::test]
    async fn the_report_is_taken_off_and_the_store_bytes_pass() {
        let (report, rest) = split(b"begin N1\nnix=2.8.0\nload=1 2 3\nend N1\n\x00\x01\xff").await;
        assert_eq!(report.as_deref(), Some("nix=2.8.0\nload=1 2 3\n"));
        assert_eq!(rest, b"\x00\x01\xff");
    }

    #[tokio::test]
    async fn a_banner_goes_to_the_store_side_as_it_came() {
        let (report, rest) = split(b"Welcome!\nhi begin N1\nend N1\nSTORE").await;
        assert_eq!(report.as_deref(), Some(""));
        assert_eq!(rest, b"Welcome!\nhi STORE");
    }

    #[tokio::test]
    async fn without_the_script_everything_is_the_store_side() {
        let (report, rest) = split(b"sh: 1: nix-store: not found\n").await;
        assert_eq!(report, None);
        assert_eq!(rest, b"sh: 1: nix-store: not found\n");
        let (report, rest) = split(b"no newline").await;
        assert_eq!((report, rest.as_slice()), (None, &b"no newline"[..]));
    }

    #[tokio::test]
    async fn a_report_cut_short_gives_no_facts_and_hides_nothing_else() {
        let (report, rest) = split(b"begin N1\nnix=2.8.0\n").await;
        assert_eq!((report, rest), (None, Vec::new()));
        // Another nonce's end does not end this report.
        let (report, _) = split(b"begin N1\nend N2\nend N1\n").await;
        assert_eq!(report.as_deref(), Some("end N2\n"));
    }

    /// A `ForceCommand nix-store --serve` (NixOS's `nix.sshServe`, an
    /// `authorized_keys` `command=`) runs the store without the script: its
    /// hello has no newline and it then waits for us, so the front must end
    /// at the store's magic, not at a newline or the end of the stream.
    #[tokio::test]
    async fn a_store_hello_without_the_script_passes_at_once() {
        for magic in [
            crate::protocol::serve::MAGIC_2,
            crate::protocol::worker::MAGIC_2,
        ] {
            let (mut writer, stream) = tokio::io::duplex(1024);
            let mut hello = b"banner ".to_vec();
            hello.extend_from_slice(&magic.to_le_bytes());
            hello.extend_from_slice(&0x206u64.to_le_bytes());
            tokio::io::AsyncWriteExt::write_all(&mut writer, &hello)
                .await
                .unwrap();
            let slot = ReportSlot::default();
            let mut reader = FactsFirst::new(Box::new(stream), "N1", Arc::clone(&slot));
            let mut got = vec![0u8; hello.len()];
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                reader.read_exact(&mut got),
            )
            .await
            .expect("the hello is passed on while the store waits")
            .unwrap();
            assert_eq!(got, hello);
            assert_eq!(*slot.lock().unwrap(), None);
            drop(writer);
        }
    }
}
