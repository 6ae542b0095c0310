//! `rbtop build` against a real fleet: real sshd, real Nix 2.8 builders
//! (tests/fleet/fleet.sh), building tests/fixtures/builds/numbered.nix with
//! a fresh seed per trial so Nix really builds. Pinned builds stream their
//! lines, failures name the builder's exit code, a Ctrl-C leaves nothing of
//! the build running here or on the builder, and the builder check kills
//! what a build left behind. One fleet serves every trial, so this binary
//! has its own main (libtest-mimic). Needs root; fails, never skips.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/fleet_trials.rs"]
mod fleet_trials;
#[path = "support/sandbox.rs"]
mod sandbox;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fleet::Fleet;
use fleet_trials::{builder_namespaces, ensure, processes_matching, processes_with_env, settle_on};
use libtest_mimic::Failed;
use sandbox::Sandbox;

const NUMBERED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/builds/numbered.nix"
);
/// No trial waits longer than this for rbtop.
const LIMIT: Duration = Duration::from_secs(180);
/// What Nix and rbtop get to end a cancelled build everywhere.
const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// A derivation no earlier run has built: the process id, the time and a tag.
fn fresh_seed(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("bf{tag}{}x{nanos}", std::process::id())
}

/// `rbtop-numbered-<seed>`, as rbtop names the derivation in its output.
fn drv_name(seed: &str) -> String {
    format!("rbtop-numbered-{seed}")
}

/// One rbtop build in its own sandbox, with the fleet's ssh options and a
/// Nix that asks no binary cache.
trait BuildCommand {
    /// `rbtop --machines <machines> build --on <on> -- numbered.nix <args>`.
    fn build(&self, fleet: &Fleet, machines: &Path, on: &str, args: &[String]) -> Command;
}

