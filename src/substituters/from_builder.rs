//! A builder's own reach of its substituters. With `builders-use-substitutes`
//! Nix asks the builder to fetch a build's inputs itself, from the
//! substituters the *builder's* Nix is configured with: a cache that answers
//! here but not from the builder (a firewall, a proxy, a netrc only here)
//! fails those builds, and only the builder can tell. rbtop runs the
//! [`SUBSTITUTERS`] script there, in a session of its own: the builder's Nix
//! names its substituters and pings each (`nix store ping`), all at once,
//! each within a deadline; what Nix says is classified here.

use std::time::Duration;

use crate::machines::Machine;
use crate::probe::ProbeSettings;
use crate::remote::script::SUBSTITUTERS;
use crate::ssh::{SshSettings, oneshot};

use super::SubstituterCheck;

/// Substituters pinged per builder; more are counted, not pinged.
pub const MAX_PINGED: usize = 32;

/// What one builder said of its substituters.
#[derive(Clone, Debug, PartialEq)]
pub struct BuilderSubstituters {
    /// Each substituter the builder's Nix uses, in its order, checked from
    /// there (the first [`MAX_PINGED`]).
    pub checks: Vec<SubstituterCheck>,
    /// Substituters past [`MAX_PINGED`], not pinged.
    pub not_checked: usize,
}

impl BuilderSubstituters {
    pub fn usable(&self) -> usize {
        self.checks.iter().filter(|c| c.is_up()).count()
    }
}

/// Why a builder's substituters could not be checked.
pub type Outcome = Result<BuilderSubstituters, String>;

/// Whether this machine's Nix has builders substitute (`builders-use-substitutes
/// = true`, the last setting winning): only then are the builders'
/// substituters theirs to reach.
pub fn builders_use_substitutes(conf: &crate::nixconf::NixConf) -> bool {
    conf.get("builders-use-substitutes")
        .is_some_and(|s| s.value.trim() == "true")
}

