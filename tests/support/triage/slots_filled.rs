//! A builder whose slots this machine's build hooks fill.

use std::path::Path;
use std::time::{Instant, SystemTime};

use libtest_mimic::Failed;

use super::{
    CLEANUP_LIMIT, FANOUT, LocalBuild, OnHost, Proc, Running, anything_of, flock_holders,
    fresh_seed, hooks_of, instantiate, numbered_name, pinned_nix_build, references, slot_file,
    sweep, wait_for_builder,
};
use crate::fleet::Fleet;
use crate::fleet_trials::{ensure, settle_on};

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
