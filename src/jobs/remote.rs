//! After a cancel: is anything of the build still running on its builder?
//! Asked over SSH with the finder script ([`crate::remote::find`]), which
//! finds the build's processes by their environment: Nix gives every
//! builder `out=<output path>` (any Nix; the path's hash makes it this
//! derivation's alone), and an entry of the environment must equal that
//! whole. What is still there once Nix had its time is killed with the one
//! kill rbtop has ([`crate::remote::kill`]), start times checked.

use std::time::Duration;

use super::drv;
use super::job::{Cleanup, CleanupReport, RemoteDerivation};
use super::progress::drv_name;
use crate::machines::Machine;
use crate::remote::find::{self, EnvMatch, Found, ere_literal};
use crate::remote::kill;
use crate::remote::script::RunError;
use crate::ssh::oneshot::{self, CONNECT_LIMIT};
use crate::ssh::{HostSession, SshSettings};

/// How long Nix gets to stop the remote build itself before rbtop does
/// (it takes about 2 s: nix-reference §5).
pub(super) const SETTLE: Duration = Duration::from_secs(4);
const POLL: Duration = Duration::from_millis(500);

/// How `drv`'s build processes are told on the builder: an environment
/// entry `NAME=PATH` for one of its outputs, exactly.
///
/// With no output path known (a floating content-addressed derivation),
/// the build directory's name instead, as a whole `NIX_BUILD_TOP` entry:
/// `…/nix-build-<name>.drv-<n>` (Nix 2.8–2.31). That is weaker: every
/// derivation called `<name>` builds in such a directory, so another build
/// of the same name on that builder (another user's among them) is taken
/// for this one; and a sandboxed build sees `/build`, and Nix 2.32 names
/// its directories `nix-<pid>-<n>`, so those are not found at all.
pub(super) fn env_match(drv_path: &str, outputs: &[(String, String)]) -> EnvMatch {
    if outputs.is_empty() {
        return EnvMatch::Pattern(format!(
            "NIX_BUILD_TOP=/(.*/)?nix-build-{}\\.drv-[0-9]+",
            ere_literal(drv_name(drv_path))
        ));
    }
    EnvMatch::Exactly(
        outputs
            .iter()
            .map(|(name, path)| format!("{name}={path}"))
            .collect(),
    )
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
        Err(why) => return Cleanup::Unknown(why.to_string()),
    };
    let outputs = drv::read_output_paths(std::path::Path::new(drv_path));
    let how = env_match(drv_path, &outputs);
    let result = settle_then_kill(&session, &how).await;
    session.close().await;
    result
}

