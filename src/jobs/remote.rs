//! After a cancel: is anything of the build still running on its builder?
//! Asked over SSH with one fixed script ([`FIND`],
//! `src/remote/scripts/find.sh`; arguments quoted by the `openssh` crate,
//! never spliced into the script), which finds the build's processes by
//! their environment: Nix gives every builder `out=<output path>` (any
//! Nix; the path's hash makes it this derivation's alone). Only when no
//! output path is known (a floating content-addressed derivation) does it
//! fall back to the build directory's name (Nix 2.8–2.31), which any build
//! of a derivation with the same name shares.

use std::time::Duration;

use super::drv;
use super::job::{Cleanup, CleanupReport, RemoteDerivation};
use super::progress::drv_name;
use crate::machines::Machine;
use crate::remote::script::FIND;
use crate::ssh::oneshot::{self, CONNECT_LIMIT};
use crate::ssh::{HostSession, SshSettings};

/// How long Nix gets to stop the remote build itself before rbtop does
/// (it takes about 2 s: nix-reference §5).
pub const SETTLE: Duration = Duration::from_secs(4);
const POLL: Duration = Duration::from_millis(500);

/// The `grep -F` patterns that identify `drv`'s build processes.
pub fn patterns(drv_path: &str, outputs: &[(String, String)]) -> Vec<String> {
    if outputs.is_empty() {
        return vec![format!("nix-build-{}.drv-", drv_name(drv_path))];
    }
    outputs
        .iter()
        .map(|(name, path)| format!("{name}={path}"))
        .collect()
}

/// What one run of [`FIND`] printed.
#[derive(Debug, Default, PartialEq)]
pub struct Found {
    pub processes: Vec<String>,
    pub uid: Option<u32>,
}

pub fn parse_found(output: &str) -> Found {
    let mut found = Found::default();
    for line in output.lines() {
        if let Some(uid) = line.strip_prefix("uid ") {
            found.uid = uid.trim().parse().ok();
        } else if !line.trim().is_empty() {
            // `PID PGID ARGS`: keep the pid and the command.
            let mut words = line.splitn(3, ' ');
            let pid = words.next().unwrap_or_default();
            let _pgid = words.next();
            let args = words.next().unwrap_or_default().trim();
            found.processes.push(format!("{pid} {args}"));
        }
    }
    found
}

/// Check (and clean) every builder that had one of `builds` running.
pub async fn check_builders(
    builds: Vec<RemoteDerivation>,
    machines: &[Machine],
    ssh: &SshSettings,
) -> Vec<CleanupReport> {
    let checks = builds.into_iter().map(|build| async move {
        let cleanup = match machine_named_by_nix(machines, &build.machine) {
            None => Cleanup::Unknown("not one of rbtop's machines".into()),
            Some(machine) => check_one(machine, &build.drv, ssh).await,
        };
        CleanupReport { build, cleanup }
    });
    futures_util::future::join_all(checks).await
}

/// The machine Nix named: its URI as written, else the same URI without its
/// query (newer Nix re-encodes and sorts query parameters).
fn machine_named_by_nix<'m>(machines: &'m [Machine], uri: &str) -> Option<&'m Machine> {
    let without_query = |u: &str| u.split('?').next().unwrap_or_default().to_string();
    machines.iter().find(|m| m.uri() == uri).or_else(|| {
        machines
            .iter()
            .find(|m| without_query(m.uri()) == without_query(uri))
    })
}

async fn check_one(machine: &Machine, drv_path: &str, ssh: &SshSettings) -> Cleanup {
    let session = match oneshot::connect(machine, ssh).await {
        Ok(session) => session,
        Err(why) => return Cleanup::Unknown(why),
    };
    let outputs = drv::read_output_paths(std::path::Path::new(drv_path));
    let patterns = patterns(drv_path, &outputs);
    let result = settle_then_kill(&session, &patterns).await;
    session.close().await;
    result
}

