//! Builds started on a builder by hand (over SSH, at its console, or sent
//! from another builder): this machine's hook has nothing to do with them.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime};

use libtest_mimic::Failed;

use super::{
    CLEANUP_LIMIT, LocalBuild, NUMBERED, OnHost, Proc, Running, anything_of, builders_line,
    cmdline, fresh_seed, instantiate, numbered_name, sweep, wait_for_builder,
};
use crate::fleet::Fleet;
use crate::fleet_trials::{ensure, settle_on};

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
