//! The one kill rbtop does on a builder, for `K` ([`crate::remote_builds::kill`])
//! and for the builder check after a cancel ([`crate::jobs::remote`]): the
//! callers decide the [`Target`]s, the [`KILL`](super::script::KILL) script
//! kills them, and [`KillReport`] says what became of each.
//!
//! Every kill is of a pid rbtop saw with its start time (field 22 of
//! `/proc/PID/stat`), and only while that pid still has it, so a pid reused
//! since is never hit. A build is killed as Nix's own cancel does: SIGKILL
//! to its process group (the builder is a session leader), and what is left
//! of a group whose leader has ended goes too.

use std::time::Duration;

use super::script::{KILL, RunError};
use crate::ssh::HostSession;

/// How long the builder gets to answer (the script waits up to 2 s for a
/// group to die).
pub(crate) const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// What one kill is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The process group led by `leader`, while the leader still started at
    /// `start`; `start: None` when the leader had already ended when rbtop
    /// looked (then only what is left of its group is killed).
    Group { leader: u32, start: Option<u64> },
    /// The process `pid` alone, while it still started at `start`.
    Process { pid: u32, start: u64 },
}

impl Target {
    fn words(&self) -> [String; 3] {
        match *self {
            Target::Group { leader, start } => [
                "group".into(),
                leader.to_string(),
                start.map_or("-".into(), |s| s.to_string()),
            ],
            Target::Process { pid, start } => {
                ["process".into(), pid.to_string(), start.to_string()]
            }
        }
    }
}

/// The kill script's arguments for `targets`.
pub(crate) fn args(targets: &[Target]) -> Vec<String> {
    targets.iter().flat_map(Target::words).collect()
}

/// What became of one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// SIGKILL went to it (its whole group, for a group).
    Killed,
    /// Its leader had ended; SIGKILL went to what was left of its group.
    KilledRest,
    /// The kill failed and it (or members of its group) is still there: not
    /// the SSH user's to signal.
    Denied,
    /// Nothing of it was left to kill.
    Gone,
    /// Its pid is another process now: nothing was killed.
    Reused,
}

/// Everything one run of the kill script said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KillReport {
    fates: Vec<(u32, Fate)>,
    /// `Some(true)` when members of the groups it killed were still alive
    /// after up to 2 s; `None` when it did not say.
    pub left_some: Option<bool>,
    /// The whole answer, trimmed, for when it makes no sense.
    pub text: String,
}

impl KillReport {
    pub(crate) fn parse(output: &str) -> KillReport {
        let mut report = KillReport {
            text: output.trim().to_string(),
            ..KillReport::default()
        };
        for line in output.lines() {
            let Some((word, rest)) = line.split_once(' ') else {
                continue;
            };
            let fate = match word {
                "killed" => Fate::Killed,
                "killed-rest" => Fate::KilledRest,
                "denied" => Fate::Denied,
                "gone" => Fate::Gone,
                "reused" => Fate::Reused,
                "left" => {
                    report.left_some = Some(rest != "0");
                    continue;
                }
                _ => continue,
            };
            if let Ok(id) = rest.parse() {
                report.fates.push((id, fate));
            }
        }
        report
    }

    /// What became of the target reported under `id`, if the script said.
    pub(crate) fn fate(&self, id: u32) -> Option<Fate> {
        self.fates.iter().find(|(i, _)| *i == id).map(|(_, f)| *f)
    }

    /// Whether SIGKILL went to any target.
    pub(crate) fn killed_any(&self) -> bool {
        self.fates
            .iter()
            .any(|(_, f)| matches!(f, Fate::Killed | Fate::KilledRest))
    }

    /// Whether any target was refused.
    pub(crate) fn any_denied(&self) -> bool {
        self.fates.iter().any(|(_, f)| *f == Fate::Denied)
    }
}

