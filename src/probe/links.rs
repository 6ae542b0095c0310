//! The two long-lived channels a probe keeps per host: the store protocol
//! (pinged on every refresh) and the facts loop (asked on every refresh; for
//! the store's free space, which costs the host a `df`, once a [`SPACE_INTERVAL`]).

use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};

use crate::bounds::read_line_capped;

use super::channel::Channel;
use super::classify::{self, StoreExit};
use super::facts::{
    END_MARKER, Facts, LISTING_UNCHANGED, REQUEST_BUILDS, REQUEST_BUILDS_IF_NEW, REQUEST_DETAIL,
    REQUEST_QUICK, REQUEST_SPACE,
};
use super::report::{Failure, ProbeCost};
use crate::protocol::{ProtocolError, ProtocolVersion, serve, worker};
use crate::remote::listing::{self, ProcessListing};

/// Which handshake a store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreProtocol {
    /// `nix-store --serve` (`ssh://`, local stores).
    Serve,
    /// `nix-daemon --stdio` or the daemon socket (`ssh-ng://`, `daemon`, `unix://`).
    Worker,
}

/// What the handshake told us.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoreHello {
    pub version: ProtocolVersion,
    pub nix_version: Option<String>,
    pub trusted: Option<bool>,
}

/// The round trips of a handshake: the serve protocol's is one exchange
/// (magic and version each way); the worker protocol's two (magic, then the
/// client's version and options, answered by the version and trust).
pub(crate) fn handshake_round_trips(protocol: StoreProtocol) -> u32 {
    match protocol {
        StoreProtocol::Serve => 1,
        StoreProtocol::Worker => 2,
    }
}

/// An open store channel that has completed its handshake.
pub(crate) struct StoreLink {
    channel: Channel,
    protocol: StoreProtocol,
    pub hello: StoreHello,
}