/// The `nix` to ask on the builder: the one beside the machine's
/// `remote-program` when that names `nix-store` or `nix-daemon` by path
/// (`/opt/nix/bin/nix-daemon` → `/opt/nix/bin/nix`; words before it, such
/// as `env`, kept), else `nix` from the SSH user's PATH.
pub fn nix_words(machine: &Machine) -> Vec<String> {
    let words: Vec<String> = machine
        .store
        .params
        .get("remote-program")
        .map(|p| p.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut program = crate::probe::route::program_words(&words).to_vec();
    if let Some(last) = program.last_mut() {
        let dir = last
            .strip_suffix("nix-store")
            .or_else(|| last.strip_suffix("nix-daemon"));
        if let Some(dir) = dir.filter(|d| d.is_empty() || d.ends_with('/')) {
            *last = format!("{dir}nix");
            return program;
        }
    }
    vec!["nix".to_string()]
}

/// The script's deadline per ping, in whole seconds: never 0, which
/// timeout(1) reads as no limit at all.
fn limit_secs(limit: Duration) -> u64 {
    limit.as_secs().max(1)
}

/// The script's arguments after its name.
fn script_args(machine: &Machine, nonce: &str, limit: Duration) -> Vec<String> {
    let mut args = vec![
        nonce.to_string(),
        limit_secs(limit).to_string(),
        MAX_PINGED.to_string(),
        crate::probe::route::STORE_DIR.to_string(),
    ];
    args.extend(nix_words(machine));
    args
}

/// What a check stopped before its end says (never shown: a stopped
/// round's results are dropped).
const STOPPED: &str = "stopped";

/// Check `machine`'s substituters from the machine itself, over a session
/// of its own, within `limit` for the pings (plus the connection's own).
/// `stop` ends it early, the session closed (which ends the script there).
pub async fn check_on(
    machine: &Machine,
    ssh: &SshSettings,
    limit: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Outcome {
    tokio::pin!(stop);
    let session = tokio::select! {
        biased;
        () = &mut stop => return Err(STOPPED.into()),
        session = oneshot::connect(machine, ssh) => session.map_err(|e| e.to_string())?,
    };
    let nonce = crate::probe::links::nonce();
    // The script's own deadline is a second past the pings'; its start
    // and the answer get a few seconds more.
    let answer_limit = Duration::from_secs(limit_secs(limit) + 6);
    let output = tokio::select! {
        biased;
        () = &mut stop => None,
        output = SUBSTITUTERS.output(&session, script_args(machine, &nonce, limit), answer_limit) => Some(output),
    };
    session.close().await;
    let output = output.ok_or_else(|| STOPPED.to_string())?;
    parse(&output.map_err(|e| e.to_string())?, &nonce, limit)
}

/// Check the substituters of every machine for which `wanted` says so
/// (others: `None`) with the probe's SSH settings, timeout (per ping) and
/// concurrency, each reported to `on_result` as it ends. `stop` ends it
/// early (`None`), every session closed first.
pub async fn check_on_each(
    machines: &[Machine],
    wanted: &[bool],
    settings: &ProbeSettings,
    stop: impl std::future::Future<Output = ()>,
    mut on_result: impl FnMut(usize, &Outcome),
) -> Option<Vec<Option<Outcome>>> {
    use futures_util::{FutureExt, StreamExt};
    let indices: Vec<usize> = (0..machines.len())
        .filter(|&i| wanted.get(i).copied().unwrap_or(false))
        .collect();
    let mut results: Vec<Option<Outcome>> = vec![None; machines.len()];
    let (ssh, limit) = (&settings.ssh, settings.timeout);
    // Every check sees the one stop, and closes its own session on it.
    let stop = Box::pin(stop).shared();
    let checks = futures_util::stream::iter(indices)
        .map(|i| {
            let stop = stop.clone();
            async move { (i, check_on(&machines[i], ssh, limit, stop).await) }
        })
        .buffer_unordered(settings.concurrency.max(1));
    tokio::pin!(checks);
    // Once stopped, the rest end at once: drained, not reported.
    while let Some((i, outcome)) = checks.next().await {
        if stop.peek().is_none() {
            on_result(i, &outcome);
            results[i] = Some(outcome);
        }
    }
    stop.peek().is_none().then_some(results)
}

/// Read the script's answer: between `begin NONCE` and `end NONCE`, so an
/// rc file's chatter before it is passed over and nothing the builder
/// prints can end it early.
pub(crate) fn parse(output: &str, nonce: &str, limit: Duration) -> Outcome {
    let begin = format!("begin {nonce}");
    let end = format!("end {nonce}");
    let mut lines = output.lines().skip_while(|l| *l != begin);
    if lines.next().is_none() {
        return Err(no_answer(output));
    }
    let mut uris: Vec<String> = Vec::new();
    let mut checks: Vec<Option<SubstituterCheck>> = Vec::new();
    let mut not_checked = 0;
    let mut listed = false;
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "failed" if rest.trim().is_empty() => {
                return Err("the builder could not say why it failed".to_string());
            }
            "failed" => return Err(rest.to_string()),
            "substituters" if listed => {
                return Err(format!("the builder's answer makes no sense: {line:?}"));
            }
            "substituters" => {
                listed = true;
                uris = rest.split_whitespace().map(str::to_string).collect();
                checks = vec![None; uris.len().min(MAX_PINGED)];
            }
            "result" => {
                let mut words = rest.split_whitespace();
                let (Some(Ok(i)), Some(Ok(rc)), Some(ms)) = (
                    words.next().map(str::parse::<usize>),
                    words.next().map(str::parse::<i32>),
                    words.next(),
                ) else {
                    return Err(format!("the builder's answer makes no sense: {line:?}"));
                };
                let Some(slot) = i.checked_sub(1).and_then(|i| checks.get_mut(i)) else {
                    return Err(format!("the builder's answer makes no sense: {line:?}"));
                };
                // `-`: the builder has no clock to say (then 0).
                let elapsed = ms
                    .parse::<u64>()
                    .map(|ms| Duration::from_millis(ms.min(MAX_MS)))
                    .unwrap_or_default();
                let (status, reason) = classify(rc, limit);
                *slot = Some(SubstituterCheck {
                    uri: uris[i - 1].clone(),
                    status,
                    reason,
                    elapsed,
                    priority: super::uri_priority(&uris[i - 1]),
                });
            }
            "why" => {
                let (i, why) = rest.split_once(' ').unwrap_or((rest, ""));
                if let Some(check) = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| checks.get_mut(i))
                    .and_then(Option::as_mut)
                    // Up stays up; a timeout keeps its own reason; no words,
                    // the exit status's.
                    .filter(|c| c.status == "error" && !why.trim().is_empty())
                {
                    let (status, reason) = classify_failure(why);
                    // busybox timeout(1) passes on the stopped Nix's own
                    // status: Nix says it was interrupted, at the limit.
                    let stopped_at_limit = why.contains("interrupted")
                        && check.elapsed >= Duration::from_secs(limit_secs(limit));
                    if stopped_at_limit {
                        check.status = "timeout";
                        check.reason = Some(no_answer_within(limit));
                    } else {
                        check.status = status;
                        check.reason = reason;
                    }
                }
            }
            "more" => not_checked = rest.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    if !ended {
        return Err("the builder's answer was cut short".to_string());
    }
    if !listed {
        return Err("the builder's answer named no substituters list".to_string());
    }
    let checks = checks
        .into_iter()
        .zip(&uris)
        .map(|(check, uri)| {
            check.unwrap_or_else(|| SubstituterCheck {
                uri: uri.clone(),
                status: "error",
                reason: Some("the builder did not say how its ping ended".into()),
                elapsed: Duration::ZERO,
                priority: None,
            })
        })
        .collect();
    Ok(BuilderSubstituters {
        checks,
        not_checked,
    })
}

/// No `begin` line: the script did not run as written (an sshd that
/// forces the store command, a shell that is not POSIX).
fn no_answer(output: &str) -> String {
    if output.trim().is_empty() {
        "the builder ran rbtop's substituters script without a word (its sshd may force a command)"
            .to_string()
    } else {
        "the builder did not run rbtop's substituters script (its sshd may force a command)"
            .to_string()
    }
}

/// A ping's time past this is nonsense (a day).
const MAX_MS: u64 = 86_400_000;

/// The status of a ping by its exit status (Nix's words refine an `error`).
fn classify(rc: i32, limit: Duration) -> (&'static str, Option<String>) {
    match rc {
        0 => ("up", None),
        // GNU timeout(1)'s status, and the script's deadline's.
        124 => ("timeout", Some(no_answer_within(limit))),
        127 => ("error", Some("the builder's nix could not be run".into())),
        _ => ("error", Some(format!("nix store ping exited with {rc}"))),
    }
}

fn no_answer_within(limit: Duration) -> String {
    format!("no answer within {}s, from the builder", limit_secs(limit))
}

/// A failed ping's status from Nix's first error line, which is its
/// reason; words rbtop does not know leave it `error`, Nix's line verbatim.
fn classify_failure(why: &str) -> (&'static str, Option<String>) {
    let why = why.trim();
    let reason = || Some(why.strip_prefix("error: ").unwrap_or(why).to_string());
    let has = |words: &[&str]| words.iter().any(|w| why.contains(w));
    let status = if has(&["is for Nix stores with prefix"]) {
        "wrong-store-dir"
    } else if has(&["Timeout was reached", "timed out", "Operation too slow"]) {
        "timeout"
    } else if has(&["HTTP error", "uploading to HTTP binary cache"]) {
        "http-error"
    } else if has(&[
        "Couldn't connect",
        "Could not connect",
        "Couldn't resolve",
        "Could not resolve",
        "Connection refused",
        "cannot connect",
        "cannot open connection",
        "No route to host",
        "does not exist",
    ]) {
        "unreachable"
    } else if has(&["does not appear to be a binary cache", "nix-cache-info"]) {
        "bad-cache-info"
    } else if has(&["don't know how to open", "is not supported", "unsupported"]) {
        "unsupported"
    } else {
        "error"
    };
    (status, reason())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};

    use super::*;
    use crate::machines::testing::machine;

    const LIMIT: Duration = Duration::from_secs(10);

    /// The script started here under dash with this machine's Nix: its
    /// nix.conf in `conf`, HOME and TMPDIR `home`, stdin piped (rbtop holds
    /// it open while it waits).
    fn spawn_here(conf: &Path, home: &Path, limit: Duration) -> Child {
        spawn_for(&machine("ssh://b1"), conf, home, limit)
    }

    /// As [`spawn_here`], for `builder`'s `remote-program`.
    fn spawn_for(builder: &Machine, conf: &Path, home: &Path, limit: Duration) -> Child {
        Command::new(crate::remote::script::tests::dash())
            .args(SUBSTITUTERS.sh_args(script_args(builder, "N", limit)))
            .env("NIX_CONF_DIR", conf)
            .env("NIX_USER_CONF_FILES", "")
            .env("HOME", home)
            .env("TMPDIR", home)
            .env_remove("XDG_CACHE_HOME")
            .env_remove("NIX_CACHE_HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Its whole answer, its stdin open until then.
    fn run_here(conf: &Path, home: &Path, limit: Duration) -> String {
        let mut child = spawn_here(conf, home, limit);
        let stdin = child.stdin.take();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        drop(stdin);
        child.wait().unwrap();
        out
    }

    /// Processes whose command line names `needle`.
    fn processes_naming(needle: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
        found
    }

    /// Polls `done` every 50 ms for up to `limit`.
    fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        done()
    }

    /// A cache that accepts and never answers (never accepted: the kernel
    /// completes the connection, nobody reads it).
    fn silent_cache(dir: &Path) -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::fs::create_dir_all(dir.join("conf")).unwrap();
        std::fs::write(
            dir.join("conf/nix.conf"),
            format!("substituters = http://{address}/a http://{address}/b\n"),
        )
        .unwrap();
        (listener, address)
    }

    /// What sshd does when rbtop stops (a new round on `r`, quitting): the
    /// channel's stdin ends. The script then stops both pings (each Nix
    /// waiting on a cache that never answers, with 120 s to go) and removes
    /// its temporary directory.
    #[test]
    fn when_its_stdin_ends_it_stops_every_ping_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (_listener, address) = silent_cache(dir.path());
        let mut child = spawn_here(
            &dir.path().join("conf"),
            dir.path(),
            Duration::from_secs(120),
        );
        assert!(
            eventually(Duration::from_secs(30), || processes_naming(&address).len()
                >= 2),
            "the pings never started: {:?}",
            processes_naming(&address)
        );
        drop(child.stdin.take());
        assert!(
            eventually(Duration::from_secs(30), || child
                .try_wait()
                .unwrap()
                .is_some()),
            "the script still runs after its stdin ended"
        );
        assert!(
            eventually(Duration::from_secs(10), || processes_naming(&address)
                .is_empty()),
            "left running: {:?}",
            processes_naming(&address)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("tmp."))
            .collect();
        assert!(left.is_empty(), "temporary directories left: {left:?}");
    }

    /// A builder whose Nix cannot be run answers at once, and nothing of
    /// the script (its watchers included) holds the channel: its stdout
    /// ends although stdin stays open and the limit is ten minutes.
    #[test]
    fn without_a_nix_it_says_so_at_once_and_lets_the_channel_go() {
        let dir = tempfile::tempdir().unwrap();
        let builder = machine("ssh://b1?remote-program=/nonexistent/bin/nix-store");
        let mut child = spawn_for(&builder, dir.path(), dir.path(), Duration::from_secs(600));
        let _stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let (send, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = stdout.read_to_string(&mut out);
            let _ = send.send(out);
        });
        let out = answer
            .recv_timeout(Duration::from_secs(60))
            .expect("the script's stdout stayed open");
        let why = parse(&out, "N", LIMIT).unwrap_err();
        assert!(
            why.starts_with("cannot ask Nix its substituters: "),
            "{why}"
        );
        assert!(why.contains("/nonexistent/bin/nix"), "{why}");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Out of time: each ping is stopped at the limit and said so.
    #[test]
    fn a_cache_that_never_answers_is_a_timeout_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (_listener, address) = silent_cache(dir.path());
        let limit = Duration::from_secs(1);
        let text = run_here(&dir.path().join("conf"), dir.path(), limit);
        let got = parse(&text, "N", limit).unwrap_or_else(|e| panic!("{e}: {text}"));
        let statuses: Vec<&str> = got.checks.iter().map(|c| c.status).collect();
        assert_eq!(statuses, ["timeout", "timeout"], "{text}");
        assert_eq!(
            got.checks[0].reason.as_deref(),
            Some("no answer within 1s, from the builder")
        );
        assert!(processes_naming(&address).is_empty());
    }

    #[test]
    fn the_nix_beside_the_remote_program_else_the_path_s() {
        let cases = [
            ("ssh://b1", vec!["nix"]),
            (
                "ssh-ng://b1?remote-program=/opt/nix/bin/nix-daemon",
                vec!["/opt/nix/bin/nix"],
            ),
            (
                "ssh://b1?remote-program=env%20/nix/var/nix/profiles/default/bin/nix-store",
                vec!["env", "/nix/var/nix/profiles/default/bin/nix"],
            ),
            ("ssh://b1?remote-program=nix-store", vec!["nix"]),
            // A wrapper rbtop cannot see into: the PATH's nix.
            (
                "ssh://b1?remote-program=/usr/local/bin/my-nix-store",
                vec!["nix"],
            ),
            ("ssh://b1?remote-program=/opt/wrap-nix-daemon", vec!["nix"]),
        ];
        for (uri, want) in cases {
            assert_eq!(nix_words(&machine(uri)), want, "{uri}");
        }
    }

    #[test]
    fn arguments_are_words_and_the_limit_is_whole_seconds() {
        let args = script_args(&machine("ssh://b1"), "N", Duration::from_millis(2500));
        assert_eq!(args, ["N", "2", "32", "/nix/store", "nix"]);
        let args = script_args(&machine("ssh://b1"), "N", Duration::from_millis(300));
        assert_eq!(args[1], "1", "never 0: timeout 0 means no limit");
    }

    fn answer(body: &str) -> String {
        format!("Welcome to b1!\nbegin N\n{body}end N\n")
    }

    #[test]
    fn each_answer_is_classified_and_rc_chatter_is_passed_over() {
        let out = answer(
            "substituters http://c1?priority=10 https://gone.invalid http://c3/ http://c4 http://c5 http://c6 ssh://c7\n\
             result 1 0 12\n\
             result 2 1 30\n\
             why 2 error: unable to download 'https://gone.invalid/nix-cache-info': Couldn't resolve host name (6)\n\
             result 3 1 9\n\
             why 3 error: binary cache 'http://c3' is for Nix stores with prefix '/gnu/store', not '/nix/store'\n\
             result 4 124 -\n\
             result 5 1 4\n\
             why 5 error: unable to download 'http://c5/nix-cache-info': HTTP error 500 (curl error: none)\n\
             result 6 1 4\n\
             why 6 error: something \x1b]0;new\x07 rbtop has never seen\n\
             result 7 1 20\n\
             why 7 error: cannot connect to 'c7'\n",
        );
        let got = parse(&out, "N", LIMIT).unwrap();
        let statuses: Vec<&str> = got.checks.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                "up",
                "unreachable",
                "wrong-store-dir",
                "timeout",
                "http-error",
                "error",
                "unreachable"
            ]
        );
        assert_eq!(got.usable(), 1);
        assert_eq!(got.checks[0].priority, Some(10));
        assert_eq!(got.checks[0].elapsed, Duration::from_millis(12));
        assert_eq!(got.checks[0].reason, None);
        assert_eq!(
            got.checks[1].reason.as_deref(),
            Some(
                "unable to download 'https://gone.invalid/nix-cache-info': Couldn't resolve host name (6)"
            )
        );
        assert_eq!(
            got.checks[3].reason.as_deref(),
            Some("no answer within 10s, from the builder")
        );
        // Unknown words stay Nix's, verbatim (the front ends sanitise).
        assert_eq!(
            got.checks[5].reason.as_deref(),
            Some("something \x1b]0;new\x07 rbtop has never seen")
        );
        assert_eq!(got.not_checked, 0);
    }

    #[test]
    fn a_builder_that_cannot_answer_fails_that_builder_with_why() {
        assert_eq!(
            parse(
                &answer("failed cannot ask Nix its substituters: error: no nix\n"),
                "N",
                LIMIT
            ),
            Err("cannot ask Nix its substituters: error: no nix".into())
        );
        let forced = parse("\0\0\0\x01binary hello", "N", LIMIT).unwrap_err();
        assert!(forced.contains("did not run"), "{forced}");
        let cut = parse("begin N\nsubstituters http://a\n", "N", LIMIT).unwrap_err();
        assert!(cut.contains("cut short"), "{cut}");
        // Another nonce's end does not end it.
        let forged = parse("begin N\nsubstituters http://a\nend X\n", "N", LIMIT).unwrap_err();
        assert!(forged.contains("cut short"), "{forged}");
        let nonsense =
            parse(&answer("substituters http://a\nresult 9 0 1\n"), "N", LIMIT).unwrap_err();
        assert!(nonsense.contains("makes no sense"), "{nonsense}");
    }

    #[test]
    fn odd_answers_fail_the_builder_or_stay_what_the_exit_status_says() {
        let err = |body: &str| parse(&answer(body), "N", LIMIT).unwrap_err();
        assert!(err("failed \n").contains("could not say why"));
        assert!(err("more 2\n").contains("named no substituters"));
        assert!(err("substituters http://a\nsubstituters http://b\n").contains("makes no sense"));
        let got = parse(
            &answer(
                "substituters http://a http://b http://c http://d\n\
                 result 1 0 5\nwhy 1 error: HTTP error 500\n\
                 result 2 1 10000\nwhy 2 error: download of 'http://b/nix-cache-info' was interrupted\n\
                 result 3 1 40\nwhy 3 error: Could not resolve host\n\
                 result 4 0 99999999999999999\n",
            ),
            "N",
            LIMIT,
        )
        .unwrap();
        // A `why` never turns an up check down.
        assert_eq!(
            (got.checks[0].status, got.checks[0].reason.as_deref()),
            ("up", None)
        );
        // busybox timeout(1) passes on Nix's own status: the time tells.
        assert_eq!(got.checks[1].status, "timeout");
        assert_eq!(got.checks[2].status, "unreachable");
        assert_eq!(got.checks[3].elapsed, Duration::from_millis(MAX_MS));
    }

    #[test]
    fn a_ping_that_never_said_how_it_ended_is_an_error_not_up() {
        let got = parse(
            &answer("substituters http://a http://b\nresult 2 0 3\n"),
            "N",
            LIMIT,
        )
        .unwrap();
        assert_eq!(got.checks[0].status, "error");
        assert_eq!(got.checks[1].status, "up");
    }

    #[test]
    fn past_the_bound_they_are_counted_not_pinged() {
        let uris: Vec<String> = (0..40).map(|i| format!("http://c{i}")).collect();
        let mut body = format!("substituters {}\n", uris.join(" "));
        for i in 1..=MAX_PINGED {
            body.push_str(&format!("result {i} 0 1\n"));
        }
        body.push_str("more 8\n");
        let got = parse(&answer(&body), "N", LIMIT).unwrap();
        assert_eq!(got.checks.len(), MAX_PINGED);
        assert_eq!(got.not_checked, 8);
        assert_eq!(got.usable(), MAX_PINGED);
    }

    /// The script itself, run here under dash with this machine's Nix and a
    /// nix.conf of its own: a good `file://` cache, one for another store,
    /// a missing one (not created: a check never writes), a port nobody
    /// listens on, a scheme Nix does not know, a local store.
    #[test]
    fn the_script_runs_here_with_nix_and_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let at = |p: &str| dir.path().join(p).display().to_string();
        std::fs::create_dir_all(at("good")).unwrap();
        std::fs::write(at("good/nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
        std::fs::create_dir_all(at("gnu")).unwrap();
        std::fs::write(at("gnu/nix-cache-info"), "StoreDir: /gnu/store\n").unwrap();
        std::fs::create_dir_all(at("root/nix/store")).unwrap();
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(at("conf")).unwrap();
        std::fs::write(
            at("conf/nix.conf"),
            format!(
                "substituters = file://{}?priority=7 file://{} file://{} http://127.0.0.1:{dead} foo://bar {}\n",
                at("good"),
                at("gnu"),
                at("none"),
                at("root")
            ),
        )
        .unwrap();
        let text = run_here(&dir.path().join("conf"), dir.path(), Duration::from_secs(5));
        let got = parse(&text, "N", LIMIT).unwrap_or_else(|e| panic!("{e}: {text}"));
        let statuses: Vec<&str> = got.checks.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                "up",
                "wrong-store-dir",
                "unreachable",
                "unreachable",
                "unsupported",
                "up"
            ],
            "{text}"
        );
        assert_eq!(got.checks[0].priority, Some(7));
        assert!(
            !dir.path().join("none").exists(),
            "the check created a cache"
        );
        assert!(
            !dir.path().join("good/nar").exists(),
            "the check wrote in a cache"
        );
    }

    /// Every check reaches the cache: Nix keeps a cache's info for days in
    /// the user's cache directory and would answer from it, so a cache that
    /// went away would stay `up`. Two checks, two requests, and the user's
    /// cache directory untouched.
    #[test]
    fn each_check_asks_the_cache_itself_never_nix_s_cached_answer() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = "StoreDir: /nix/store\n";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("conf")).unwrap();
        std::fs::write(
            dir.path().join("conf/nix.conf"),
            format!("substituters = http://127.0.0.1:{port}\n"),
        )
        .unwrap();
        for run in 1..=2 {
            let text = run_here(&dir.path().join("conf"), dir.path(), Duration::from_secs(5));
            let got = parse(&text, "N", LIMIT).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(got.usable(), 1, "run {run}: {text}");
            assert!(
                served.load(std::sync::atomic::Ordering::SeqCst) >= run,
                "run {run} answered without asking the cache: {text}"
            );
        }
        assert!(
            !dir.path().join(".cache").exists(),
            "the user's cache directory was written"
        );
    }

    #[test]
    fn none_configured_is_an_empty_answer_not_a_failure() {
        let got = parse(&answer("substituters\n"), "N", LIMIT).unwrap();
        assert!(got.checks.is_empty());
    }
}
