//! `K`: kill one build on its builder, as Nix's own cancel does: SIGKILL to
//! the builder's whole process group. An orphan's serving process goes too,
//! since no client will ever collect it.
//!
//! One fixed script ([`KILL`], `src/remote/scripts/kill.sh`) takes the pids
//! and their start times as arguments (quoted by the `openssh` crate, never
//! spliced into the script). Each pid is killed only while `/proc/PID/stat`
//! still shows the start time rbtop listed, so a pid reused since the
//! listing is never hit.

use std::time::Duration;

use super::classify::{Client, RemoteBuild};
use crate::machines::Machine;
use crate::remote::script::KILL;
use crate::ssh::{SshSettings, oneshot};

/// How long the builder gets to answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// The script's arguments for `build`.
pub fn kill_args(build: &RemoteBuild) -> Vec<String> {
    let mut args = vec![build.pid.to_string(), build.start_ticks.to_string()];
    if build.client == Client::Orphan
        && let (Some(pid), Some(start)) = (build.serving_pid, build.serving_start_ticks)
    {
        args.extend([pid.to_string(), start.to_string()]);
    }
    args
}

/// What the script said, for a person.
pub fn describe_outcome(build: &RemoteBuild, output: &str) -> Result<String, String> {
    let said = |word: &str, pid: u32| output.lines().any(|l| l == format!("{word} {pid}"));
    if said("denied", build.pid) {
        return Err(format!(
            "not allowed to kill {} ({}): the SSH user may not signal the build user {}; \
             log in as root (or as that user) to kill it",
            build.name, build.pid, build.user
        ));
    }
    if said("gone", build.pid) {
        return Ok(if said("killed-rest", build.pid) {
            format!(
                "{} ({}) had ended; killed what was left of its process group",
                build.name, build.pid
            )
        } else {
            format!("{} ({}) had already ended", build.name, build.pid)
        });
    }
    if said("reused", build.pid) {
        return Err(format!(
            "pid {} is now another process; nothing killed",
            build.pid
        ));
    }
    if !said("killed", build.pid) {
        return Err(format!("the builder gave no answer: {}", output.trim()));
    }
    let serving = match build.serving_pid {
        Some(pid) if said("killed", pid) => format!(" and its serving process {pid}"),
        Some(pid) if said("denied", pid) => {
            format!(" (its serving process {pid} is not the SSH user's to kill: still there)")
        }
        _ => String::new(),
    };
    if output.lines().any(|l| l == "left 0") {
        Ok(format!(
            "killed {} ({}){serving}: nothing of it is left",
            build.name, build.pid
        ))
    } else {
        Err(format!(
            "sent SIGKILL to {} ({}){serving}, but some of its processes are still there",
            build.name, build.pid
        ))
    }
}

