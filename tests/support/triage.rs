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
//! Its parts: `processes` (reading `/proc`: a host's processes, trees,
//! sweeping a seed away), `nix` (instantiating, a local build in a process
//! group of its own), `locks` (`/proc/locks` and the `current-load` files),
//! then one file per scenario (`slots_filled`, `by_hand`, `orphan`,
//! `upload_hold`). Everything is re-exported here, so a test names it
//! `triage::...` whatever file it lives in.
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

#[path = "triage/by_hand.rs"]
mod by_hand;
#[path = "triage/locks.rs"]
mod locks;
#[path = "triage/nix.rs"]
mod nix;
#[path = "triage/orphan.rs"]
mod orphan;
#[path = "triage/processes.rs"]
mod processes;
#[path = "triage/slots_filled.rs"]
mod slots_filled;
#[path = "triage/upload_hold.rs"]
mod upload_hold;

use std::time::{Duration, Instant, SystemTime};

// Each test binary uses its own part of this: a re-export it does not use
// is no more a mistake than the dead code allowed above.
#[allow(unused_imports)]
pub use self::{
    by_hand::*, locks::*, nix::*, orphan::*, processes::*, slots_filled::*, upload_hold::*,
};

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
