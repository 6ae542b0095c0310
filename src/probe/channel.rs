//! A byte channel to a store or to the facts loop: the stdin/stdout of a
//! remote command over SSH, of a local child, or a unix socket. The protocol
//! code sees only `AsyncRead`/`AsyncWrite`; this keeps the process behind it,
//! and the tail of its stderr for error messages.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};

use crate::bounds::{STDERR_LINE, read_line_capped};

pub(crate) type Reader = Box<dyn AsyncRead + Unpin + Send>;
pub(crate) type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// How many stderr lines are kept per channel.
const STDERR_LINES: usize = crate::bounds::STDERR_KEPT.limit;

/// The last lines a process wrote to stderr, filled by a background task.
#[derive(Debug, Default)]
pub(crate) struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl StderrTail {
    fn follow(&mut self, stream: impl AsyncRead + Unpin + Send + 'static) {
        let tail = Arc::clone(&self.lines);
        self.reader = Some(tokio::spawn(async move {
            // Each line capped (a store can write without a newline for
            // ever), and only the last few kept: memory stays flat.
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match read_line_capped(&mut reader, &mut line, STDERR_LINE.limit, true).await {
                    Ok((0, _)) | Err(_) => break,
                    Ok((_, cut)) => {
                        let mut text = String::from_utf8_lossy(&line)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        if cut {
                            text.push_str(" […]");
                        }
                        let mut kept = tail.lock().unwrap_or_else(|e| e.into_inner());
                        if kept.len() == STDERR_LINES {
                            kept.pop_front();
                        }
                        kept.push_back(text);
                    }
                }
            }
        }));
    }

    /// Everything kept, once the stream has ended (or `grace` has passed).
    pub(crate) async fn text(mut self, grace: Duration) -> String {
        if let Some(reader) = self.reader.take()
            && tokio::time::timeout(grace, reader).await.is_err()
        {
            tracing::debug!("stderr still open after {grace:?}");
        }
        let kept = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().map(|l| format!("{l}\n")).collect()
    }
}

impl Drop for StderrTail {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }
}

enum Process {
    Remote(openssh::Child<Arc<openssh::Session>>),
    Local(tokio::process::Child),
    Socket,
}

pub(crate) struct Channel {
    pub reader: Reader,
    pub writer: Writer,
    pub stderr: StderrTail,
    /// The command line, for messages (`nix-store --serve --write`).
    pub command: String,
    process: Process,
}

impl Channel {
    /// Run `words` on the builder (each word shell-escaped for the remote shell).
    pub(crate) async fn remote(
        session: &Arc<openssh::Session>,
        words: &[String],
    ) -> Result<Channel, openssh::Error> {
        let (program, args) = words.split_first().expect("a command");
        let mut child = openssh::Session::to_command(Arc::clone(session), program.as_str())
            .args(args)
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await?;
        let mut stderr = StderrTail::default();
        if let Some(stream) = child.stderr().take() {
            stderr.follow(stream);
        }
        Ok(Channel {
            reader: Box::new(child.stdout().take().expect("piped stdout")),
            writer: Box::new(child.stdin().take().expect("piped stdin")),
            stderr,
            command: words.join(" "),
            process: Process::Remote(child),
        })
    }

    /// Run `words` here, as Nix does for `ssh://localhost` and local stores.
    pub(crate) fn local(words: &[String]) -> std::io::Result<Channel> {
        let (program, args) = words.split_first().expect("a command");
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stderr = StderrTail::default();
        if let Some(stream) = child.stderr.take() {
            stderr.follow(stream);
        }
        Ok(Channel {
            reader: Box::new(child.stdout.take().expect("piped stdout")),
            writer: Box::new(child.stdin.take().expect("piped stdin")),
            stderr,
            command: words.join(" "),
            process: Process::Local(child),
        })
    }

    /// A connected unix socket (the local daemon).
    pub(crate) fn socket(stream: tokio::net::UnixStream, label: String) -> Channel {
        let (reader, writer) = stream.into_split();
        Channel {
            reader: Box::new(reader),
            writer: Box::new(writer),
            stderr: StderrTail::default(),
            command: label,
            process: Process::Socket,
        }
    }

    /// After a failure: close stdin, give the process `grace` to exit, and
    /// return its exit code and stderr. Kills a local process that lingers.
    pub(crate) async fn finish(self, grace: Duration) -> (Option<i32>, String) {
        let Channel {
            reader,
            writer,
            stderr,
            process,
            ..
        } = self;
        drop(writer);
        drop(reader);
        let code = match process {
            Process::Remote(child) => tokio::time::timeout(grace, child.wait())
                .await
                .ok()
                .and_then(Result::ok)
                .and_then(|status| status.code()),
            Process::Local(mut child) => match tokio::time::timeout(grace, child.wait()).await {
                Ok(Ok(status)) => status.code(),
                _ => {
                    let _ = child.kill().await;
                    None
                }
            },
            Process::Socket => None,
        };
        // The process has exited (or been given up on): its stderr ends with it.
        (code, stderr.text(grace).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store writing stderr without a newline for ever (the dashboard
    /// went from 58 to 319 MB in 32 s): each line is cut, the tail stays small.
    #[tokio::test]
    async fn endless_stderr_without_a_newline_keeps_a_bounded_tail() {
        let words: Vec<String> = [
            "sh",
            "-c",
            "head -c 50000000 /dev/zero | tr '\\0' x >&2; echo >&2; echo last >&2",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        let channel = Channel::local(&words).unwrap();
        let (_, stderr) = channel.finish(Duration::from_secs(60)).await;
        assert!(
            stderr.len() <= 2 * STDERR_LINE.limit,
            "{} bytes kept",
            stderr.len()
        );
        assert!(
            stderr.ends_with("x […]\nlast\n"),
            "{}",
            &stderr[stderr.len() - 40..]
        );
    }
}
