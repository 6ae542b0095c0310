//! Triage scenarios (issue #6) on the loopback fleet, for the test binaries
//! that check what rbtop says about them: a builder whose slots this machine
//! fills, builds started on a builder itself, an orphaned build, and a build
//! hook that holds a builder's upload lock. Each constructor waits until its
//! scenario really is in place, checked directly (the builder's processes,
//! found by the store they see, `/proc/locks`, the `current-load` files),
//! and fails with a message if it is not; every scenario kills what is left
//! of it when dropped, so a failed trial leaves nothing running for the next
//! one.
//!
//! ```ignore
//! #[path = "support/fleet.rs"]
//! mod fleet;
//! #[path = "support/fleet_trials.rs"]
//! mod fleet_trials;
//! #[path = "support/triage.rs"]
//! mod triage;
//! let orphan = triage::make_orphan(&fleet, "b1")?;
//! // ... press K on orphan.name in the dashboard ...
//! triage::nothing_left(&orphan)?;
//! ```
//!
//! The fleet's hosts share this machine's pid namespace (only the mount
//! namespace is theirs), so a pid seen on a builder is the same number here,
//! and `/proc` shows it with its environment. A builder of numbered.nix has
//! the derivation's `seed` attribute in its environment (`seed=S`): that is
//! how its processes are found. In this fleet every build runs as root
//! (`build-users-group =`), with no sandbox.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use libtest_mimic::Failed;
use tempfile::TempDir;

use crate::fleet::Fleet;
use crate::fleet_trials::{ensure, settle_on};

pub const NUMBERED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/builds/numbered.nix"
);
pub const FANOUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/builds/fanout.nix"
);
/// Nix configuration for every local Nix command: no binary cache (the
/// default one is unreachable and retried for seconds).
pub const NIX_CONFIG: &str = "substituters =\nexperimental-features = nix-command";
/// The local build hook's lock directory (this machine's store).
pub const CURRENT_LOAD: &str = "/nix/var/nix/current-load";
/// How long a build may take to reach its builder, or a lock to be taken.
pub const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a killed build may take to be gone everywhere.
pub const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// A derivation no earlier run has built: the tag, the process id and the time.
pub fn fresh_seed(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tr{tag}{}x{nanos}", std::process::id())
}

/// `rbtop-numbered-<seed>`: numbered.nix's derivation name.
pub fn numbered_name(seed: &str) -> String {
    format!("rbtop-numbered-{seed}")
}

/// Where a fleet host's processes are: those that see its store. Each
/// b*/t1 host's `/nix` is a bind mount of `<fleet>/<host>/nix`, in the host's
/// mount namespace; Nix 2.8 itself (`nix-store --serve`, `nix-build`)
/// unshares a mount namespace of its own, and a process whose parent
/// died is re-parented out of the host's tree, so neither the namespace nor
/// the ancestry tells; the store seen through `/proc/PID/root` does.
#[derive(Clone, Debug)]
pub struct OnHost {
    pub host: String,
    /// (device, inode) of the host's `/nix/store`.
    store: (u64, u64),
}

impl OnHost {
    pub fn of(fleet: &Fleet, host: &str) -> OnHost {
        let path = fleet.dir.join(host).join("nix/store");
        let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        OnHost {
            host: host.to_string(),
            store: (meta.dev(), meta.ino()),
        }
    }

    /// Whether process `pid` runs on this host (sees its store).
    pub fn contains(&self, pid: u32) -> bool {
        fs::metadata(format!("/proc/{pid}/root/nix/store"))
            .is_ok_and(|m| (m.dev(), m.ino()) == self.store)
    }
}

// ---------------------------------------------------------------- processes

/// What `/proc/PID/stat` says of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: u32,
    pub pgid: u32,
    /// Clock ticks after boot: with the pid, names one process for good.
    pub start_ticks: u64,
}

pub fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold blanks and parentheses.
    let (_, rest) = text.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split(' ').collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

/// `/proc/PID/cmdline` with its NULs as blanks ("" once gone or a zombie).
pub fn cmdline(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .trim_end_matches('\0')
        .replace('\0', " ")
}

/// `/proc/PID/comm`, trimmed.
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The variables of `/proc/PID/environ`, one `NAME=value` each.
fn environ(pid: u32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// One process, named by pid and start time so that a reused pid is never
/// mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub start_ticks: u64,
}

impl Proc {
    pub fn of(pid: u32) -> Option<Proc> {
        stat(pid).map(|s| Proc {
            pid,
            start_ticks: s.start_ticks,
        })
    }

    /// This process's stat, while it exists (a zombie included).
    pub fn stat(&self) -> Option<Stat> {
        stat(self.pid).filter(|s| s.start_ticks == self.start_ticks)
    }

    /// Exists and is not a zombie: a killed child of a stopped parent stays a
    /// zombie until someone reaps it, yet it is gone for every purpose here.
    pub fn alive(&self) -> bool {
        self.stat().is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
    }

    pub fn signal(&self, signal: i32) {
        if self.stat().is_some() {
            // SAFETY: kill(2) with a pid checked (by start time) to be this process.
            unsafe { libc::kill(self.pid as i32, signal) };
        }
    }

    /// Signals this process's whole process group, if it leads one.
    pub fn signal_group(&self, signal: i32) {
        if let Some(s) = self.stat()
            && s.pgid == self.pid
        {
            // SAFETY: kill(2) of a process group this process leads.
            unsafe { libc::kill(-(self.pid as i32), signal) };
        }
    }

