//! This machine's `/proc`, which shows the fleet's hosts' processes too:
//! who is on which host, process trees, and ending a build's processes.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use super::{CLEANUP_LIMIT, LocalBuild, START_LIMIT};
use crate::fleet::Fleet;
use crate::fleet_trials::settle_on;

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