async fn settle_then_kill(session: &HostSession, patterns: &[String]) -> Cleanup {
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut last = Found::default();
    while tokio::time::Instant::now() < deadline {
        last = match run(session, "look", patterns).await {
            Ok(found) => found,
            Err(e) => return Cleanup::Unknown(e),
        };
        if last.processes.is_empty() {
            return clean_or_unknown(&last);
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::warn!(processes = ?last.processes, "build still running on the builder; killing it");
    let killed = match run(session, "kill", patterns).await {
        Ok(found) => found,
        Err(e) => return Cleanup::Unknown(e),
    };
    tokio::time::sleep(POLL).await;
    match run(session, "look", patterns).await {
        Ok(after) if after.processes.is_empty() => Cleanup::Killed {
            processes: killed.processes,
        },
        Ok(after) => Cleanup::Unknown(format!(
            "still running after SIGKILL: {}",
            after.processes.join("; ")
        )),
        Err(e) => Cleanup::Unknown(e),
    }
}

fn clean_or_unknown(found: &Found) -> Cleanup {
    match found.uid {
        Some(0) => Cleanup::Clean,
        Some(uid) => Cleanup::Unknown(format!(
            "nothing visible, but the SSH user (uid {uid}) cannot see other users' builds"
        )),
        None => Cleanup::Unknown("the builder gave no answer".into()),
    }
}

async fn run(session: &HostSession, mode: &str, patterns: &[String]) -> Result<Found, String> {
    let mut command = session.session().command("sh");
    let mut args = vec![mode];
    for pattern in patterns {
        args.extend(["-e", pattern]);
    }
    command.args(FIND.sh_args(args));
    let output = tokio::time::timeout(CONNECT_LIMIT, command.output())
        .await
        .map_err(|_| "the builder did not answer in time".to_string())?
        .map_err(|e| format!("cannot run the check: {e}"))?;
    Ok(parse_found(&String::from_utf8_lossy(&output.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn patterns_are_the_outputs_else_the_build_dir() {
        let outputs = vec![("out".to_string(), "/nix/store/bbbb-x".to_string())];
        let drv = "/nix/store/00000000000000000000000000000000-x.drv";
        // The output path is this derivation's alone; the build directory's
        // name is shared by every derivation called `x`.
        assert_eq!(patterns(drv, &outputs), ["out=/nix/store/bbbb-x"]);
        assert_eq!(patterns(drv, &[]), ["nix-build-x.drv-"]);
    }

    #[test]
    fn machines_are_found_by_uri_then_without_the_query() {
        let mut parser = crate::machines::Parser::new(vec!["x86_64-linux".into()]);
        parser.parse_text(&crate::machines::MachinesText::whole(
            "b1 - - 1\nssh-ng://b2?compress=true&ssh-key=/k - - 1",
            crate::diagnostics::Origin::BuildersFlag,
        ));
        let machines = parser.finish().machines;
        assert_eq!(
            machine_named_by_nix(&machines, "ssh://b1").unwrap().uri(),
            "ssh://b1"
        );
        assert_eq!(
            machine_named_by_nix(&machines, "ssh-ng://b2?ssh-key=%2Fk&compress=true")
                .unwrap()
                .uri(),
            machines[1].uri()
        );
        assert!(machine_named_by_nix(&machines, "ssh://b3").is_none());
    }

    #[test]
    fn output_of_the_script() {
        let found = parse_found("123 123 /bin/sh -c while true \n124 123 /bin/sleep 1 \nuid 0\n");
        assert_eq!(
            found.processes,
            ["123 /bin/sh -c while true", "124 /bin/sleep 1"]
        );
        assert_eq!(found.uid, Some(0));
        assert_eq!(clean_or_unknown(&parse_found("uid 0\n")), Cleanup::Clean);
        assert!(matches!(
            clean_or_unknown(&parse_found("uid 1000\n")),
            Cleanup::Unknown(_)
        ));
    }

    /// The script itself, run locally (under dash, Debian's `/bin/sh`, when
    /// installed) on a process group where only the leader carries the
    /// pattern in its environment: `look` finds it, `kill` ends the whole
    /// group, the member without the pattern included.
    #[test]
    fn the_script_finds_by_environment_and_kills_the_whole_group() {
        let shell = crate::remote::script::tests::dash();
        let marker = format!("rbtop-test-marker-{}", std::process::id());
        let mut leader = std::process::Command::new(shell)
            .args(["-c", "env -u out sleep 30 & wait"])
            .env("out", &marker)
            .process_group(0)
            .spawn()
            .unwrap();
        let run = |mode: &str| {
            let output = std::process::Command::new(shell)
                .args(FIND.sh_args([mode, "-e", format!("out={marker}").as_str()]))
                .output()
                .unwrap();
            parse_found(&String::from_utf8_lossy(&output.stdout))
        };
        let members = || crate::jobs::process_tree::descendants(leader.id());
        for _ in 0..100 {
            if !members().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let sleeper = members();
        assert_eq!(
            sleeper.len(),
            1,
            "the sleep without the marker: {sleeper:?}"
        );
        let found = run("look");
        assert_eq!(
            found.processes.len(),
            1,
            "only the leader has it: {found:?}"
        );
        run("kill");
        let _ = leader.wait();
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !crate::jobs::process_tree::is_alive(sleeper[0]),
            "the group's other member was killed too"
        );
        assert!(run("look").processes.is_empty());
    }
}