impl StoreLink {
    /// Handshake on a fresh channel. On failure the channel is wound down and
    /// its stderr and exit code go into the classified failure.
    pub(crate) async fn open(
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
    pub(crate) async fn ping(mut self) -> Result<(StoreLink, Duration), Failure> {
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

/// A word nobody else can guess, to end one answer of the facts loop: the
/// processes whose names and environment it prints cannot forge it.
/// `RandomState` keys come from the OS's randomness.
pub(crate) fn nonce() -> String {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    format!("{:016x}", state.hash_one(Instant::now()))
}

/// How often the facts loop is asked for the store's free space. Every other
/// fact is read with shell built-ins and costs the host no process; free space
/// costs one `df`, so a refresh asks for it only when the last figure is this old.
pub const SPACE_INTERVAL: Duration = Duration::from_secs(60);

/// Why a host brought no facts this time. `Display` is the line that goes
/// to the log; a cause is part of it, so no variant also names it as a
/// `source`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FactsError {
    /// Writing a request or reading its answer failed.
    #[error("facts loop: {0}")]
    Io(std::io::Error),
    /// The loop closed its output: it exited, or its channel died.
    #[error("facts loop ended")]
    Ended,
    /// The loop could not be started over the host's SSH session.
    #[error("cannot start the facts loop over ssh: {0}")]
    StartOverSsh(openssh::Error),
    /// The loop could not be started here (local stores, the daemon socket).
    #[error("cannot start the facts loop: {0}")]
    StartHere(std::io::Error),
    /// The route has no way to run the loop (no session for an SSH store).
    #[error("no way to gather facts")]
    NoWay,
    /// The report did not come before the probe's deadline.
    #[error("the facts did not arrive in time")]
    TooLate,
    /// The answer went on past its bound (a loop that never ends its answer).
    #[error("{}", .0.exceeded())]
    TooLong(crate::bounds::Bound),
}

/// The facts loop ([`super::crate::remote::script::FACTS.text`]) running on the host.
pub(crate) struct FactsLink {
    writer: super::channel::Writer,
    reader: BufReader<super::channel::Reader>,
    _channel_rest: Channel,
    space_interval: Duration,
    /// Whether each report also lists the host's processes.
    list_builds: bool,
    /// When free space was last asked for; `None` before the first report.
    space_asked: Option<Instant>,
    /// The figure of the last report that had one.
    store_free: Option<u64>,
    /// Whether the last read was the first over a session opened for it.
    opened_now: bool,
    /// Set when the session was just opened, taken by the next read.
    opened_pending: bool,
    /// The requests the last read sent, each waiting for its answer.
    asks: u32,
    /// The last listing, when it showed nothing building: a later
    /// `builds-if-new` answered `unchanged` stands for it.
    idle_listing: Option<ProcessListing>,
}

impl FactsLink {
    /// A link that asks for free space on its first report, then once per [`SPACE_INTERVAL`].
    pub(crate) fn new(channel: Channel) -> FactsLink {
        FactsLink::with_space_interval(channel, SPACE_INTERVAL)
    }

    /// As [`FactsLink::new`], asking for free space once per `space_interval`
    /// (zero: on every report).
    pub(crate) fn with_space_interval(mut channel: Channel, space_interval: Duration) -> FactsLink {
        // The channel keeps the process; its reader and writer move here.
        let reader = std::mem::replace(&mut channel.reader, Box::new(tokio::io::empty()));
        let writer = std::mem::replace(&mut channel.writer, Box::new(tokio::io::sink()));
        FactsLink {
            writer,
            reader: BufReader::new(reader),
            _channel_rest: channel,
            space_interval,
            list_builds: false,
            space_asked: None,
            store_free: None,
            opened_now: false,
            opened_pending: false,
            asks: 0,
            idle_listing: None,
        }
    }

    /// Count the next read as the one that opened this link's session.
    pub(crate) fn opened_over_ssh(mut self) -> FactsLink {
        self.opened_pending = true;
        self
    }

    /// What the last read cost the host (see [`ProbeCost`]).
    pub(crate) fn last_cost(&self) -> ProbeCost {
        let opened = u32::from(self.opened_now);
        ProbeCost {
            sessions: opened,
            round_trips: opened + self.asks,
        }
    }

    /// Have every report list the host's processes too (one `grep` there).
    pub(crate) fn listing_builds(mut self, list_builds: bool) -> FactsLink {
        self.list_builds = list_builds;
        self
    }

    /// Ask for one report. Its `store_free` is always the latest figure: fresh
    /// when this report asked for it, else that of the last report that did.
    pub(crate) async fn read(&mut self) -> Result<Facts, FactsError> {
        self.asks = 0;
        self.opened_now = std::mem::take(&mut self.opened_pending);
        let now = Instant::now();
        let space = self
            .space_asked
            .is_none_or(|asked| now.duration_since(asked) >= self.space_interval);
        let request = if space { REQUEST_SPACE } else { REQUEST_QUICK };
        let builds = match (self.list_builds, &self.idle_listing) {
            (false, _) => "",
            (true, None) => REQUEST_BUILDS,
            (true, Some(_)) => REQUEST_BUILDS_IF_NEW,
        };
        let nonce = nonce();
        // A listing of processes is larger than the facts alone.
        let bound = if self.list_builds {
            crate::bounds::LISTING_ANSWER
        } else {
            crate::bounds::FACTS_ANSWER
        };
        let mut report = self
            .ask(&format!("{request} {nonce} {builds}"), &nonce, bound)
            .await?;
        // The section's first line, which no process's words come before.
        let begin = format!("{}\n", listing::BEGIN);
        let same_listing = report
            .split_once(&begin)
            .is_some_and(|(_, section)| section == format!("{LISTING_UNCHANGED}\n"));
        if same_listing && let Some((facts_part, _)) = report.split_once(&begin) {
            report = facts_part.to_string();
        }
        let mut facts = Facts::parse_with(&report, &nonce);
        if same_listing && let Some(idle) = &self.idle_listing {
            facts.processes = Some(Ok(idle.clone()));
        }
        if let Some(Ok(listing)) = &mut facts.processes {
            // Only when the listing shows builds: their details.
            let pids = listing.detail_pids();
            if !pids.is_empty() {
                let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
                let nonce = self::nonce();
                let answer = self
                    .ask(
                        &format!("{REQUEST_DETAIL} {nonce} {}", pids.join(" ")),
                        &nonce,
                        crate::bounds::LISTING_ANSWER,
                    )
                    .await?;
                listing.apply_detail(&answer, &nonce);
            }
        }
        self.idle_listing = match &facts.processes {
            Some(Ok(listing)) if listing.building_parents().is_empty() => Some(listing.clone()),
            _ => None,
        };
        self.carry_space(&mut facts, space, now);
        Ok(facts)
    }

    /// Send one request line and read the answer up to `end NONCE`.
    async fn ask(
        &mut self,
        request: &str,
        nonce: &str,
        bound: crate::bounds::Bound,
    ) -> Result<String, FactsError> {
        self.asks += 1;
        let end = format!("{END_MARKER} {nonce}");
        self.writer
            .write_all(format!("{request}\n").as_bytes())
            .await
            .map_err(FactsError::Io)?;
        self.writer.flush().await.map_err(FactsError::Io)?;
        // The whole answer is bounded, each line within it too: a host that
        // never ends its answer fails, it does not fill this machine's memory.
        let mut report = String::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let room = bound.limit.saturating_sub(report.len());
            match read_line_capped(&mut self.reader, &mut line, room + 1, false).await {
                Ok((0, _)) => return Err(FactsError::Ended),
                Ok((_, true)) => return Err(FactsError::TooLong(bound)),
                Ok(_) if line.len() > room => return Err(FactsError::TooLong(bound)),
                Ok(_) => {
                    // A process's words or environment need not be UTF-8.
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches('\n');
                    if text == end {
                        break;
                    }
                    report.push_str(text);
                    report.push('\n');
                }
                Err(e) => return Err(FactsError::Io(e)),
            }
        }
        Ok(report)
    }

    /// Its `store_free` is always the latest figure: fresh when this report
    /// asked for it, else that of the last report that did.
    fn carry_space(&mut self, facts: &mut Facts, space: bool, now: Instant) {
        if space {
            // A failed `df` makes the figure unknown, not the old one.
            self.space_asked = Some(now);
            self.store_free = facts.store_free;
        } else if facts.store_free.is_some() {
            // A loop that reports it unasked: take the fresher figure.
            self.store_free = facts.store_free;
        } else {
            facts.store_free = self.store_free;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loop_link(script: &str, space_interval: Duration) -> FactsLink {
        let words: Vec<String> = ["sh", "-c", script, "rbtop-facts", "/"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        FactsLink::with_space_interval(Channel::local(&words).unwrap(), space_interval)
    }

    /// A stand-in loop that numbers its reports and says which word it got,
    /// so the tests see exactly what was asked and what came back.
    const NUMBERING_LOOP: &str = r#"
n=0
while read -r request nonce _rest; do
  n=$((n + 1))
  echo "uptime_s=$n"
  [ "$request" = space ] && echo "store_free_kib=$n"
  echo "end $nonce"
done
"#;

    /// A loop that answers without end (700+ MB within `--timeout 5` once):
    /// the answer fails at its bound, memory stays bounded.
    #[tokio::test]
    async fn a_never_ending_answer_fails_at_its_bound() {
        let mut link = loop_link("read -r _; yes uptime_s=1", SPACE_INTERVAL);
        let e = link.read().await.unwrap_err();
        assert!(
            matches!(e, FactsError::TooLong(b) if b == crate::bounds::FACTS_ANSWER),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "a facts answer is longer than rbtop's bound of 1048576 bytes"
        );
        // One endless line, no newline at all: the same.
        let mut link = loop_link("read -r _; tr '\\0' x < /dev/zero", SPACE_INTERVAL);
        assert!(matches!(link.read().await, Err(FactsError::TooLong(_))));
    }

    #[tokio::test]
    async fn free_space_is_asked_first_then_once_per_interval_and_carried_over() {
        let mut link = loop_link(NUMBERING_LOOP, SPACE_INTERVAL);
        let first = link.read().await.unwrap();
        assert_eq!((first.uptime_s, first.store_free), (Some(1), Some(1024)));
        for n in 2..=4 {
            // Quick reports: the loop printed no free space; the last figure stands.
            let facts = link.read().await.unwrap();
            assert_eq!((facts.uptime_s, facts.store_free), (Some(n), Some(1024)));
        }
        // Once the interval has passed, the next report asks again.
        link.space_asked = Some(Instant::now() - SPACE_INTERVAL);
        let due = link.read().await.unwrap();
        assert_eq!((due.uptime_s, due.store_free), (Some(5), Some(5 * 1024)));
        let quick = link.read().await.unwrap();
        assert_eq!(
            (quick.uptime_s, quick.store_free),
            (Some(6), Some(5 * 1024))
        );
    }

    #[tokio::test]
    async fn a_zero_interval_asks_for_free_space_every_time() {
        let mut link = loop_link(NUMBERING_LOOP, Duration::ZERO);
        for n in 1..=3 {
            let facts = link.read().await.unwrap();
            assert_eq!(
                (facts.uptime_s, facts.store_free),
                (Some(n), Some(n * 1024))
            );
        }
    }

    #[tokio::test]
    async fn a_failed_df_is_unknown_and_an_unasked_figure_is_taken() {
        // Reports 1 (space) and 3 (quick) carry a figure, report 2 and 4 none.
        let script = r#"
n=0
while read -r request nonce _rest; do
  n=$((n + 1))
  case $n in 1|3) echo "store_free_kib=$n" ;; esac
  echo "end $nonce"
done
"#;
        let mut link = loop_link(script, SPACE_INTERVAL);
        assert_eq!(link.read().await.unwrap().store_free, Some(1024));
        assert_eq!(link.read().await.unwrap().store_free, Some(1024));
        assert_eq!(link.read().await.unwrap().store_free, Some(3 * 1024));
        assert_eq!(link.read().await.unwrap().store_free, Some(3 * 1024));
        link.space_asked = Some(Instant::now() - SPACE_INTERVAL);
        assert_eq!(link.read().await.unwrap().store_free, None, "df failed");
        assert_eq!(link.read().await.unwrap().store_free, None);
    }

    /// The real script through a real link: the first report has the free
    /// space, a quick one carries it over, and the words are the script's.
    #[tokio::test]
    async fn the_real_loop_answers_both_requests() {
        let mut link = loop_link(crate::remote::script::FACTS.text, SPACE_INTERVAL);
        let first = link.read().await.unwrap();
        assert!(first.store_free.unwrap() > 0, "{first:?}");
        let quick = link.read().await.unwrap();
        assert_eq!(quick.store_free, first.store_free);
        assert!(
            quick.load.is_some() && quick.mem_total.is_some(),
            "{quick:?}"
        );
        let mut every_time = loop_link(crate::remote::script::FACTS.text, Duration::ZERO);
        for _ in 0..2 {
            assert!(every_time.read().await.unwrap().store_free.is_some());
        }
    }

    /// The real loop in a private pid namespace (nothing else creates
    /// processes there): with the builds listing on and nothing building,
    /// the first read lists, the next ones get `unchanged` and the same
    /// listing back, one question each.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_idle_listing_is_carried_over_when_nothing_was_created() {
        let words: Vec<String> = [
            "unshare",
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
        ]
        .iter()
        .map(|w| w.to_string())
        .chain([crate::remote::script::FACTS.text.to_string()])
        .chain(["rbtop-facts".to_string(), "/".to_string()])
        .collect();
        let mut link = FactsLink::new(Channel::local(&words).unwrap()).listing_builds(true);
        let first = link.read().await.unwrap();
        let Some(Ok(listed)) = first.processes else {
            panic!("a listing: {first:?}")
        };
        assert!(
            listed.process(1).is_some(),
            "the namespace's init: {listed:?}"
        );
        assert!(link.idle_listing.is_some(), "nothing builds here");
        for _ in 0..3 {
            let again = link.read().await.unwrap();
            assert_eq!(again.processes, Some(Ok(listed.clone())));
            assert_eq!(link.last_cost().round_trips, 1);
        }
    }

    #[test]
    fn each_reason_reads_as_before() {
        let cases = [
            (
                FactsError::Io(std::io::Error::other("broken pipe")),
                "facts loop: broken pipe",
            ),
            (FactsError::Ended, "facts loop ended"),
            (
                FactsError::StartOverSsh(openssh::Error::Disconnected),
                "cannot start the facts loop over ssh: the connection was terminated",
            ),
            (
                FactsError::StartHere(std::io::Error::other("no sh")),
                "cannot start the facts loop: no sh",
            ),
            (FactsError::NoWay, "no way to gather facts"),
            (FactsError::TooLate, "the facts did not arrive in time"),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text, "{error:?}");
        }
    }

    #[tokio::test]
    async fn a_loop_that_ended_is_an_error() {
        let mut link = loop_link("read -r request; echo uptime_s=1", SPACE_INTERVAL);
        let error = link.read().await.unwrap_err();
        assert!(matches!(error, FactsError::Ended), "{error:?}");
        assert_eq!(error.to_string(), "facts loop ended");
    }
}
