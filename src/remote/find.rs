//! A build's processes on a builder, found by their environment with the
//! [`FIND_BUILD`](super::script::FIND_BUILD) script, and which of them to
//! kill ([`Found::targets`], for [`super::kill`]).

use std::time::Duration;

use super::kill::Target;
use super::script::{FIND_BUILD, RunError};
use crate::ssh::HostSession;

/// How a build's processes are told by their environment: an entry of it
/// (NUL-separated, taken whole, never a part of one) must be one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EnvMatch {
    /// Equal to one of these entries, e.g. `out=/nix/store/…-hello`.
    Exactly(Vec<String>),
    /// Matching this extended regular expression, as a whole entry.
    Pattern(String),
}

impl EnvMatch {
    /// The finder's arguments.
    pub(crate) fn args(&self) -> Vec<String> {
        match self {
            EnvMatch::Exactly(entries) => std::iter::once("-F".to_string())
                .chain(entries.iter().cloned())
                .collect(),
            EnvMatch::Pattern(pattern) => vec!["-E".into(), pattern.clone()],
        }
    }
}

/// `text` as an extended regular expression that matches only itself.
pub(crate) fn ere_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if ".[]{}()\\*+?^$|".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One process the finder found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoundProcess {
    pub pid: u32,
    pub pgid: u32,
    /// Field 22 of its `stat`.
    pub start: u64,
    /// That of its group's leader; `None` when the leader is gone.
    pub leader_start: Option<u64>,
    /// Its command line, words joined by spaces.
    pub args: String,
}

impl FoundProcess {
    /// `PID ARGS`, for a person.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.pid, self.args)
    }
}

/// What one run of the finder printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub processes: Vec<FoundProcess>,
    /// The SSH user's uid on the builder: only root sees every build
    /// user's environment.
    pub uid: Option<u32>,
}

impl Found {
    pub(crate) fn parse(output: &str) -> Found {
        let mut found = Found::default();
        for line in output.lines() {
            if let Some(uid) = line.strip_prefix("uid ") {
                found.uid = uid.trim().parse().ok();
            } else if let Some(process) = parse_process(line) {
                found.processes.push(process);
            }
        }
        found
    }

    /// `PID ARGS` of each process.
    pub(crate) fn describe(&self) -> Vec<String> {
        self.processes.iter().map(FoundProcess::describe).collect()
    }