    pub fn describe(&self) -> String {
        let state = self.stat().map_or('-', |s| s.state);
        format!("{} [{state}] {}", self.pid, cmdline(self.pid))
    }
}

/// `pid` and every process below it, parents before children.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in all_pids() {
        if let Some(s) = stat(pid) {
            children.entry(s.ppid).or_default().push(pid);
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        if let Some(kids) = children.get(&found[i]) {
            found.extend(kids.iter().copied());
        }
        i += 1;
    }
    found.retain(|&pid| stat(pid).is_some());
    found
}

/// Kills `root` and everything below it, and the process groups they lead
/// or belong to (the build hook and its ssh have a group of their own):
/// first stops them all, so none forks or is re-parented meanwhile.
pub fn kill_tree(root: u32) {
    // SAFETY: getpgrp(2) cannot fail.
    let own_group = unsafe { libc::getpgrp() } as u32;
    let mut tree: Vec<Proc> = Vec::new();
    for _ in 0..20 {
        let found: Vec<Proc> = descendants(root)
            .into_iter()
            .filter_map(Proc::of)
            .filter(|p| !tree.contains(p))
            .collect();
        if found.is_empty() {
            break;
        }
        for p in &found {
            p.signal(libc::SIGSTOP);
        }
        tree.extend(found);
    }
    for p in &tree {
        if let Some(s) = p.stat()
            && s.pgid != own_group
            && s.pgid > 1
        {
            // SAFETY: kill(2) of a group a process of the tree belongs to,
            // never this test's own.
            unsafe { libc::kill(-(s.pgid as i32), libc::SIGKILL) };
        }
        p.signal(libc::SIGKILL);
    }
}

/// Processes on the host `on` that belong to the build(s) with `seed`: an
/// environment entry `seed=<seed>` (exactly, or `seed=<seed>-...` when
/// `prefix`), or a command line naming the seed (a `nix-build --argstr seed
/// S` on the builder itself). Zombies are skipped.
pub fn seed_processes(seed: &str, prefix: bool, on: &OnHost) -> Vec<Proc> {
    let exact = format!("seed={seed}");
    let below = format!("seed={seed}-");
    let mut found = Vec::new();
    for pid in all_pids() {
        if pid == std::process::id() || !on.contains(pid) {
            continue;
        }
        let env = environ(pid);
        let by_env = env
            .iter()
            .any(|v| *v == exact || (prefix && v.starts_with(&below)));
        if (by_env || cmdline(pid).contains(seed))
            && let Some(p) = Proc::of(pid)
            && p.alive()
        {
            found.push(p);
        }
    }
    found
}

/// The builder of derivation `seed` on a host: the process with `seed=<seed>`
/// in its environment whose parent has not (Nix starts it, with `setsid`, as
/// a child of the process running the build). None until it runs.
pub fn builder_of(seed: &str, on: &OnHost) -> Option<Proc> {
    let procs = seed_processes(seed, false, on);
    let exact = format!("seed={seed}");
    let pids: HashSet<u32> = procs
        .iter()
        .filter(|p| environ(p.pid).contains(&exact))
        .map(|p| p.pid)
        .collect();
    procs
        .into_iter()
        .find(|p| pids.contains(&p.pid) && p.stat().is_some_and(|s| !pids.contains(&s.ppid)))
}