/// Kill `build` on `machine`, over a session of its own.
pub async fn kill(
    machine: &Machine,
    build: &RemoteBuild,
    ssh: &SshSettings,
) -> Result<String, String> {
    let session = oneshot::connect(machine, ssh).await?;
    let mut command = session.session().command("sh");
    command.args(KILL.sh_args(kill_args(build)));
    let output = tokio::time::timeout(ANSWER_LIMIT, command.output()).await;
    session.close().await;
    let output = output
        .map_err(|_| "the builder did not answer in time".to_string())?
        .map_err(|e| format!("cannot run the kill: {e}"))?;
    describe_outcome(build, &String::from_utf8_lossy(&output.stdout))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::*;
    use crate::remote_builds::classify::tests::sample_build;

    fn build(pid: u32, start: u64, client: Client, serving: Option<(u32, u64)>) -> RemoteBuild {
        RemoteBuild {
            serving_pid: serving.map(|s| s.0),
            start_ticks: start,
            serving_start_ticks: serving.map(|s| s.1),
            ..sample_build(pid, client)
        }
    }

    fn start_ticks(pid: u32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        crate::proc_stat::fields_after_name(&stat).unwrap()[19]
            .parse()
            .unwrap()
    }

    fn run_script(args: &[String]) -> String {
        let output = Command::new("sh")
            .args(KILL.sh_args(args))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A builder-like group (a session with a child of its own) and a
    /// separate "serving" process, really killed by the script under dash.
    #[test]
    fn the_script_kills_the_group_and_an_orphans_server_but_not_a_reused_pid() {
        let mut group = Command::new("sh");
        group.args(["-c", "sleep 60 & sleep 60; wait"]);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            group.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut group = group.spawn().unwrap();
        let mut server = Command::new("sleep").arg("60").spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let (gpid, spid) = (group.id(), server.id());

        // A wrong start time: the pid is "reused", nothing is killed.
        let wrong = build(gpid, start_ticks(gpid) + 1, Client::Orphan, None);
        let said = run_script(&kill_args(&wrong));
        assert!(said.contains(&format!("reused {gpid}")), "{said}");
        assert!(describe_outcome(&wrong, &said).is_err());
        assert!(group.try_wait().unwrap().is_none(), "still running");

        let orphan = build(
            gpid,
            start_ticks(gpid),
            Client::Orphan,
            Some((spid, start_ticks(spid))),
        );
        let said = run_script(&kill_args(&orphan));
        let outcome = describe_outcome(&orphan, &said).unwrap();
        assert!(outcome.contains("nothing of it is left"), "{outcome}");
        assert!(
            outcome.contains(&format!("serving process {spid}")),
            "{outcome}"
        );
        assert!(group.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(server.wait().unwrap().code().is_none());

        // Again: the leader is gone (its child may linger as a zombie until
        // init reaps it, which the group kill then hits harmlessly).
        let said = run_script(&kill_args(&orphan));
        let again = describe_outcome(&orphan, &said).unwrap();
        assert!(again.contains("ended"), "{again}");
    }

    /// A session whose leader exits at once, leaving a child in its group.
    fn leaderless_group() -> (u32, u64) {
        let mut leader = Command::new("sh");
        leader.args(["-c", "sleep 60 >/dev/null & echo $!"]);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            leader.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        leader.stdout(std::process::Stdio::piped());
        let child = leader.spawn().unwrap();
        let (group, start) = (child.id(), start_ticks(child.id()));
        let output = child.wait_with_output().unwrap();
        let sleeper: u32 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap();
        assert!(std::path::Path::new(&format!("/proc/{sleeper}")).exists());
        (group, start)
    }

    /// The leader gone, the rest of its group is still killed; run as
    /// another user (nobody), the same kill is refused and said so.
    #[test]
    fn what_is_left_of_a_group_is_killed_and_a_refusal_is_reported() {
        let (group, start) = leaderless_group();
        let b = build(group, start, Client::Ssh, None);
        let said = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh"])
            .args(KILL.sh_args(kill_args(&b)))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&said.stdout).into_owned();
        assert!(said.contains(&format!("denied {group}")), "{said}");
        assert!(describe_outcome(&b, &said).is_err(), "{said}");

        let said = run_script(&kill_args(&b));
        assert!(said.contains(&format!("killed-rest {group}")), "{said}");
        assert!(said.contains("left 0"), "{said}");
        assert!(
            describe_outcome(&b, &said)
                .unwrap()
                .contains("what was left")
        );
    }

    #[test]
    fn a_refused_kill_is_an_error_not_a_success() {
        let b = build(10, 5, Client::Ssh, None);
        let outcome = describe_outcome(&b, "denied 10\nleft 0\n").unwrap_err();
        assert!(outcome.contains("not allowed"), "{outcome}");
        let rest = describe_outcome(&b, "gone 10\nkilled-rest 10\nleft 0\n").unwrap();
        assert!(rest.contains("what was left"), "{rest}");
    }

    #[test]
    fn only_an_orphans_server_is_named() {
        let mine = build(10, 5, Client::ThisMachine, Some((9, 4)));
        assert_eq!(kill_args(&mine), ["10", "5"]);
        let orphan = build(10, 5, Client::Orphan, Some((9, 4)));
        assert_eq!(kill_args(&orphan), ["10", "5", "9", "4"]);
    }
}