impl BuildCommand for Sandbox {
    fn build(&self, fleet: &Fleet, machines: &Path, on: &str, args: &[String]) -> Command {
        let mut cmd = self.rbtop();
        cmd.env("NIX_SSHOPTS", fleet.nix_sshopts())
            .env(
                "NIX_CONFIG",
                "substituters =\nexperimental-features = nix-command",
            )
            .arg("--machines")
            .arg(machines)
            .args(["build", "--on", on, "--", NUMBERED])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

/// `--argstr seed S --arg lines N --arg delay D [--arg fail F]`.
fn numbered(seed: &str, lines: u32, delay: &str, fail: u32) -> Vec<String> {
    let mut args: Vec<String> = [
        "--argstr",
        "seed",
        seed,
        "--arg",
        "lines",
        &lines.to_string(),
        "--arg",
        "delay",
        delay,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if fail != 0 {
        args.extend(["--arg".into(), "fail".into(), fail.to_string()]);
    }
    args
}

/// A running rbtop whose stdout lines are read as they come, each with the
/// moment it arrived.
struct Run {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    stdout: Vec<(Instant, String)>,
    stderr: std::thread::JoinHandle<String>,
}

/// How a run ended.
struct Ran {
    status: ExitStatus,
    exited: Instant,
    stdout: Vec<(Instant, String)>,
    stderr: String,
}

impl Ran {
    fn text(&self) -> String {
        let mut text: String = self
            .stdout
            .iter()
            .map(|(_, line)| format!("{line}\n"))
            .collect();
        text.push_str("--- stderr\n");
        text.push_str(&self.stderr);
        text
    }

    /// When the first stdout line containing `needle` arrived.
    fn arrival(&self, needle: &str) -> Option<Instant> {
        self.stdout
            .iter()
            .find(|(_, line)| line.contains(needle))
            .map(|(at, _)| *at)
    }
}

impl Run {
    fn start(mut cmd: Command) -> Run {
        let mut child = cmd.spawn().expect("cannot start rbtop");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });
        Run {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    fn take_lines(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.stdout.push(line);
        }
    }

    /// Wait (up to LIMIT) for a stdout line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> Result<(), Failed> {
        let deadline = Instant::now() + LIMIT;
        loop {
            self.take_lines();
            if self.stdout.iter().any(|(_, l)| l.contains(needle)) {
                return Ok(());
            }
            if Instant::now() > deadline || self.child.try_wait().unwrap().is_some() {
                self.take_lines();
                let seen: Vec<&str> = self.stdout.iter().map(|(_, l)| l.as_str()).collect();
                let _ = self.child.kill();
                return Err(format!(
                    "no line with {needle:?}; stdout so far:\n{}",
                    seen.join("\n")
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Wait (up to LIMIT) for rbtop to exit and for its output to end.
    fn finish(mut self) -> Result<Ran, Failed> {
        let deadline = Instant::now() + LIMIT;
        let (status, exited) = loop {
            self.take_lines();
            if let Some(status) = self.child.try_wait().unwrap() {
                break (status, Instant::now());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err(format!("rbtop still running after {LIMIT:?}").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader ends at EOF; what it had not passed on yet comes now.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stdout.push(line);
        }
        let stderr = self.stderr.join().unwrap_or_default();
        Ok(Ran {
            status,
            exited,
            stdout: self.stdout,
            stderr,
        })
    }
}

fn ssh_to(fleet: &Fleet, host: &str, command: &str) -> std::process::Output {
    Command::new("ssh")
        .arg("-F")
        .arg(fleet.ssh_config())
        .arg(host)
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The mount namespace of one fleet host.
fn namespace_of(fleet: &Fleet, host: &str) -> Vec<String> {
    let ns = std::fs::read_to_string(fleet.dir.join(host).join("mntns"))
        .unwrap_or_else(|e| panic!("{host}'s mntns: {e}"));
    let ns = ns.trim().to_string();
    assert!(
        builder_namespaces(fleet).contains(&ns),
        "{host}: {ns} is not a builder namespace"
    );
    vec![ns]
}

// ---- the trials

/// Pinned to b1: built there (the output is in b1's store and, copied back,
/// in ours), every line printed in order, and printed while the build ran.
fn pinned_build_streams_its_lines_and_builds_on_b1(fleet: &Fleet) -> Result<(), Failed> {
    let sandbox = Sandbox::new("rbtop-bf");
    let seed = fresh_seed("pin");
    let name = drv_name(&seed);
    let run = Run::start(sandbox.build(
        fleet,
        &fleet.machines_file(),
        "b1",
        &numbered(&seed, 30, "0.1", 0),
    ));
    let ran = run.finish()?;
    let text = ran.text();
    ensure(ran.status.code() == Some(0), || {
        format!("exit {:?}:\n{text}", ran.status)
    })?;
    let numbered_lines: Vec<&str> = ran
        .stdout
        .iter()
        .filter_map(|(_, l)| l.strip_prefix(&format!("{name}> ")))
        .collect();
    let want: Vec<String> = (1..=30).map(|k| format!("line {k} of 30")).collect();
    ensure(numbered_lines == want, || {
        format!("the builder's lines, in order, named by derivation:\n{text}")
    })?;
    // The lines came while Nix ran, not all at the end: 30 lines 0.1 s apart.
    let first = ran.arrival(&format!("{name}> line 1 of 30")).unwrap();
    let last = ran.arrival(&format!("{name}> line 30 of 30")).unwrap();
    ensure(first + Duration::from_secs(1) <= last, || {
        format!(
            "line 1 arrived only {:?} before line 30",
            last.saturating_duration_since(first)
        )
    })?;
    ensure(first < ran.exited, || {
        "line 1 came after rbtop exited".into()
    })?;
    // The copy of Nix's records another rbtop could follow went with the
    // build; the log stays.
    let jobs = sandbox.path("state/rbtop/jobs");
    let left: Vec<String> = std::fs::read_dir(&jobs)
        .map_err(|e| format!("{}: {e}", jobs.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ensure(left.len() == 1 && left[0].ends_with(".log"), || {
        format!("{} holds {left:?}, not one .log", jobs.display())
    })?;
    // The closing lines: success, then the output path.
    let tail: Vec<&str> = ran
        .stdout
        .iter()
        .map(|(_, l)| l.as_str())
        .skip_while(|l| !l.starts_with("rbtop: build succeeded in "))
        .collect();
    let outputs: Vec<&str> = tail
        .iter()
        .copied()
        .filter(|l| l.starts_with("/nix/store/"))
        .collect();
    let [output] = outputs.as_slice() else {
        return Err(format!("one output path after the success line:\n{text}").into());
    };
    ensure(output.ends_with(&format!("-{name}")), || {
        format!("{output} is not {name}'s output")
    })?;
    let valid = Command::new("nix-store")
        .args(["--check-validity", output])
        .status()
        .unwrap();
    ensure(valid.success() && Path::new(output).exists(), || {
        format!("{output} is not valid in the local store")
    })?;
    let there = ssh_to(fleet, "b1", &format!("test -e '{output}'"));
    ensure(there.status.success(), || {
        format!(
            "{output} is not in b1's store, so it was not built there: {}",
            String::from_utf8_lossy(&there.stderr)
        )
    })?;
    // b2 shares nothing with b1: the check above can fail.
    let elsewhere = ssh_to(fleet, "b2", &format!("test -e '{output}'"));
    ensure(!elsewhere.status.success(), || {
        format!("{output} is in b2's store too")
    })
}

/// fail=3 on b1: Nix 2.8 exits 1 for any remote failure; rbtop says so,
/// names the builder's own exit code and repeats the last lines.
fn failing_build_names_the_builders_exit_code(fleet: &Fleet) -> Result<(), Failed> {
    let sandbox = Sandbox::new("rbtop-bf");
    let seed = fresh_seed("fail");
    let name = drv_name(&seed);
    let ran = Run::start(sandbox.build(
        fleet,
        &fleet.machines_file(),
        "b1",
        &numbered(&seed, 6, "0.05", 3),
    ))
    .finish()?;
    let text = ran.text();
    ensure(ran.status.code() == Some(1), || {
        format!("exit {:?} (Nix 2.8 gives 1):\n{text}", ran.status)
    })?;
    let lines: Vec<&str> = ran.stdout.iter().map(|(_, l)| l.as_str()).collect();
    for needle in [
        "rbtop: build failed in ",
        "failed with exit code 3",
        &format!("rbtop: {name} failed on ssh://b1, builder exit code 3; its last lines:"),
    ] {
        ensure(lines.iter().any(|l| l.contains(needle)), || {
            format!("no line with {needle:?}:\n{text}")
        })?;
    }
    // The builder's lines (all 7 of them: fewer than rbtop's 10), indented
    // under that heading.
    let repeated: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.contains("its last lines:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim())
        .collect();
    let mut want: Vec<String> = (1..=6).map(|k| format!("line {k} of 6")).collect();
    want.push("failing with 3".into());
    ensure(repeated == want, || {
        format!("last lines repeated: {repeated:?}\n{text}")
    })
}

/// Ctrl-C in the middle of a pinned build on `host`: rbtop exits 130 after
/// checking the builder, and nothing of the build is left running here or
/// on `host` (its builder has `seed=S` in its environment).
fn cancel_leaves_nothing(
    fleet: &Fleet,
    machines: &Path,
    host: &str,
    uri: &str,
) -> Result<(), Failed> {
    let sandbox = Sandbox::new("rbtop-bf");
    let seed = fresh_seed("cancel");
    let name = drv_name(&seed);
    let on_builder = namespace_of(fleet, host);
    let env_needle = format!("seed={seed}");
    let mut run = Run::start(sandbox.build(fleet, machines, host, &numbered(&seed, 200, "0.1", 0)));
    run.wait_for(&format!("{name}> line 5 of 200"))?;
    // The build is really running on the builder, and only there.
    let building = processes_with_env(&env_needle, Some(&on_builder));
    ensure(!building.is_empty(), || {
        format!("no process of the build on {host} while it printed its lines")
    })?;
    let building_here = processes_matching(&seed, None);
    ensure(!building_here.is_empty(), || {
        "no local process names the seed while it builds".into()
    })?;
    run.signal("INT");
    let ran = run.finish()?;
    let text = ran.text();
    ensure(ran.status.code() == Some(130), || {
        format!("exit {:?} after SIGINT:\n{text}", ran.status)
    })?;
    let lines: Vec<&str> = ran.stdout.iter().map(|(_, l)| l.as_str()).collect();
    ensure(
        lines
            .iter()
            .any(|l| l.starts_with("rbtop: build cancelled after ")),
        || format!("no cancel summary:\n{text}"),
    )?;
    let checked = [
        format!("rbtop: {uri}: nothing of {name} left running"),
        format!("rbtop: {uri}: "),
    ];
    // Which of the two it was depends on how fast Nix's own cleanup was.
    for line in lines.iter().filter(|l| l.starts_with(&checked[1])) {
        eprintln!("{line}");
    }
    ensure(
        lines.iter().any(|l| {
            l.starts_with(&checked[0])
                || (l.starts_with(&checked[1])
                    && l.contains(&format!("of {name} were still running; rbtop killed them")))
        }),
        || format!("the builder check is not reported:\n{text}"),
    )?;
    ensure(ran.stderr.contains("rbtop: cancelling the build"), || {
        text.clone()
    })?;
    ensure(!lines.iter().any(|l| l.contains("line 200 of 200")), || {
        format!("the build ran to its end:\n{text}")
    })?;
    let here = settle_on(CLEANUP_LIMIT, || processes_matching(&seed, None));
    ensure(here.is_empty(), || {
        format!("processes of the build left on this machine: {here:?}")
    })?;
    let there = settle_on(CLEANUP_LIMIT, || {
        processes_with_env(&env_needle, Some(&on_builder))
    });
    ensure(there.is_empty(), || {
        format!("processes of the build left on {host}: {there:?}")
    })
}

fn cancel_on_ssh_leaves_nothing_on_b1(fleet: &Fleet) -> Result<(), Failed> {
    cancel_leaves_nothing(fleet, &fleet.machines_file(), "b1", "ssh://b1")
}

fn cancel_on_ssh_ng_leaves_nothing_on_b2(fleet: &Fleet) -> Result<(), Failed> {
    let sandbox = Sandbox::new("rbtop-bf");
    let machines = sandbox.write("machines", "ssh-ng://b2 x86_64-linux - 2 1 - - -\n");
    cancel_leaves_nothing(fleet, &machines, "b2", "ssh-ng://b2")
}

/// rbtop's builder check on its own: a process on b1 that carries a real
/// derivation's output path in its environment (as Nix's builder would) is
/// found and killed; a second check finds b1 clean.
fn builder_check_kills_what_a_build_left(fleet: &Fleet) -> Result<(), Failed> {
    use rbtop::jobs::check_builders;
    use rbtop::jobs::job::{Cleanup, RemoteDerivation};
    use rbtop::machines::{MachinesText, Parser};
    use rbtop::ssh::split_nix_sshopts;
    use rbtop::ssh::{HostKeyPolicy, SshSettings};

    let sandbox = Sandbox::new("rbtop-bf");
    let seed = fresh_seed("left");
    let instantiate = Command::new("nix-instantiate")
        .args([NUMBERED, "--argstr", "seed", &seed])
        .env("NIX_CONFIG", "substituters =")
        .output()
        .unwrap();
    ensure(instantiate.status.success(), || {
        format!(
            "nix-instantiate: {}",
            String::from_utf8_lossy(&instantiate.stderr)
        )
    })?;
    let drv = String::from_utf8_lossy(&instantiate.stdout)
        .trim()
        .to_string();
    let outputs = Command::new("nix-store")
        .args(["--query", "--outputs", &drv])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&outputs.stdout).trim().to_string();
    ensure(
        out.starts_with("/nix/store/") && !out.contains('\n'),
        || format!("{drv} has one output: {out:?}"),
    )?;
    // Store paths hold no quote; the value is quoted for b1's shell all the same.
    let started = ssh_to(
        fleet,
        "b1",
        &format!("out='{out}' setsid -f sleep 300 </dev/null >/dev/null 2>&1"),
    );
    ensure(started.status.success(), || {
        format!(
            "cannot start the leftover on b1: {}",
            String::from_utf8_lossy(&started.stderr)
        )
    })?;
    let on_b1 = namespace_of(fleet, "b1");
    let needle = format!("out={out}");
    let left = processes_with_env(&needle, Some(&on_b1));
    ensure(left.len() == 1, || format!("the leftover on b1: {left:?}"))?;

    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(
        "ssh://b1",
        rbtop::diagnostics::Origin::BuildersFlag,
    ));
    let machines = parser.finish().machines;
    let extra_args = split_nix_sshopts(&fleet.nix_sshopts()).unwrap();
    let mut ssh = SshSettings::new(extra_args, HostKeyPolicy::Strict);
    ssh.control_parent = sandbox.path("run");
    let build = RemoteDerivation {
        machine: "ssh://b1".into(),
        drv: drv.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let first = runtime.block_on(check_builders(vec![build.clone()], &machines, &ssh));
    let [report] = first.as_slice() else {
        return Err(format!("one report per build: {first:?}").into());
    };
    ensure(report.build == build, || format!("{report:?}"))?;
    let Cleanup::Killed { processes } = &report.cleanup else {
        return Err(format!("the leftover should have been killed: {report:?}").into());
    };
    ensure(
        processes.len() == 1 && processes[0].contains("sleep 300"),
        || format!("killed: {processes:?}"),
    )?;
    let after = settle_on(Duration::from_secs(3), || {
        processes_with_env(&needle, Some(&on_b1))
    });
    ensure(after.is_empty(), || format!("still on b1: {after:?}"))?;
    let second = runtime.block_on(check_builders(vec![build], &machines, &ssh));
    ensure(
        second.len() == 1 && second[0].cleanup == Cleanup::Clean,
        || format!("b1 should be clean now: {second:?}"),
    )?;
    // The check's own ssh master is gone with it.
    let masters = settle_on(Duration::from_secs(3), || {
        processes_matching(&sandbox.path("run").display().to_string(), None)
    });
    ensure(masters.is_empty(), || {
        format!("ssh masters left: {masters:?}")
    })
}

fn main() {
    fleet_trials::run_on_one_fleet(&[
        (
            "pinned_build_streams_its_lines_and_builds_on_b1",
            pinned_build_streams_its_lines_and_builds_on_b1,
        ),
        (
            "failing_build_names_the_builders_exit_code",
            failing_build_names_the_builders_exit_code,
        ),
        (
            "cancel_on_ssh_leaves_nothing_on_b1",
            cancel_on_ssh_leaves_nothing_on_b1,
        ),
        (
            "cancel_on_ssh_ng_leaves_nothing_on_b2",
            cancel_on_ssh_ng_leaves_nothing_on_b2,
        ),
        (
            "builder_check_kills_what_a_build_left",
            builder_check_kills_what_a_build_left,
        ),
    ]);
}