/// Waits up to START_LIMIT for the builder of `seed` to run on the host
/// `on`; `build` is the local process that started it, whose early end is
/// reported with its log.
pub fn wait_for_builder(seed: &str, on: &OnHost, build: &mut LocalBuild) -> Result<Proc, Failed> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Some(p) = builder_of(seed, on) {
            return Ok(p);
        }
        if let Some(status) = build.exited() {
            return Err(format!(
                "{} ended ({status}) before the builder of seed {seed} ran; its output:\n{}",
                build.label,
                build.log()
            )
            .into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the builder of seed {seed} did not run within {START_LIMIT:?}; {} says:\n{}",
                build.label,
                build.log()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ends every process of the builds with `seed` (and `seed-...`) on host
/// `on`, and waits until none is left; returns what is still there. First
/// SIGINT to the Nix commands that name the seed (a `nix-build` run on the
/// builder), so that Nix ends its builder and removes its build directory,
/// then SIGKILL (with their process groups) to whatever remains.
pub fn sweep(seed: &str, on: &OnHost) -> Vec<String> {
    let commands: Vec<Proc> = seed_processes(seed, true, on)
        .into_iter()
        .filter(|p| cmdline(p.pid).contains(seed))
        .collect();
    if !commands.is_empty() {
        for p in &commands {
            p.signal(libc::SIGINT);
        }
        settle_on(Duration::from_secs(3), || {
            commands
                .iter()
                .filter(|p| p.alive())
                .map(Proc::describe)
                .collect()
        });
    }
    settle_on(CLEANUP_LIMIT, || {
        let left = seed_processes(seed, true, on);
        for p in &left {
            p.signal_group(libc::SIGKILL);
            p.signal(libc::SIGKILL);
        }
        left.iter().map(Proc::describe).collect()
    })
}

/// Processes anywhere on this machine (builders included) whose command line
/// or environment names `seed`; zombies are not counted.
pub fn anything_of(seed: &str) -> Vec<String> {
    let mut found = Vec::new();
    for pid in all_pids() {
        if pid == std::process::id() {
            continue;
        }
        let named = cmdline(pid).contains(seed) || environ(pid).iter().any(|v| v.contains(seed));
        if named && let Some(p) = Proc::of(pid).filter(Proc::alive) {
            found.push(p.describe());
        }
    }
    found
}

// ---------------------------------------------------------------- nix

/// `nix-instantiate <file> <args>`: the derivation's store path.
pub fn instantiate(file: &Path, args: &[&str]) -> Result<String, Failed> {
    let out = Command::new("nix-instantiate")
        .arg(file)
        .args(args)
        .env("NIX_CONFIG", NIX_CONFIG)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run nix-instantiate: {e}"))?;
    let drv = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ensure(
        out.status.success() && drv.starts_with("/nix/store/") && drv.ends_with(".drv"),
        || {
            format!(
                "nix-instantiate {} {args:?}: {}: {drv}\n{}",
                file.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        },
    )?;
    Ok(drv)
}

/// `nix-store --query --references <path>`.
pub fn references(path: &str) -> Result<Vec<String>, Failed> {
    let out = Command::new("nix-store")
        .args(["--query", "--references", path])
        .env("NIX_CONFIG", NIX_CONFIG)
        .output()
        .map_err(|e| format!("cannot run nix-store: {e}"))?;
    ensure(out.status.success(), || {
        format!(
            "nix-store --query --references {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The machines line that pins a build to fleet host `host`.
pub fn builders_line(host: &str, max_jobs: u32) -> String {
    format!("ssh://{host} x86_64-linux - {max_jobs} 1")
}

/// `nix-build <target> <args>` that may only build on `host`, with up to
/// `max_jobs` builds there at once.
pub fn pinned_nix_build(fleet: &Fleet, host: &str, max_jobs: u32, target: &str) -> Command {
    let mut cmd = Command::new("nix-build");
    cmd.arg(target)
        .args(["--max-jobs", "0", "--builders"])
        .arg(builders_line(host, max_jobs))
        .args(["--option", "build-users-group", "", "--no-out-link"])
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .env("NIX_CONFIG", NIX_CONFIG);
    cmd
}

/// A command started here in a process group of its own, its output in a
/// file (and Nix's temporary files in a directory of its own); dropping it
/// ends it and everything it started (`kill`).
pub struct LocalBuild {
    pub label: String,
    child: Child,
    status: Option<ExitStatus>,
    log: PathBuf,
    _dir: TempDir,
}

impl LocalBuild {
    pub fn spawn(label: &str, mut cmd: Command) -> Result<LocalBuild, Failed> {
        let dir = tempfile::Builder::new()
            .prefix("rbtop-triage.")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let log = dir.path().join("output");
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().unwrap();
        // Nix's own temporary files (`nix-build-<pid>-0`) stay in here, so a
        // nix-build killed hard leaves nothing in /tmp.
        let child = cmd
            .env("TMPDIR", dir.path())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {label}: {e}"))?;
        Ok(LocalBuild {
            label: label.to_string(),
            child,
            status: None,
            log,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// The processes it started that are still here (itself included).
    pub fn tree(&mut self) -> Vec<Proc> {
        if self.exited().is_some() {
            return Vec::new();
        }
        descendants(self.pid())
            .into_iter()
            .filter_map(Proc::of)
            .filter(Proc::alive)
            .collect()
    }

    /// Its output so far (the last 40 lines).
    pub fn log(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits up to `limit` for it to end by itself.
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus, Failed> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} still running after {limit:?}; its output:\n{}",
                    self.label,
                    self.log()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends it as Ctrl-C would (SIGINT: Nix stops its builds and removes
    /// its temporary files), then, after up to 3 s, `kill_hard`.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            // SAFETY: kill(2) of our own child, not yet reaped.
            unsafe { libc::kill(self.pid() as i32, libc::SIGINT) };
            let _ = self.wait(Duration::from_secs(3));
        }
        self.kill_hard();
    }

    /// SIGKILLs it and everything it started at once, here (hook and ssh
    /// included): what a crash of this machine would do. Reaps it.
    pub fn kill_hard(&mut self) {
        if self.exited().is_none() {
            kill_tree(self.pid());
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for LocalBuild {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- locks

/// One line of `/proc/locks` about a `flock(2)` lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flock {
    pub pid: u32,
    /// `-> FLOCK ...`: blocked, waiting for the lock.
    pub waiting: bool,
    pub write: bool,
}

/// The flocks on `path`'s inode, from `/proc/locks`: holders and waiters.
pub fn flocks(path: &Path) -> Vec<Flock> {
    let Ok(meta) = fs::metadata(path) else {
        return Vec::new();
    };
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
    let mut found = Vec::new();
    for line in locks.lines() {
        // `1: FLOCK  ADVISORY  WRITE 6202 fe:00:9469985 0 EOF`, a waiter
        // with `->` after the number.
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let waiting = words.get(1) == Some(&"->");
        if waiting {
            words.remove(1);
        }
        let [_, "FLOCK", _, mode, pid, id, ..] = words.as_slice() else {
            continue;
        };
        let parts: Vec<&str> = id.split(':').collect();
        let [maj, min, ino] = parts.as_slice() else {
            continue;
        };
        let same = u64::from_str_radix(maj, 16) == Ok(major)
            && u64::from_str_radix(min, 16) == Ok(minor)
            && ino.parse::<u64>() == Ok(meta.ino());
        if same && let Ok(pid) = pid.parse() {
            found.push(Flock {
                pid,
                waiting,
                write: *mode == "WRITE",
            });
        }
    }
    found
}

/// The pids holding (not waiting for) a flock on `path`.
pub fn flock_holders(path: &Path) -> Vec<u32> {
    flocks(path)
        .into_iter()
        .filter(|l| !l.waiting)
        .map(|l| l.pid)
        .collect()
}

/// `current-load/ssh:__<host>-<slot>`: a slot of `ssh://<host>`.
pub fn slot_file(host: &str, slot: u32) -> PathBuf {
    Path::new(CURRENT_LOAD).join(format!("ssh:__{host}-{slot}"))
}

/// `current-load/ssh:__<host>.upload-lock`.
pub fn upload_lock_file(host: &str) -> PathBuf {
    Path::new(CURRENT_LOAD).join(format!("ssh:__{host}.upload-lock"))
}

/// Whether `pid` is a local build hook (Nix 2.8 `build-remote <verbosity>`,
/// newer Nix `nix __build-remote <verbosity>`).
pub fn is_build_hook(pid: u32) -> bool {
    let words = cmdline(pid);
    let mut words = words.split(' ');
    let first = words.next().unwrap_or_default();
    first.rsplit('/').next() == Some("build-remote") || words.next() == Some("__build-remote")
}

/// The local build hooks among `build`'s processes.
pub fn hooks_of(build: &mut LocalBuild) -> Vec<Proc> {
    build
        .tree()
        .into_iter()
        .filter(|p| is_build_hook(p.pid))
        .collect()
}

// ---------------------------------------------------------------- scenarios

/// One derivation of a scenario, running on its builder.
#[derive(Clone, Debug)]
pub struct Running {
    /// The derivation's name, as Nix and rbtop show it.
    pub name: String,
    /// Its store path (the same here and on the builder).
    pub drv: String,
    /// `seed` in its builder's environment.
    pub seed: String,
    /// The builder's top process (a `/bin/sh -c ...`, its own process group).
    pub builder: Proc,
    /// When it was first seen running (it started between the scenario's
    /// `started` and this).
    pub seen: Instant,
}

/// `parts` builds of fanout.nix running on `host` at once, each in a slot
/// of this machine's hook (`ssh://<host> x86_64-linux - <parts> 1`).
pub struct SlotsFilled {
    pub host: String,
    pub seed: String,
    /// The parts, in slot-independent order (`-part0`, `-part1`, ...).
    pub parts: Vec<Running>,
    /// The local hooks, one per part, each holding one of the host's slots.
    pub hooks: Vec<Proc>,
    pub on: OnHost,
    /// Just before nix-build started.
    pub started: Instant,
    pub started_at: SystemTime,
    pub build: LocalBuild,
}

/// Starts one nix-build of fanout.nix (`parts` long numbered builds and one
/// that needs them all) pinned to `host` with `parts` slots, and waits until
/// every part's builder runs there and `parts` hooks hold its slots.
pub fn fill_slots(fleet: &Fleet, host: &str, parts: u32) -> Result<SlotsFilled, Failed> {
    let seed = fresh_seed("fill");
    let on = OnHost::of(fleet, host);
    let parts_arg = parts.to_string();
    let fanout = instantiate(
        Path::new(FANOUT),
        &[
            "--argstr", "seed", &seed, "--arg", "parts", &parts_arg, "--arg", "lines", "600",
            "--argstr", "delay", "0.1",
        ],
    )?;
    let inputs: Vec<String> = references(&fanout)?
        .into_iter()
        .filter(|r| r.ends_with(".drv"))
        .collect();
    let mut wanted = Vec::new();
    for i in 0..parts {
        let part_seed = format!("{seed}-part{i}");
        let name = numbered_name(&part_seed);
        let Some(drv) = inputs.iter().find(|d| d.ends_with(&format!("-{name}.drv"))) else {
            return Err(format!("{fanout} has no input {name}: {inputs:?}").into());
        };
        wanted.push((part_seed, name, drv.clone()));
    }
    let started = Instant::now();
    let started_at = SystemTime::now();
    let build = LocalBuild::spawn(
        "nix-build fanout.nix",
        pinned_nix_build(fleet, host, parts, &fanout),
    )?;
    // From here on, dropping it cleans up here and on the builder.
    let mut filled = SlotsFilled {
        host: host.to_string(),
        seed,
        parts: Vec::new(),
        hooks: Vec::new(),
        on,
        started,
        started_at,
        build,
    };
    for (part_seed, name, drv) in wanted {
        let builder = wait_for_builder(&part_seed, &filled.on, &mut filled.build)?;
        filled.parts.push(Running {
            name,
            drv,
            seed: part_seed,
            builder,
            seen: Instant::now(),
        });
    }
    // Each slot's lock is held by one of this build's hooks.
    let hooks = hooks_of(&mut filled.build);
    ensure(hooks.len() == parts as usize, || {
        format!("{parts} hooks should run for {parts} remote builds: {hooks:?}")
    })?;
    for slot in 0..parts {
        let file = slot_file(host, slot);
        let holders = flock_holders(&file);
        ensure(
            holders.len() == 1 && hooks.iter().any(|h| h.pid == holders[0]),
            || {
                format!(
                    "{} should be flocked by one of the build's hooks {hooks:?}; holders: {holders:?}",
                    file.display()
                )
            },
        )?;
    }
    filled.hooks = hooks;
    Ok(filled)
}

impl Drop for SlotsFilled {
    fn drop(&mut self) {
        self.build.kill();
        let _ = sweep(&self.seed, &self.on);
    }
}

impl SlotsFilled {
    /// Kills the build here and whatever of it is left on the builder, and
    /// checks that nothing of it remains anywhere.
    pub fn stop(&mut self) -> Result<(), Failed> {
        self.build.kill();
        let there = sweep(&self.seed, &self.on);
        ensure(there.is_empty(), || {
            format!("left on {} after SIGKILL: {there:?}", self.host)
        })?;
        let anywhere = settle_on(CLEANUP_LIMIT, || anything_of(&self.seed));
        ensure(anywhere.is_empty(), || {
            format!("left of the build: {anywhere:?}")
        })
    }
}

/// How a numbered.nix build is started by hand, not by this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByHand {
    /// `ssh <host> nix-build ...`: an operator logged in to the builder,
    /// the session open. rbtop: `builder-local`.
    SshSession,
    /// `nsenter -m -t <host's sshd> nix-build ...`: at the builder's
    /// console (b* hosts only: t1 is a chroot). rbtop: `builder-local`.
    Console,
    /// A `nix-build` on another fleet host (at its console) pinned to this
    /// one: its own hook (in that host's store) connects, and this host's
    /// `nix-store --serve --write` builds. rbtop: `ssh` (another client).
    SentFrom(String),
}

/// A numbered.nix build (600 lines, 0.1 s apart) running on `host`, started
/// by hand: this machine's build hook has nothing to do with it.
pub struct HandBuild {
    pub host: String,
    pub how: ByHand,
    pub build: Running,
    pub on: OnHost,
    pub started: Instant,
    pub started_at: SystemTime,
    /// The local `ssh`, or the `nsenter`ed nix-build.
    pub local: LocalBuild,
}

/// numbered.nix copied where a b*/t1 host sees it: its root's home.
fn numbered_on(fleet: &Fleet, host: &str) -> Result<&'static str, Failed> {
    let there = fleet.dir.join(host).join("home").join("rbtop-numbered.nix");
    fs::copy(NUMBERED, &there).map_err(|e| format!("{}: {e}", there.display()))?;
    Ok("/root/rbtop-numbered.nix")
}

/// `nsenter` into fleet host `host`'s mount namespace (its sshd's), with
/// the environment of an operator at its console.
fn at_console_of(fleet: &Fleet, host: &str) -> Result<Command, Failed> {
    let sshd = fs::read_to_string(fleet.dir.join(host).join("sshd.pid"))
        .map_err(|e| format!("{host}'s sshd.pid: {e}"))?;
    let mut cmd = Command::new("nsenter");
    // The host's own nix.conf and root's home are mounted there.
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/root")
        .args(["-m", "-t", sshd.trim(), "--"]);
    Ok(cmd)
}

/// Starts a numbered.nix build by hand, to run on `host`, and waits until
/// its builder runs there.
pub fn build_by_hand(fleet: &Fleet, host: &str, how: ByHand) -> Result<HandBuild, Failed> {
    let seed = fresh_seed(match how {
        ByHand::SshSession => "ssh",
        ByHand::Console => "con",
        ByHand::SentFrom(_) => "from",
    });
    let on = OnHost::of(fleet, host);
    let args = ["--argstr", "seed", &seed, "--arg", "lines", "600"];
    let drv = instantiate(Path::new(NUMBERED), &args)?;
    let where_from = match &how {
        ByHand::SentFrom(other) => other.as_str(),
        _ => host,
    };
    let file = numbered_on(fleet, where_from)?;
    let mut words: Vec<String> = ["nix-build", file]
        .iter()
        .chain(args.iter())
        .chain(["--no-out-link"].iter())
        .map(|w| w.to_string())
        .collect();
    let cmd = match &how {
        ByHand::SshSession => {
            let mut cmd = Command::new("ssh");
            cmd.arg("-F")
                .arg(fleet.ssh_config())
                .arg(host)
                .arg(words.join(" "));
            cmd
        }
        ByHand::Console => {
            let mut cmd = at_console_of(fleet, host)?;
            cmd.args(&words);
            cmd
        }
        ByHand::SentFrom(other) => {
            words.extend(["--max-jobs".into(), "0".into(), "--builders".into()]);
            words.push(builders_line(host, 2));
            let mut cmd = at_console_of(fleet, other)?;
            cmd.env("NIX_SSHOPTS", fleet.nix_sshopts()).args(&words);
            cmd
        }
    };
    let started = Instant::now();
    let started_at = SystemTime::now();
    let mut local = LocalBuild::spawn(&format!("{} ({how:?} on {host})", words.join(" ")), cmd)?;
    let builder = match wait_for_builder(&seed, &on, &mut local) {
        Ok(builder) => builder,
        Err(e) => {
            sweep(&seed, &on);
            return Err(e);
        }
    };
    let scenario = HandBuild {
        host: host.to_string(),
        how,
        build: Running {
            name: numbered_name(&seed),
            drv,
            seed,
            builder,
            seen: Instant::now(),
        },
        on,
        started,
        started_at,
        local,
    };
    // Its parent: the nix-build on the builder, or the serving Nix process.
    let parent = builder.stat().map(|s| s.ppid).unwrap_or_default();
    let parent_ok = match scenario.how {
        ByHand::SentFrom(_) => cmdline(parent) == "nix-store --serve --write",
        _ => cmdline(parent).starts_with("nix-build "),
    };
    ensure(parent_ok && scenario.on.contains(parent), || {
        format!(
            "the builder {} ({:?}) has the wrong parent: {}",
            builder.describe(),
            scenario.how,
            Proc::of(parent).map_or("?".into(), |p| p.describe())
        )
    })?;
    Ok(scenario)
}

impl HandBuild {
    /// Ends the build where it was started from, so that Nix cleans up after
    /// it (a nix-build on the builder first; a client elsewhere first), then
    /// kills what is left; returns what is still on the host.
    fn end(&mut self) -> Vec<String> {
        if let ByHand::SentFrom(_) = self.how {
            self.local.kill();
            sweep(&self.build.seed, &self.on)
        } else {
            let there = sweep(&self.build.seed, &self.on);
            self.local.kill();
            there
        }
    }

    /// Ends the build (see `end`) and checks that nothing of it remains.
    pub fn stop(&mut self) -> Result<(), Failed> {
        let there = self.end();
        ensure(there.is_empty(), || {
            format!("left on {} after SIGKILL: {there:?}", self.host)
        })?;
        let anywhere = settle_on(CLEANUP_LIMIT, || anything_of(&self.build.seed));
        ensure(anywhere.is_empty(), || {
            format!("left of the build: {anywhere:?}")
        })
    }
}

impl Drop for HandBuild {
    fn drop(&mut self) {
        self.end();
    }
}

/// A build left running on a builder with nobody to collect it: its serving
/// `nix-store --serve --write` is stopped (SIGSTOP, so it cannot react to
/// the hang-up) and its sshd session is gone, because everything of the
/// build on this machine (nix-build, hook, ssh) was SIGKILLed. The builder
/// is numbered.nix with 2 lines 300 s apart: a `/bin/sh` leading its own
/// process group, with a `/bin/sleep 300` child in it, so that killing only
/// the builder's pid leaves the sleep behind (`nothing_left` sees it).
///
/// Dropping it SIGKILLs what remains (the builder's group, anything with its
/// seed on the host, and the stopped serving process).
#[derive(Debug)]
pub struct Orphan {
    pub host: String,
    pub seed: String,
    /// `rbtop-numbered-<seed>`, as rbtop names the build.
    pub name: String,
    pub drv: String,
    /// The builder's top process (its process group's leader).
    pub builder: Proc,
    /// `nix-store --serve --write`, stopped; re-parented to init.
    pub serving: Proc,
    pub on: OnHost,
    /// Just before the build started, and when its builder was first seen.
    pub started: Instant,
    pub seen: Instant,
}

/// Makes an orphaned build on `host` (an `ssh://` b* host): starts a pinned
/// numbered.nix build, waits for its builder, stops the serving process,
/// kills the local side, and waits until the host's sshd session for it has
/// ended while the builder runs on.
pub fn make_orphan(fleet: &Fleet, host: &str) -> Result<Orphan, Failed> {
    let seed = fresh_seed("orphan");
    let on = OnHost::of(fleet, host);
    let drv = instantiate(
        Path::new(NUMBERED),
        &[
            "--argstr", "seed", &seed, "--arg", "lines", "2", "--argstr", "delay", "300",
        ],
    )?;
    let started = Instant::now();
    let mut build = LocalBuild::spawn(
        &format!("nix-build of {seed} on {host}"),
        pinned_nix_build(fleet, host, 1, &drv),
    )?;
    let builder = match wait_for_builder(&seed, &on, &mut build) {
        Ok(b) => b,
        Err(e) => {
            build.kill();
            sweep(&seed, &on);
            return Err(e);
        }
    };
    let seen = Instant::now();
    let serving = builder
        .stat()
        .and_then(|s| Proc::of(s.ppid))
        .ok_or_else(|| format!("the builder {} has no parent", builder.describe()))?;
    // From here on, dropping the orphan cleans up.
    let orphan = Orphan {
        host: host.to_string(),
        seed: seed.clone(),
        name: numbered_name(&seed),
        drv,
        builder,
        serving,
        on,
        started,
        seen,
    };
    ensure(cmdline(serving.pid) == "nix-store --serve --write", || {
        format!(
            "the builder's parent should be nix-store --serve --write: {}",
            serving.describe()
        )
    })?;
    let session = serving.stat().map(|s| s.ppid).unwrap_or_default();
    ensure(is_sshd(session), || {
        format!(
            "the serving process's parent should be its sshd session: {}",
            Proc::of(session).map_or("?".into(), |p| p.describe())
        )
    })?;
    serving.signal(libc::SIGSTOP);
    let stopped = settle_on(Duration::from_secs(5), || {
        match serving.stat().map(|s| s.state) {
            Some('T') => vec![],
            other => vec![format!("state {other:?}")],
        }
    });
    ensure(stopped.is_empty(), || {
        format!("{} did not stop: {stopped:?}", serving.describe())
    })?;
    // Nix's hook, its ssh and nix-build: all gone at once, so nothing here
    // says goodbye to the builder.
    let local: Vec<String> = build.tree().iter().map(Proc::describe).collect();
    ensure(
        local.iter().any(|p| p.contains(&format!("] ssh {host} "))),
        || format!("the hook's ssh to {host} is not among the build's processes: {local:?}"),
    )?;
    build.kill_hard();
    let here = settle_on(CLEANUP_LIMIT, || {
        anything_of(&orphan.seed)
            .into_iter()
            .filter(|p| {
                !p.split_once(' ')
                    .and_then(|(pid, _)| pid.parse::<u32>().ok())
                    .is_some_and(|pid| orphan.on.contains(pid))
            })
            .collect()
    });
    ensure(here.is_empty(), || {
        format!("left of the build on this machine after SIGKILL: {here:?}")
    })?;
    // The connection is cut: b1's sshd session for it ends, and the stopped
    // serving process is re-parented.
    let attached = settle_on(CLEANUP_LIMIT, || {
        let parent = serving.stat().map(|s| s.ppid).unwrap_or_default();
        if is_sshd(parent) {
            vec![Proc::of(parent).map_or("?".into(), |p| p.describe())]
        } else {
            vec![]
        }
    });
    ensure(attached.is_empty(), || {
        format!(
            "{}'s sshd session did not end after its client was killed: {attached:?}",
            serving.describe()
        )
    })?;
    ensure(serving.stat().is_some_and(|s| s.state == 'T'), || {
        format!(
            "the serving process should still be stopped: {}",
            serving.describe()
        )
    })?;
    ensure(builder.alive(), || {
        format!(
            "the builder should run on under the stopped serving process: {}",
            builder.describe()
        )
    })?;
    Ok(orphan)
}

/// Removes `/tmp/nix-build-<name>.drv-<n>`: a builder's directory that
/// Nix, killed, could not remove (every fleet host's `TMPDIR` is /tmp).
pub fn remove_build_dirs(name: &str) {
    let prefix = format!("nix-build-{name}.drv-");
    for entry in fs::read_dir("/tmp").into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn is_sshd(pid: u32) -> bool {
    pid > 1 && matches!(comm(pid).as_str(), "sshd" | "sshd-session")
}

impl Orphan {
    /// What is left of the build itself on its host: the builder (unless a
    /// zombie: its stopped parent cannot reap it) and every process with
    /// its seed there (the builder's `sleep 300`). The stopped serving
    /// process is not part of the build and is not listed.
    pub fn remaining(&self) -> Vec<String> {
        let mut left: Vec<Proc> = seed_processes(&self.seed, true, &self.on);
        if self.builder.alive() && !left.contains(&self.builder) {
            left.push(self.builder);
        }
        left.iter().map(Proc::describe).collect()
    }

    /// SIGKILLs whatever remains: the builder's process group, anything of
    /// its seed on the host, and the stopped serving process.
    pub fn kill_remains(&self) {
        self.builder.signal_group(libc::SIGKILL);
        self.builder.signal(libc::SIGKILL);
        let _ = sweep(&self.seed, &self.on);
        self.serving.signal(libc::SIGKILL);
        self.serving.signal(libc::SIGCONT);
        // Its serving process never got to remove the build directory (the
        // fleet's hosts share this machine's /tmp).
        let _ = settle_on(CLEANUP_LIMIT, || {
            if self.serving.alive() {
                vec![self.serving.describe()]
            } else {
                vec![]
            }
        });
        remove_build_dirs(&self.name);
    }
}

impl Drop for Orphan {
    fn drop(&mut self) {
        self.kill_remains();
    }
}

/// Passes once nothing of the orphan's build is left on its host (waiting
/// up to CLEANUP_LIMIT): its builder and the builder's `sleep 300` child
/// are gone (zombies count as gone). For the dashboard's `K`, which kills
/// the build's whole process group; the stopped serving process is the
/// scenario's, not the build's, and is left to the orphan's drop.
pub fn nothing_left(orphan: &Orphan) -> Result<(), Failed> {
    let left = settle_on(CLEANUP_LIMIT, || orphan.remaining());
    ensure(left.is_empty(), || {
        format!(
            "the orphaned build {} is still on {} after {CLEANUP_LIMIT:?}: {left:?}",
            orphan.name, orphan.host
        )
    })
}

/// A build hook holding `ssh://<host>`'s upload lock, for as long as the test
/// wants: the build's one input (a small file, fresh per seed) is being
/// copied to the host, whose `nix-store --serve --write` waits for that
/// path's lock (`/nix/store/<input>.lock` in the host's store), which this
/// test holds, as another client uploading the same path would. Nix reads
/// the path's contents only once it has the lock, so the hook stays inside
/// the copy, upload lock held, until `release`. No timing is involved.
pub struct UploadHold {
    pub host: String,
    pub seed: String,
    /// `rbtop-upload-<seed>`.
    pub name: String,
    pub drv: String,
    /// The input being uploaded (`rbtop-upload-input-<seed>`).
    pub input: String,
    /// The local hook holding the upload lock (and one slot).
    pub hook: Proc,
    /// The host's `nix-store --serve --write`, blocked on the path lock.
    pub receiver: Proc,
    pub on: OnHost,
    pub started: Instant,
    pub started_at: SystemTime,
    pub build: LocalBuild,
    path_lock: Option<File>,
    path_lock_file: PathBuf,
    _dir: TempDir,
}

const UPLOAD_NIX: &str = r#"{ seed }:
builtins.derivation {
  name = "rbtop-upload-${seed}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  input = builtins.path { path = ./input; name = "rbtop-upload-input-${seed}"; };
  args = [ "-c" "/bin/cat $input > $out" ];
}
"#;

/// Starts a build pinned to `host` whose input must be copied there, with
/// that path's lock on the host held by this test, and waits until the
/// local hook holds the upload lock and the host's receiver waits.
pub fn hold_upload_lock(fleet: &Fleet, host: &str) -> Result<UploadHold, Failed> {
    let seed = fresh_seed("upload");
    let on = OnHost::of(fleet, host);
    let dir = tempfile::Builder::new()
        .prefix("rbtop-upload.")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    fs::write(dir.path().join("input"), format!("uploaded for {seed}\n")).unwrap();
    fs::write(dir.path().join("upload.nix"), UPLOAD_NIX).unwrap();
    let drv = instantiate(&dir.path().join("upload.nix"), &["--argstr", "seed", &seed])?;
    let input_name = format!("-rbtop-upload-input-{seed}");
    let input = references(&drv)?
        .into_iter()
        .find(|r| r.ends_with(&input_name))
        .ok_or_else(|| format!("{drv} has no input ending {input_name}"))?;
    let base = input.trim_start_matches("/nix/store/");
    // The host's /nix/store/<input>.lock, seen from here.
    let path_lock_file = fleet
        .dir
        .join(host)
        .join("nix/store")
        .join(format!("{base}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path_lock_file)
        .map_err(|e| format!("{}: {e}", path_lock_file.display()))?;
    // flock(LOCK_EX), as Nix's PathLocks; the descriptor is close-on-exec,
    // so no child inherits the lock.
    lock.lock()
        .map_err(|e| format!("flock {}: {e}", path_lock_file.display()))?;
    let started = Instant::now();
    let started_at = SystemTime::now();
    let build = LocalBuild::spawn(
        &format!("nix-build of {seed} on {host}"),
        pinned_nix_build(fleet, host, 1, &drv),
    )?;
    let mut hold = UploadHold {
        host: host.to_string(),
        name: format!("rbtop-upload-{seed}"),
        seed,
        drv,
        input,
        hook: Proc {
            pid: 0,
            start_ticks: 0,
        },
        receiver: Proc {
            pid: 0,
            start_ticks: 0,
        },
        on,
        started,
        started_at,
        build,
        path_lock: Some(lock),
        path_lock_file,
        _dir: dir,
    };
    let upload_lock = upload_lock_file(host);
    let deadline = Instant::now() + START_LIMIT;
    let (hook, receiver) = loop {
        let hooks = hooks_of(&mut hold.build);
        let holder = flock_holders(&upload_lock)
            .into_iter()
            .find_map(|pid| hooks.iter().copied().find(|h| h.pid == pid));
        let waiter = flocks(&hold.path_lock_file)
            .into_iter()
            .filter(|l| l.waiting)
            .find(|l| hold.on.contains(l.pid))
            .and_then(|l| Proc::of(l.pid));
        if let (Some(hook), Some(receiver)) = (holder, waiter) {
            break (hook, receiver);
        }
        if let Some(status) = hold.build.exited() {
            return Err(format!(
                "the build ended ({status}) before its hook held {}; its output:\n{}",
                upload_lock.display(),
                hold.build.log()
            )
            .into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "within {START_LIMIT:?}, no hook of the build held {} ({:?}) with {}'s receiver \
                 waiting for {} ({:?}); the build says:\n{}",
                upload_lock.display(),
                flocks(&upload_lock),
                host,
                hold.path_lock_file.display(),
                flocks(&hold.path_lock_file),
                hold.build.log()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    hold.hook = hook;
    hold.receiver = receiver;
    ensure(cmdline(receiver.pid) == "nix-store --serve --write", || {
        format!("the waiter on the input's lock: {}", receiver.describe())
    })?;
    // Held, and it stays held: the copy cannot go on.
    std::thread::sleep(Duration::from_millis(500));
    ensure(flock_holders(&upload_lock) == vec![hook.pid], || {
        format!(
            "{} should still be held by the hook {} alone: {:?}",
            upload_lock.display(),
            hook.describe(),
            flocks(&upload_lock)
        )
    })?;
    Ok(hold)
}

impl UploadHold {
    /// Lets the copy go on: the build then finishes (exit 0, within
    /// START_LIMIT) and the upload lock is free.
    pub fn release(&mut self) -> Result<(), Failed> {
        self.path_lock = None;
        let status = self.build.wait(START_LIMIT)?;
        ensure(status.success(), || {
            format!(
                "the build should succeed once the copy goes on: {status}\n{}",
                self.build.log()
            )
        })?;
        let upload_lock = upload_lock_file(&self.host);
        let held = flocks(&upload_lock);
        ensure(held.is_empty(), || {
            format!("{} still locked: {held:?}", upload_lock.display())
        })
    }
}

impl Drop for UploadHold {
    fn drop(&mut self) {
        self.path_lock = None;
        self.build.kill();
        let _ = sweep(&self.seed, &self.on);
        let _ = fs::remove_file(&self.path_lock_file);
    }
}