/// Look until Nix has had [`SETTLE`] to end the build; kill what is left,
/// then look again.
async fn settle_then_kill(session: &HostSession, how: &EnvMatch) -> Cleanup {
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut last = Found::default();
    while tokio::time::Instant::now() < deadline {
        last = match look(session, how).await {
            Ok(found) => found,
            Err(e) => return Cleanup::Unknown(e),
        };
        if last.processes.is_empty() {
            return clean_or_unknown(&last);
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::warn!(processes = ?last.describe(), "build still running on the builder; killing it");
    let report = match kill::run(session, &last.targets()).await {
        Ok(report) => report,
        Err(e) => return Cleanup::Unknown(run_error("kill", e)),
    };
    tokio::time::sleep(POLL).await;
    match look(session, how).await {
        Ok(after) => after_kill(&last, &report, &after),
        Err(e) => Cleanup::Unknown(e),
    }
}

/// What the look after the kill says, with what was killed.
fn after_kill(killed: &Found, report: &kill::KillReport, after: &Found) -> Cleanup {
    if after.processes.is_empty() {
        return if report.killed_any() {
            Cleanup::Killed {
                processes: killed.describe(),
            }
        } else {
            // Each had ended (or its pid was another's) by the kill.
            clean_or_unknown(after)
        };
    }
    let left = after.describe().join("; ");
    if report.any_denied() {
        let user = after.uid.map_or("the SSH user".into(), |uid| {
            format!("the SSH user (uid {uid})")
        });
        Cleanup::Unknown(format!(
            "still running, not allowed to kill: {user} may not signal the build's user: {left}"
        ))
    } else {
        Cleanup::Unknown(format!("still running after SIGKILL: {left}"))
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

async fn look(session: &HostSession, how: &EnvMatch) -> Result<Found, String> {
    find::run(session, how, CONNECT_LIMIT)
        .await
        .map_err(|e| run_error("check", e))
}

fn run_error(what: &str, error: RunError) -> String {
    match error {
        RunError::TimedOut | RunError::TooLong => error.to_string(),
        RunError::Ssh(e) => format!("cannot run the {what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::kill::KillReport;

    #[test]
    fn patterns_are_the_outputs_else_the_build_dir() {
        let outputs = vec![("out".to_string(), "/nix/store/bbbb-x".to_string())];
        let drv = "/nix/store/00000000000000000000000000000000-x.drv";
        // The output path is this derivation's alone; the build directory's
        // name is shared by every derivation called `x`.
        assert_eq!(
            env_match(drv, &outputs),
            EnvMatch::Exactly(vec!["out=/nix/store/bbbb-x".into()])
        );
        assert_eq!(
            env_match(
                "/nix/store/00000000000000000000000000000000-g++-1.2.drv",
                &[]
            ),
            EnvMatch::Pattern(r"NIX_BUILD_TOP=/(.*/)?nix-build-g\+\+-1\.2\.drv-[0-9]+".into())
        );
    }

    /// The build-directory pattern, run by the real finder against a
    /// process whose `NIX_BUILD_TOP` is that of a 2.8 build, and others
    /// whose entries only contain it or name a longer derivation.
    #[test]
    fn the_build_dir_matches_a_whole_entry() {
        use crate::remote::kill::tests::session;
        let name = format!("rbtop-test-{}", std::process::id());
        let top = format!("/tmp/nix-build-{name}.drv-0");
        let mut group = session(&format!(
            "NIX_BUILD_TOP={top} sleep 30 & NIX_BUILD_TOP={top}/src sleep 30 & \
             NIX_BUILD_TOP=/tmp/nix-build-{name}x.drv-0 sleep 30 & PWD={top} sleep 30 & wait"
        ));
        let drv = format!("/nix/store/00000000000000000000000000000000-{name}.drv");
        let how = env_match(&drv, &[]);
        let mut found = Found::default();
        for _ in 0..100 {
            let output = std::process::Command::new(crate::remote::script::tests::dash())
                .args(crate::remote::script::FIND_BUILD.sh_args(how.args()))
                .output()
                .unwrap();
            found = Found::parse(&String::from_utf8_lossy(&output.stdout));
            if !found.processes.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) of the group this test started.
        unsafe { libc::kill(-(group.id() as i32), libc::SIGKILL) };
        let _ = group.wait();
        assert_eq!(found.processes.len(), 1, "{found:?}");
        let pid = found.processes[0].pid;
        assert_ne!(pid, group.id(), "the shell itself has no such entry");
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
    fn nothing_found_is_clean_only_for_root() {
        assert_eq!(clean_or_unknown(&Found::parse("uid 0\n")), Cleanup::Clean);
        assert!(matches!(
            clean_or_unknown(&Found::parse("uid 1000\n")),
            Cleanup::Unknown(_)
        ));
        assert!(matches!(
            clean_or_unknown(&Found::parse("")),
            Cleanup::Unknown(why) if why == "the builder gave no answer"
        ));
    }

    /// The finder's targets killed as `nobody`, who may not signal this
    /// test's processes: the look after the kill says it was refused.
    #[test]
    fn a_refused_kill_after_a_cancel_is_said_so() {
        use crate::remote::kill::tests::{AS_NOBODY, run_as, session_with};
        let path = format!("/nix/store/{}-refused", std::process::id());
        let mut leader = session_with("sleep 30 & wait", &[("out", &path)]);
        let how = EnvMatch::Exactly(vec![format!("out={path}")]);
        let find = || {
            let output = std::process::Command::new(crate::remote::script::tests::dash())
                .args(crate::remote::script::FIND_BUILD.sh_args(how.args()))
                .output()
                .unwrap();
            Found::parse(&String::from_utf8_lossy(&output.stdout))
        };
        let mut found = find();
        for _ in 0..100 {
            if found.processes.len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            found = find();
        }
        let report = run_as(&AS_NOBODY, &found.targets());
        let after = find();
        // SAFETY: kill(2) of the group this test started.
        unsafe { libc::kill(-(leader.id() as i32), libc::SIGKILL) };
        let _ = leader.wait();
        assert_eq!(
            found.processes.len(),
            2,
            "the shell and its sleep: {found:?}"
        );
        assert_eq!(
            report.fate(leader.id()),
            Some(kill::Fate::Denied),
            "{report:?}"
        );
        let Cleanup::Unknown(why) = after_kill(&found, &report, &after) else {
            panic!("a refusal is no success: {after:?}");
        };
        assert!(why.contains("not allowed to kill"), "{why}");
    }

    /// After the kill: what was killed if nothing is left; a refusal said
    /// as one; what survived named.
    #[test]
    fn the_look_after_the_kill_says_what_became_of_it() {
        let killed = Found::parse("10 10 5 5 sleep 300\nuid 0\n");
        let nothing = Found::parse("uid 0\n");
        assert_eq!(
            after_kill(&killed, &KillReport::parse("killed 10\nleft 0\n"), &nothing),
            Cleanup::Killed {
                processes: vec!["10 sleep 300".into()]
            }
        );
        assert_eq!(
            after_kill(&killed, &KillReport::parse("gone 10\nleft 0\n"), &nothing),
            Cleanup::Clean,
            "it ended by itself"
        );
        let still = Found::parse("10 10 5 5 sleep 300\nuid 1000\n");
        let Cleanup::Unknown(why) =
            after_kill(&killed, &KillReport::parse("denied 10\nleft 0\n"), &still)
        else {
            panic!("a refusal is no success");
        };
        assert!(why.contains("not allowed to kill"), "{why}");
        assert!(
            why.contains("uid 1000") && why.contains("10 sleep 300"),
            "{why}"
        );
        let Cleanup::Unknown(why) = after_kill(
            &killed,
            &KillReport::parse("killed 10\nleft some\n"),
            &still,
        ) else {
            panic!("a survivor is no success");
        };
        assert_eq!(why, "still running after SIGKILL: 10 sleep 300");
    }
}