    /// What to kill, each once: the group of every process that leads its
    /// own (a builder is a session leader, so its group is the build, its
    /// children that dropped the environment included); what is left of a
    /// group whose leader is gone; and alone, a process whose group's
    /// leader lives but was not found (that group is not the build's).
    pub(crate) fn targets(&self) -> Vec<Target> {
        let leaders: Vec<u32> = self
            .processes
            .iter()
            .filter(|p| p.pid == p.pgid)
            .map(|p| p.pid)
            .collect();
        let mut targets: Vec<Target> = Vec::new();
        for p in &self.processes {
            let target = if p.pid == p.pgid {
                Target::Group {
                    leader: p.pid,
                    start: Some(p.start),
                }
            } else if leaders.contains(&p.pgid) {
                continue;
            } else if p.leader_start.is_none() && p.pgid > 1 {
                Target::Group {
                    leader: p.pgid,
                    start: None,
                }
            } else {
                Target::Process {
                    pid: p.pid,
                    start: p.start,
                }
            };
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        targets
    }
}

/// `PID PGID START LEADER_START ARGS`.
fn parse_process(line: &str) -> Option<FoundProcess> {
    let mut words = line.splitn(5, ' ');
    let mut number = || words.next()?.parse::<u64>().ok();
    let pid = u32::try_from(number()?).ok()?;
    let pgid = u32::try_from(number()?).ok()?;
    let start = number()?;
    let leader = words.next()?;
    let leader_start = if leader == "-" {
        None
    } else {
        Some(leader.parse().ok()?)
    };
    Some(FoundProcess {
        pid,
        pgid,
        start,
        leader_start,
        args: words.next().unwrap_or_default().trim().to_string(),
    })
}

/// Look for the processes `how` matches on the builder of `session`.
pub(crate) async fn run(
    session: &HostSession,
    how: &EnvMatch,
    limit: Duration,
) -> Result<Found, RunError> {
    let output = FIND_BUILD.output(session, how.args(), limit).await?;
    Ok(Found::parse(&output))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::*;
    use crate::jobs::process_tree;
    use crate::remote::kill::tests::{run_here, session, session_with, start_ticks};
    use crate::remote::kill::{Fate, Target};
    use crate::remote::script::tests::dash;

    fn process(pid: u32, pgid: u32, start: u64, leader_start: Option<u64>) -> FoundProcess {
        FoundProcess {
            pid,
            pgid,
            start,
            leader_start,
            args: "sleep 1".into(),
        }
    }

    /// The finder run here under dash.
    fn find_here(how: &EnvMatch) -> Found {
        let output = Command::new(dash())
            .args(FIND_BUILD.sh_args(how.args()))
            .output()
            .unwrap();
        Found::parse(&String::from_utf8_lossy(&output.stdout))
    }

    /// Until `pid` has started its children.
    /// `pid`'s descendants once `n` of them run `sleep`: a forked child
    /// that has not yet exec'd still has its parent's environment.
    fn wait_for_children(pid: u32, n: usize) -> Vec<process_tree::Process> {
        let is_sleep = |p: &process_tree::Process| {
            std::fs::read_to_string(format!("/proc/{}/comm", p.pid)).is_ok_and(|c| c == "sleep\n")
        };
        for _ in 0..250 {
            let children = process_tree::descendants(pid);
            if children.iter().filter(|c| is_sleep(c)).count() >= n {
                return children;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{pid} did not start {n} children");
    }

    #[test]
    fn output_of_the_script() {
        let found = Found::parse(
            "123 123 500 500 /bin/sh -c while true \n124 123 501 500 /bin/sleep 1 \n\
             130 129 502 - sleep 2\nnoise\nuid 0\n",
        );
        assert_eq!(
            found.describe(),
            [
                "123 /bin/sh -c while true",
                "124 /bin/sleep 1",
                "130 sleep 2"
            ]
        );
        assert_eq!(
            found.processes[1],
            FoundProcess {
                args: "/bin/sleep 1".into(),
                ..process(124, 123, 501, Some(500))
            }
        );
        assert_eq!(found.processes[2].leader_start, None);
        assert_eq!(found.uid, Some(0));
        assert_eq!(Found::parse("uid 1000\n").uid, Some(1000));
        assert_eq!(Found::parse("").uid, None);
    }

    /// A group whose leader was found is killed whole, once; what is left
    /// of a group whose leader is gone goes as a group; a process whose
    /// group is led by another, living process goes alone; group 1 never.
    #[test]
    fn the_targets_are_groups_stragglers_and_lone_processes() {
        let found = Found {
            processes: vec![
                process(10, 10, 100, Some(100)),
                process(11, 10, 101, Some(100)),
                process(21, 20, 201, None),
                process(22, 20, 202, None),
                process(31, 30, 301, Some(300)),
                process(41, 1, 401, Some(0)),
                process(51, 1, 501, None),
            ],
            uid: Some(0),
        };
        assert_eq!(
            found.targets(),
            [
                Target::Group {
                    leader: 10,
                    start: Some(100)
                },
                Target::Group {
                    leader: 20,
                    start: None
                },
                Target::Process {
                    pid: 31,
                    start: 301
                },
                Target::Process {
                    pid: 41,
                    start: 401
                },
                Target::Process {
                    pid: 51,
                    start: 501
                },
            ]
        );
    }

    #[test]
    fn a_name_is_matched_as_itself() {
        assert_eq!(ere_literal("gcc-13.2+x?"), r"gcc-13\.2\+x\?");
        let args = EnvMatch::Exactly(vec!["out=/nix/store/a-x".into()]).args();
        assert_eq!(args, ["-F", "out=/nix/store/a-x"]);
    }

    /// An entry matches only whole: `out=/nix/store/x-foo` finds neither
    /// `out=/nix/store/x-foobar` nor `xout=/nix/store/x-foo`, and a
    /// pattern is anchored at both ends.
    #[test]
    fn the_environment_is_matched_by_whole_entries() {
        let path = format!("/nix/store/{}-foo", std::process::id());
        let mut group = session(&format!(
            "env -u out out={path}bar sleep 30 & env -u out x{p}={path} sleep 30 & \
             env -u out out={path} sleep 30 & wait",
            p = "out"
        ));
        wait_for_children(group.id(), 3);
        let exact = find_here(&EnvMatch::Exactly(vec![format!("out={path}")]));
        assert_eq!(exact.processes.len(), 1, "{exact:?}");
        let pid = exact.processes[0].pid;
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            env.split(|&b| b == 0)
                .any(|e| e == format!("out={path}").as_bytes()),
            "the one with the exact entry"
        );
        assert_eq!(exact.processes[0].pgid, group.id());
        assert_eq!(
            exact.processes[0].leader_start,
            Some(start_ticks(group.id()))
        );
        // A prefix of an entry is no match for a pattern either.
        let prefix = find_here(&EnvMatch::Pattern(format!("out={}", ere_literal(&path))));
        assert_eq!(prefix.describe(), exact.describe());
        let none = find_here(&EnvMatch::Pattern(format!(
            "out={}",
            ere_literal(&path[..path.len() - 1])
        )));
        assert!(none.processes.is_empty(), "{none:?}");
        // SAFETY: getuid cannot fail.
        assert_eq!(none.uid, Some(unsafe { libc::getuid() }));
        // SAFETY: kill(2) of the group this test started.
        unsafe { libc::kill(-(group.id() as i32), libc::SIGKILL) };
        let _ = group.wait();
    }

    /// A build chooses its command line: a newline in it cannot add a
    /// process for rbtop to kill (pid 2 here) or a uid.
    #[test]
    fn a_command_line_cannot_add_a_process_or_a_uid() {
        let path = format!("/nix/store/{}-forger", std::process::id());
        let mut forger = Command::new("sh")
            .args(["-c", "sleep 30; :", "x\n2 2 0 0 forged\nuid 0"])
            .env("out", &path)
            .process_group(0)
            .spawn()
            .unwrap();
        wait_for_children(forger.id(), 1);
        let found = find_here(&EnvMatch::Exactly(vec![format!("out={path}")]));
        // SAFETY: kill(2) of the group this test started.
        unsafe { libc::kill(-(forger.id() as i32), libc::SIGKILL) };
        let _ = forger.wait();
        let pids: Vec<u32> = found.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids.len(), 2, "the shell and its sleep: {found:?}");
        assert!(!pids.contains(&2), "{found:?}");
        assert!(
            found
                .processes
                .iter()
                .any(|p| p.args.contains("x 2 2 0 0 forged uid 0")),
            "{found:?}"
        );
        // SAFETY: getuid cannot fail.
        assert_eq!(found.uid, Some(unsafe { libc::getuid() }));
    }

    /// The post-cancel look, then the kill of its targets: a process group
    /// where only the leader carries the entry dies whole; found again with
    /// a wrong start time (a pid reused since the look), nothing is killed.
    #[test]
    fn what_the_finder_finds_is_killed_only_while_its_start_time_holds() {
        let path = format!("/nix/store/{}-marker", std::process::id());
        let mut leader = session_with("env -u out sleep 30 & wait", &[("out", &path)]);
        let members = wait_for_children(leader.id(), 1);
        let how = EnvMatch::Exactly(vec![format!("out={path}")]);
        let mut found = find_here(&how);
        assert_eq!(
            found.processes.len(),
            1,
            "only the leader has it: {found:?}"
        );

        found.processes[0].start += 1;
        let report = run_here(&found.targets());
        assert_eq!(report.fate(leader.id()), Some(Fate::Reused), "{report:?}");
        assert!(leader.try_wait().unwrap().is_none(), "still running");
        assert!(process_tree::is_alive(members[0]));

        let report = run_here(&find_here(&how).targets());
        assert_eq!(report.fate(leader.id()), Some(Fate::Killed), "{report:?}");
        assert_eq!(report.left_some, Some(false));
        assert!(
            leader.wait().unwrap().code().is_none(),
            "killed by a signal"
        );
        assert!(
            !process_tree::is_alive(members[0]),
            "the group's other member was killed too"
        );
        assert!(find_here(&how).processes.is_empty());
    }
}
