//! A build left running on a builder with nobody to collect it.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use super::{
    CLEANUP_LIMIT, LocalBuild, NUMBERED, OnHost, Proc, anything_of, cmdline, comm, fresh_seed,
    instantiate, numbered_name, pinned_nix_build, seed_processes, sweep, wait_for_builder,
};
use crate::fleet::Fleet;
use crate::fleet_trials::{ensure, settle_on};

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
