//! `K`: kill one build on its builder, as Nix's own cancel does: SIGKILL to
//! the builder's whole process group. An orphan's serving process goes too,
//! since no client will ever collect it.
//!
//! The killing is rbtop's one kill ([`crate::remote::kill`]): each pid only
//! while `/proc/PID/stat` still shows the start time the listing had, so a
//! pid reused since the listing is never hit. What it did, for a person, is
//! [`KillOutcome`]'s to say, here and nowhere else.

use std::fmt;

use super::classify::{Client, RemoteBuild};
use crate::machines::Machine;
use crate::remote::kill::{self as remote_kill, Fate, KillReport, Target};
use crate::remote::script::RunError;
use crate::ssh::{SshSettings, oneshot};

/// What to kill for `build`: its group, and an orphan's serving process.
pub(super) fn targets(build: &RemoteBuild) -> Vec<Target> {
    let mut targets = vec![Target::Group {
        leader: build.pid,
        start: Some(build.start_ticks),
    }];
    if build.client == Client::Orphan
        && let (Some(pid), Some(start)) = (build.serving_pid, build.serving_start_ticks)
    {
        targets.push(Target::Process { pid, start });
    }
    targets
}

/// The build a kill was asked for, as the outcome names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub pid: u32,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.pid)
    }
}

/// What became of an orphan's serving process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    /// Not asked for, or nothing happened to it (gone, or its pid reused).
    Untouched,
    Killed(u32),
    Denied(u32),
}

impl fmt::Display for Serving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Serving::Untouched => Ok(()),
            Serving::Killed(pid) => write!(f, " and its serving process {pid}"),
            Serving::Denied(pid) => write!(
                f,
                " (its serving process {pid} is not the SSH user's to kill: still there)"
            ),
        }
    }
}

/// A kill that did what `K` asks: nothing of the build is left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Killed {
    /// SIGKILL to its group, and nothing of it left after.
    Whole { build: Named, serving: Serving },
    /// It had ended; what was left of its process group was killed.
    Rest { build: Named },
    /// It had already ended.
    AlreadyEnded { build: Named },
}

impl fmt::Display for Killed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Killed::Whole { build, serving } => {
                write!(f, "killed {build}{serving}: nothing of it is left")
            }
            Killed::Rest { build } => {
                write!(
                    f,
                    "{build} had ended; killed what was left of its process group"
                )
            }
            Killed::AlreadyEnded { build } => write!(f, "{build} had already ended"),
        }
    }
}

/// A kill that did not do what `K` asks, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KillError {
    #[error(
        "not allowed to kill {build}: the SSH user may not signal the build user {user}; \
         log in as root (or as that user) to kill it"
    )]
    Denied { build: Named, user: String },
    #[error("pid {pid} is now another process; nothing killed")]
    Reused { pid: u32 },
    #[error("sent SIGKILL to {build}{serving}, but some of its processes are still there")]
    Survived { build: Named, serving: Serving },
    /// The script said nothing of the build (its whole answer).
    #[error("the builder gave no answer: {0}")]
    NoAnswer(String),
    /// No session (the connection's error, as said).
    #[error("{0}")]
    CannotConnect(String),
    #[error("the builder did not answer in time")]
    TimedOut,
    #[error("cannot run the kill: {0}")]
    CannotRun(String),
}

/// What `K` did: shown in the detail pane as it reads.
pub type KillOutcome = Result<Killed, KillError>;

impl From<RunError> for KillError {
    fn from(error: RunError) -> KillError {
        match error {
            RunError::TimedOut => KillError::TimedOut,
            RunError::Ssh(e) => KillError::CannotRun(e.to_string()),
            RunError::TooLong => KillError::CannotRun(error.to_string()),
        }
    }
}

/// What the kill script's `report` means for `build`.
pub(super) fn outcome(build: &RemoteBuild, report: &KillReport) -> KillOutcome {
    let named = Named {
        name: build.name.clone(),
        pid: build.pid,
    };
    match report.fate(build.pid) {
        Some(Fate::Denied) => Err(KillError::Denied {
            build: named,
            user: build.user.clone(),
        }),
        Some(Fate::KilledRest) => Ok(Killed::Rest { build: named }),
        Some(Fate::Gone) => Ok(Killed::AlreadyEnded { build: named }),
        Some(Fate::Reused) => Err(KillError::Reused { pid: build.pid }),
        None => Err(KillError::NoAnswer(report.text.clone())),
        Some(Fate::Killed) => {
            let serving = match build.serving_pid {
                Some(pid) => match report.fate(pid) {
                    Some(Fate::Killed) => Serving::Killed(pid),
                    Some(Fate::Denied) => Serving::Denied(pid),
                    _ => Serving::Untouched,
                },
                None => Serving::Untouched,
            };
            if report.left_some == Some(false) {
                Ok(Killed::Whole {
                    build: named,
                    serving,
                })
            } else {
                Err(KillError::Survived {
                    build: named,
                    serving,
                })
            }
        }
    }
}