/// Kill `targets` on the builder of `session`.
pub(crate) async fn run(session: &HostSession, targets: &[Target]) -> Result<KillReport, RunError> {
    let output = KILL.output(session, args(targets), ANSWER_LIMIT).await?;
    Ok(KillReport::parse(&output))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    use super::*;
    use crate::jobs::process_tree::{self, Process};
    use crate::remote::script::tests::dash;

    pub(crate) fn start_ticks(pid: u32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        crate::proc_stat::fields_after_name(&stat).unwrap()[19]
            .parse()
            .unwrap()
    }

    /// The kill script run here under dash, as the user running the tests.
    pub(crate) fn run_here(targets: &[Target]) -> KillReport {
        run_as(&[], targets)
    }

    /// The kill script run here under dash, behind `prefix` (e.g. setpriv).
    pub(crate) fn run_as(prefix: &[&str], targets: &[Target]) -> KillReport {
        let (program, rest) = match prefix.split_first() {
            Some((program, rest)) => (*program, rest),
            None => (dash(), &[][..]),
        };
        let mut command = Command::new(program);
        command.args(rest);
        if !prefix.is_empty() {
            command.arg(dash());
        }
        let output = command.args(KILL.sh_args(args(targets))).output().unwrap();
        KillReport::parse(&String::from_utf8_lossy(&output.stdout))
    }

    /// `nobody`, who may signal no process of root's.
    pub(crate) const AS_NOBODY: [&str; 4] = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
    ];

    /// A session (its own process group) of `sh -c script`, its stdout
    /// piped.
    pub(crate) fn session(script: &str) -> Child {
        session_with(script, &[])
    }

    /// [`session`] with `env` added to the shell's environment (`export` in
    /// the script would not show in its `/proc/PID/environ`).
    pub(crate) fn session_with(script: &str, env: &[(&str, &str)]) -> Child {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command.envs(env.iter().copied());
        command.stdout(std::process::Stdio::piped());
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        command.spawn().unwrap()
    }

    /// A session whose leader exits at once, leaving two children in its
    /// group: the group, the leader's start time and the children.
    pub(crate) fn leaderless_group() -> (u32, u64, Vec<Process>) {
        let leader = session("sleep 60 >/dev/null & echo $!; sleep 60 >/dev/null & echo $!");
        let (group, start) = (leader.id(), start_ticks(leader.id()));
        let output = leader.wait_with_output().unwrap();
        let members: Vec<Process> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|pid| process_tree::process(pid.parse().unwrap()).unwrap())
            .collect();
        assert_eq!(members.len(), 2);
        (group, start, members)
    }

    #[test]
    fn targets_are_triples_of_words() {
        let targets = [
            Target::Group {
                leader: 10,
                start: Some(5),
            },
            Target::Group {
                leader: 11,
                start: None,
            },
            Target::Process { pid: 9, start: 4 },
        ];
        assert_eq!(
            args(&targets),
            ["group", "10", "5", "group", "11", "-", "process", "9", "4"]
        );
    }

    #[test]
    fn the_report_is_read_per_target() {
        let report = KillReport::parse("killed 10\ndenied 9\nreused 8\nleft some\n");
        assert_eq!(report.fate(10), Some(Fate::Killed));
        assert_eq!(report.fate(9), Some(Fate::Denied));
        assert_eq!(report.fate(8), Some(Fate::Reused));
        assert_eq!(report.fate(7), None);
        assert_eq!(report.left_some, Some(true));
        assert!(report.any_denied());
        let nothing = KillReport::parse("bad arguments\n");
        assert_eq!(
            (nothing.left_some, nothing.text.as_str()),
            (None, "bad arguments")
        );
    }

    /// Nothing is killed when one word is wrong: pid 1 or 0 (which kill(1)
    /// takes for every process, or the caller's own group), a leading
    /// zero, a start time that is no number, or a `-` start for a process.
    #[test]
    fn bad_arguments_kill_nothing() {
        for words in [
            &["group", "1", "0"][..],
            &["group", "0", "0"],
            &["group", "01", "5"],
            &["group", "12", "x"],
            &["process", "12", "-"],
            &["group", "12"],
            &["frog", "12", "3"],
            &[],
        ] {
            let output = Command::new(dash())
                .args(KILL.sh_args(words))
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                "bad arguments\n",
                "{words:?}"
            );
            assert_eq!(output.status.code(), Some(2));
        }
    }

    /// Members of a group whose leader is gone (stragglers) are killed as
    /// what is left of it, whether the leader was seen alive (K) or
    /// already gone (the builder check).
    #[test]
    fn stragglers_of_a_group_whose_leader_is_gone_are_killed() {
        for seen in [true, false] {
            let (group, start, members) = leaderless_group();
            let report = run_here(&[Target::Group {
                leader: group,
                start: seen.then_some(start),
            }]);
            assert_eq!(report.fate(group), Some(Fate::KilledRest), "{report:?}");
            assert_eq!(report.left_some, Some(false), "{report:?}");
            for member in members {
                assert!(!process_tree::is_alive(member), "{member:?} of {group}");
            }
        }
    }
}
