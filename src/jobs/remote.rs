//! After a cancel: is anything of the build still running on its builder?
//! Asked over SSH with one fixed script (arguments quoted by the `openssh`
//! crate, never spliced into the script), which finds the build's processes
//! by their environment: Nix gives every builder `out=<output path>`
//! (any Nix) and a build directory named after the derivation (2.8–2.31).

use std::time::Duration;

use super::drv;
use super::job::{Cleanup, CleanupReport, RemoteBuild};
use super::progress::drv_name;
use crate::machines::Machine;
use crate::ssh::session::PendingDir;
use crate::ssh::{ConnectError, HostSession, SshSettings, SshTarget};

/// Looks for processes whose environment holds one of the patterns given
/// after the mode (`grep -F -e P …`); prints `PID PGID ARGS` for each and,
/// in `kill` mode, SIGKILLs its process group (the builder's session, as
/// Nix's own cancel does) and the process. Ends with the remote uid, since
/// only root sees every build user's environment.
pub const FIND_SCRIPT: &str = r#"mode=$1; shift
me=$$
pids=$(grep -lzF "$@" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p')
for pid in $pids; do
  [ "$pid" = "$me" ] && continue
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
  rest=${stat##*) }
  set -- $rest
  pgid=$3
  args=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)
  echo "$pid $pgid $args"
  if [ "$mode" = kill ]; then
    [ "$pgid" -gt 1 ] && kill -KILL -- "-$pgid" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
  fi
done
echo "uid $(id -u)"
"#;

/// How long Nix gets to stop the remote build itself before rbtop does
/// (it takes about 2 s: nix-reference §5).
pub const SETTLE: Duration = Duration::from_secs(4);
const POLL: Duration = Duration::from_millis(500);
const CONNECT_LIMIT: Duration = Duration::from_secs(15);

/// The `grep -F` patterns that identify `drv`'s build processes.
pub fn patterns(drv_path: &str, outputs: &[(String, String)]) -> Vec<String> {
    let mut patterns: Vec<String> = outputs
        .iter()
        .map(|(name, path)| format!("{name}={path}"))
        .collect();
    patterns.push(format!("nix-build-{}.drv-", drv_name(drv_path)));
    patterns
}

/// What one run of [`FIND_SCRIPT`] printed.
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
    builds: Vec<RemoteBuild>,
    machines: &[Machine],
    ssh: &SshSettings,
) -> Vec<CleanupReport> {
    let checks = builds.into_iter().map(|build| async move {
        let cleanup = match find_machine(machines, &build.machine) {
            None => Cleanup::Unknown("not one of rbtop's machines".into()),
            Some(machine) => check_one(machine, &build.drv, ssh).await,
        };
        CleanupReport { build, cleanup }
    });
    futures_util::future::join_all(checks).await
}

/// The machine Nix named: its URI as written, else the same URI without its
/// query (newer Nix re-encodes and sorts query parameters).
fn find_machine<'m>(machines: &'m [Machine], uri: &str) -> Option<&'m Machine> {
    let without_query = |u: &str| u.split('?').next().unwrap_or_default().to_string();
    machines.iter().find(|m| m.uri() == uri).or_else(|| {
        machines
            .iter()
            .find(|m| without_query(m.uri()) == without_query(uri))
    })
}

async fn check_one(machine: &Machine, drv_path: &str, ssh: &SshSettings) -> Cleanup {
    let target = match SshTarget::of(machine) {
        Ok(Some(target)) => target,
        Ok(None) => return Cleanup::Unknown("not reached over SSH".into()),
        Err(e) => return Cleanup::Unknown(e),
    };
    let mut pending = match PendingDir::create(ssh) {
        Ok(dir) => Some(dir),
        Err(e) => return Cleanup::Unknown(describe(e)),
    };
    let connect = HostSession::connect(&target, ssh, &mut pending);
    let session = match tokio::time::timeout(CONNECT_LIMIT, connect).await {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => return Cleanup::Unknown(format!("cannot connect: {}", describe(e))),
        Err(_) => return Cleanup::Unknown("cannot connect: timed out".into()),
    };
    let outputs = drv::read_output_paths(std::path::Path::new(drv_path));
    let patterns = patterns(drv_path, &outputs);
    let result = settle_then_kill(&session, &patterns).await;
    session.close().await;
    result
}

fn describe(error: ConnectError) -> String {
    match error {
        ConnectError::Local(why) => why,
        // ssh's log ends with its reason.
        ConnectError::Ssh { log, .. } => log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("ssh failed")
            .trim()
            .to_string(),
    }
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
    command.args(["-c", FIND_SCRIPT, "rbtop-find", mode]);
    for pattern in patterns {
        command.arg("-e").arg(pattern);
    }
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
    fn patterns_name_outputs_and_build_dir() {
        let outputs = vec![("out".to_string(), "/nix/store/bbbb-x".to_string())];
        assert_eq!(
            patterns(
                "/nix/store/00000000000000000000000000000000-x.drv",
                &outputs
            ),
            ["out=/nix/store/bbbb-x", "nix-build-x.drv-"]
        );
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
            find_machine(&machines, "ssh://b1").unwrap().uri(),
            "ssh://b1"
        );
        assert_eq!(
            find_machine(&machines, "ssh-ng://b2?ssh-key=%2Fk&compress=true")
                .unwrap()
                .uri(),
            machines[1].uri()
        );
        assert!(find_machine(&machines, "ssh://b3").is_none());
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

    /// The script itself, run locally on a process that carries a pattern in
    /// its environment: found in `look` mode, gone after `kill` mode.
    #[test]
    fn the_script_finds_and_kills_by_environment() {
        let marker = format!("rbtop-test-marker-{}", std::process::id());
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .env("out", &marker)
            .process_group(0)
            .spawn()
            .unwrap();
        let run = |mode: &str| {
            let output = std::process::Command::new("sh")
                .args(["-c", FIND_SCRIPT, "rbtop-find", mode, "-e"])
                .arg(format!("out={marker}"))
                .output()
                .unwrap();
            parse_found(&String::from_utf8_lossy(&output.stdout))
        };
        std::thread::sleep(Duration::from_millis(200));
        let found = run("look");
        assert_eq!(found.processes.len(), 2, "sh and sleep: {found:?}");
        run("kill");
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(100));
        assert!(run("look").processes.is_empty());
    }
}