/// Kill `build` on `machine`, over a session of its own.
pub async fn kill(machine: &Machine, build: &RemoteBuild, ssh: &SshSettings) -> KillOutcome {
    let session = oneshot::connect(machine, ssh)
        .await
        .map_err(|e| KillError::CannotConnect(e.to_string()))?;
    let report = remote_kill::run(&session, &targets(build)).await;
    session.close().await;
    outcome(build, &report?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::process_tree;
    use crate::remote::kill::tests::{
        AS_NOBODY, leaderless_group, run_as, run_here, session, start_ticks,
    };
    use crate::remote_builds::classify::tests::sample_build;

    fn build(pid: u32, start: u64, client: Client, serving: Option<(u32, u64)>) -> RemoteBuild {
        RemoteBuild {
            serving_pid: serving.map(|s| s.0),
            start_ticks: start,
            serving_start_ticks: serving.map(|s| s.1),
            ..sample_build(pid, client)
        }
    }

    /// A builder-like group (a session with a child of its own) and a
    /// separate "serving" process, really killed by the script under dash.
    #[test]
    fn the_script_kills_the_group_and_an_orphans_server_but_not_a_reused_pid() {
        let mut group = session("sleep 60 & sleep 60; wait");
        let mut server = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (gpid, spid) = (group.id(), server.id());

        // A wrong start time: the pid is "reused", nothing is killed.
        let wrong = build(gpid, start_ticks(gpid) + 1, Client::Orphan, None);
        let report = run_here(&targets(&wrong));
        assert_eq!(report.fate(gpid), Some(Fate::Reused), "{report:?}");
        assert_eq!(
            outcome(&wrong, &report),
            Err(KillError::Reused { pid: gpid })
        );
        assert!(group.try_wait().unwrap().is_none(), "still running");

        let orphan = build(
            gpid,
            start_ticks(gpid),
            Client::Orphan,
            Some((spid, start_ticks(spid))),
        );
        let outcome = outcome(&orphan, &run_here(&targets(&orphan))).unwrap();
        let said = outcome.to_string();
        assert!(said.contains("nothing of it is left"), "{said}");
        assert!(said.contains(&format!("serving process {spid}")), "{said}");
        assert!(group.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(server.wait().unwrap().code().is_none());

        // Again: the leader is gone (its child may linger as a zombie until
        // init reaps it, which the group kill then hits harmlessly).
        let again = super::outcome(&orphan, &run_here(&targets(&orphan))).unwrap();
        assert!(again.to_string().contains("ended"), "{again}");
    }

    /// The leader gone, the rest of its group is still killed; run as
    /// another user (nobody), the same kill is refused and said so.
    #[test]
    fn what_is_left_of_a_group_is_killed_and_a_refusal_is_reported() {
        let (group, start, members) = leaderless_group();
        let b = build(group, start, Client::Ssh, None);
        let report = run_as(&AS_NOBODY, &targets(&b));
        assert_eq!(report.fate(group), Some(Fate::Denied), "{report:?}");
        let refused = outcome(&b, &report).unwrap_err();
        assert!(matches!(refused, KillError::Denied { .. }), "{refused}");
        assert!(members.iter().all(|m| process_tree::is_alive(*m)));

        let report = run_here(&targets(&b));
        assert_eq!(report.fate(group), Some(Fate::KilledRest), "{report:?}");
        assert_eq!(report.left_some, Some(false), "{report:?}");
        let rest = outcome(&b, &report).unwrap();
        assert_eq!(
            rest,
            Killed::Rest {
                build: Named {
                    name: b.name.clone(),
                    pid: group
                }
            }
        );
        assert!(rest.to_string().contains("what was left"));
        assert!(!members.iter().any(|m| process_tree::is_alive(*m)));
    }

    #[test]
    fn a_refused_kill_is_an_error_not_a_success() {
        let b = build(10, 5, Client::Ssh, None);
        let outcome = super::outcome(&b, &KillReport::parse("denied 10\nleft 0\n")).unwrap_err();
        assert!(outcome.to_string().contains("not allowed"), "{outcome}");
        let rest = super::outcome(&b, &KillReport::parse("killed-rest 10\nleft 0\n")).unwrap();
        assert!(rest.to_string().contains("what was left"), "{rest}");
    }

    /// Every outcome's words, as the detail pane shows them.
    #[test]
    fn each_outcome_reads_as_before() {
        let b = RemoteBuild {
            name: "hello".into(),
            user: "nixbld1".into(),
            ..build(10, 5, Client::Orphan, Some((9, 4)))
        };
        let said = |text: &str| match outcome(&b, &KillReport::parse(text)) {
            Ok(done) => format!("ok: {done}"),
            Err(why) => format!("err: {why}"),
        };
        assert_eq!(
            said("killed 10\nkilled 9\nleft 0\n"),
            "ok: killed hello (10) and its serving process 9: nothing of it is left"
        );
        assert_eq!(
            said("killed 10\ndenied 9\nleft some\n"),
            "err: sent SIGKILL to hello (10) (its serving process 9 is not the SSH user's \
             to kill: still there), but some of its processes are still there"
        );
        assert_eq!(
            said("gone 10\ngone 9\nleft 0\n"),
            "ok: hello (10) had already ended"
        );
        assert_eq!(
            said("denied 10\nleft 0\n"),
            "err: not allowed to kill hello (10): the SSH user may not signal the build user \
             nixbld1; log in as root (or as that user) to kill it"
        );
        assert_eq!(
            said("bad arguments\n"),
            "err: the builder gave no answer: bad arguments"
        );
        assert_eq!(
            KillError::from(RunError::TimedOut).to_string(),
            "the builder did not answer in time"
        );
    }

    #[test]
    fn only_an_orphans_server_is_named() {
        let mine = build(10, 5, Client::ThisMachine, Some((9, 4)));
        assert_eq!(remote_kill::args(&targets(&mine)), ["group", "10", "5"]);
        let orphan = build(10, 5, Client::Orphan, Some((9, 4)));
        assert_eq!(
            remote_kill::args(&targets(&orphan)),
            ["group", "10", "5", "process", "9", "4"]
        );
    }
}
