//! The two long-lived channels a probe keeps per host: the store protocol
//! (pinged on every refresh) and the facts loop (asked on every refresh).

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::channel::Channel;
use super::classify::{self, StoreExit};
use super::facts::{END_MARKER, Facts};
use super::report::Failure;
use crate::protocol::{ProtocolError, ProtocolVersion, serve, worker};

/// Which handshake a store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreProtocol {
    /// `nix-store --serve` (`ssh://`, local stores).
    Serve,
    /// `nix-daemon --stdio` or the daemon socket (`ssh-ng://`, `daemon`, `unix://`).
    Worker,
}

/// What the handshake told us.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreHello {
    pub version: ProtocolVersion,
    pub nix_version: Option<String>,
    pub trusted: Option<bool>,
}

/// An open store channel that has completed its handshake.
pub struct StoreLink {
    channel: Channel,
    protocol: StoreProtocol,
    pub hello: StoreHello,
}

impl StoreLink {
    /// Handshake on a fresh channel. On failure the channel is wound down and
    /// its stderr and exit code go into the classified failure.
    pub async fn open(
        mut channel: Channel,
        protocol: StoreProtocol,
    ) -> Result<(StoreLink, Duration), Failure> {
        let started = Instant::now();
        let result = match protocol {
            StoreProtocol::Serve => serve::handshake(&mut channel.reader, &mut channel.writer)
                .await
                .map(|hello| StoreHello {
                    version: hello.version,
                    nix_version: None,
                    trusted: None,
                }),
            StoreProtocol::Worker => worker::handshake(
                &mut channel.reader,
                &mut channel.writer,
                worker::CLIENT_VERSION,
            )
            .await
            .map(|hello| StoreHello {
                version: hello.version,
                nix_version: hello.nix_version,
                trusted: hello.trusted,
            }),
        };
        let elapsed = started.elapsed();
        match result {
            Ok(hello) => Ok((
                StoreLink {
                    channel,
                    protocol,
                    hello,
                },
                elapsed,
            )),
            Err(error) => Err(fail(channel, &error).await),
        }
    }

    /// One round trip (`QueryValidPaths` of nothing). A failed ping closes the link.
    pub async fn ping(mut self) -> Result<(StoreLink, Duration), Failure> {
        let started = Instant::now();
        let channel = &mut self.channel;
        let result = match self.protocol {
            StoreProtocol::Serve => serve::ping(&mut channel.reader, &mut channel.writer).await,
            StoreProtocol::Worker => {
                worker::ping(&mut channel.reader, &mut channel.writer, self.hello.version).await
            }
        };
        let elapsed = started.elapsed();
        match result {
            Ok(()) => Ok((self, elapsed)),
            Err(error) => Err(fail(self.channel, &error).await),
        }
    }
}

async fn fail(channel: Channel, error: &ProtocolError) -> Failure {
    let command = channel.command.clone();
    let (code, stderr) = channel.finish(Duration::from_millis(500)).await;
    classify::store_failure(
        error,
        &StoreExit {
            command: &command,
            stderr: &stderr,
            code,
        },
    )
}

/// The facts loop ([`super::facts::FACTS_SCRIPT`]) running on the host.
pub struct FactsLink {
    writer: super::channel::Writer,
    lines: tokio::io::Lines<BufReader<super::channel::Reader>>,
    _channel_rest: Channel,
}

impl FactsLink {
    pub fn new(mut channel: Channel) -> FactsLink {
        // The channel keeps the process; its reader and writer move here.
        let reader = std::mem::replace(&mut channel.reader, Box::new(tokio::io::empty()));
        let writer = std::mem::replace(&mut channel.writer, Box::new(tokio::io::sink()));
        FactsLink {
            writer,
            lines: BufReader::new(reader).lines(),
            _channel_rest: channel,
        }
    }

    /// Ask for one report.
    pub async fn read(&mut self) -> Result<Facts, String> {
        self.writer
            .write_all(b"\n")
            .await
            .map_err(|e| format!("facts loop: {e}"))?;
        self.writer
            .flush()
            .await
            .map_err(|e| format!("facts loop: {e}"))?;
        let mut report = String::new();
        loop {
            match self.lines.next_line().await {
                Ok(Some(line)) if line == END_MARKER => return Ok(Facts::parse(&report)),
                Ok(Some(line)) => {
                    report.push_str(&line);
                    report.push('\n');
                }
                Ok(None) => return Err("facts loop ended".to_string()),
                Err(e) => return Err(format!("facts loop: {e}")),
            }
        }
    }
}
