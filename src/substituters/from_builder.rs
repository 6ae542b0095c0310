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

/// The script's arguments after its name.
fn script_args(machine: &Machine, nonce: &str, limit: Duration) -> Vec<String> {
    let mut args = vec![
        nonce.to_string(),
        limit.as_secs().max(1).to_string(),
        MAX_PINGED.to_string(),
        crate::probe::route::STORE_DIR.to_string(),
    ];
    args.extend(nix_words(machine));
    args
}

/// Check `machine`'s substituters from the machine itself, over a session
/// of its own, within `limit` for the pings (plus the connection's own).
pub async fn check_on(machine: &Machine, ssh: &SshSettings, limit: Duration) -> Outcome {
    let session = oneshot::connect(machine, ssh)
        .await
        .map_err(|e| e.to_string())?;
    let nonce = crate::probe::links::nonce();
    // The script's pings end at `limit`; its own start and the answer get a few seconds more.
    let answer_limit = limit + Duration::from_secs(5);
    let output = SUBSTITUTERS
        .output(&session, script_args(machine, &nonce, limit), answer_limit)
        .await;
    session.close().await;
    parse(&output.map_err(|e| e.to_string())?, &nonce, limit)
}

/// Check the substituters of every machine for which `wanted` says so
/// (others: `None`) with the probe's SSH settings, timeout (per ping) and
/// concurrency, each reported to `on_result` as it ends. `stop` ends it
/// early (`None`), sessions closed.
pub async fn check_on_each(
    machines: &[Machine],
    wanted: &[bool],
    settings: &ProbeSettings,
    stop: impl std::future::Future<Output = ()>,
    mut on_result: impl FnMut(usize, &Outcome),
) -> Option<Vec<Option<Outcome>>> {
    use futures_util::StreamExt;
    let indices: Vec<usize> = (0..machines.len())
        .filter(|&i| wanted.get(i).copied().unwrap_or(false))
        .collect();
    let mut results: Vec<Option<Outcome>> = vec![None; machines.len()];
    let (ssh, limit) = (&settings.ssh, settings.timeout);
    let checks = futures_util::stream::iter(indices)
        .map(|i| async move { (i, check_on(&machines[i], ssh, limit).await) })
        .buffer_unordered(settings.concurrency.max(1));
    tokio::pin!(checks);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            next = checks.next() => match next {
                Some((i, outcome)) => {
                    on_result(i, &outcome);
                    results[i] = Some(outcome);
                }
                None => return Some(results),
            },
            // Dropping the checks kills their ssh masters (openssh's Drop).
            () = &mut stop => return None,
        }
    }
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
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "failed" => return Err(rest.to_string()),
            "substituters" => {
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
                let elapsed = ms.parse().map(Duration::from_millis).unwrap_or_default();
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
                    // A timeout keeps its own reason; no words, the exit status's.
                    .filter(|c| c.status != "timeout" && !why.trim().is_empty())
                {
                    let (status, reason) = classify_failure(why);
                    check.status = status;
                    check.reason = reason;
                }
            }
            "more" => not_checked = rest.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    if !ended {
        return Err("the builder's answer was cut short".to_string());
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

/// The status of a ping by its exit status alone (Nix's words refine it).
fn classify(rc: i32, limit: Duration) -> (&'static str, Option<String>) {
    match rc {
        0 => ("up", None),
        // timeout(1)'s status when it stopped the command (GNU, busybox).
        124 | 137 | 143 => (
            "timeout",
            Some(format!(
                "no answer within {}s, from the builder",
                limit.as_secs()
            )),
        ),
        127 => ("error", Some("the builder's nix could not be run".into())),
        _ => ("error", Some(format!("nix store ping exited with {rc}"))),
    }
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
    use super::*;
    use crate::machines::testing::machine;

    const LIMIT: Duration = Duration::from_secs(10);

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
        let output = std::process::Command::new(crate::remote::script::tests::dash())
            .args(SUBSTITUTERS.sh_args(script_args(
                &machine("ssh://b1"),
                "N",
                Duration::from_secs(5),
            )))
            .env("NIX_CONF_DIR", at("conf"))
            .env("NIX_USER_CONF_FILES", "")
            .env("HOME", dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
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
            let output = std::process::Command::new(crate::remote::script::tests::dash())
                .args(SUBSTITUTERS.sh_args(script_args(
                    &machine("ssh://b1"),
                    "N",
                    Duration::from_secs(5),
                )))
                .env("NIX_CONF_DIR", dir.path().join("conf"))
                .env("NIX_USER_CONF_FILES", "")
                .env("HOME", dir.path())
                .env_remove("XDG_CACHE_HOME")
                .env_remove("NIX_CACHE_HOME")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout);
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
