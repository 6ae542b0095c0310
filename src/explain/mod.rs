//! The eligibility explainer: for one build (a system and required
//! features, or a `.drv`), every machine's verdict with each rule it fails,
//! which eligible machines are up with a free slot, and the order Nix's
//! build hook would pick them in. Terminal-free: `rbtop explain` and the
//! dashboard's pane both render an [`Explanation`].
//!
//! Hand-written because they are Nix's own: the rules ([`rules`]), the
//! ranking (`ranking`) and the hook's answer (`outcome`); the `.drv`
//! reader is [`crate::derivation`].

mod availability;
pub mod instantiate;
mod outcome;
mod ranking;
mod requirement;
pub mod rules;
pub mod text;

pub use availability::{Availability, Observed, Reachability, busy_slots};
pub use outcome::{HookAnswer, LocalBuild, Outcome};
pub use ranking::{Division, Score};
pub use requirement::{ImpliedFeature, Query, Requirement, Subject};
pub use rules::Rejection;

use crate::machines::Machine;
use crate::nix_version::NixVersion;
use crate::nixconf::LocalCapacity;

/// One machine, judged.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineVerdict {
    pub uri: String,
    pub host: String,
    /// Every rule it fails; empty when eligible.
    pub rejections: Vec<Rejection>,
    pub reachability: Reachability,
    /// Busy slots here; `None` when unreadable.
    pub busy: Option<u32>,
    pub max_jobs: u32,
    pub speed_factor: f64,
    pub availability: Availability,
    /// `load / speed factor` as Nix computes it, for machines it would consider.
    pub score: Option<Score>,
    /// 1 for Nix's pick, 2 for the next, …, among those not known to be down.
    pub rank: Option<usize>,
}

impl MachineVerdict {
    pub fn is_eligible(&self) -> bool {
        self.rejections.is_empty()
    }
}

/// Everything the explainer says about one build.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    pub requirement: Requirement,
    pub subject: Subject,
    /// The local Nix, which decides the ranking's arithmetic.
    pub nix_version: Option<NixVersion>,
    pub division: Division,
    /// Why the busy slots are unknown (then counted as free), if they are.
    pub slots_problem: Option<String>,
    pub machines: Vec<MachineVerdict>,
    pub local: LocalBuild,
    pub outcome: Outcome,
}

impl Explanation {
    /// Whether some eligible machine has a free slot and is not known to be
    /// down (up, or not probed).
    pub fn has_ready_machine(&self) -> bool {
        self.machines
            .iter()
            .any(|m| m.availability == Availability::Free)
    }

    pub fn eligible(&self) -> impl Iterator<Item = &MachineVerdict> {
        self.machines.iter().filter(|m| m.is_eligible())
    }
}

/// What the explainer is given.
pub struct Inputs<'a> {
    pub requirement: Requirement,
    pub subject: Subject,
    pub machines: &'a [Machine],
    /// One per machine, in the same order.
    pub observed: Vec<Observed>,
    pub slots_problem: Option<String>,
    pub local: &'a LocalCapacity,
    pub nix_version: Option<NixVersion>,
}

pub fn explain(inputs: Inputs) -> Explanation {
    let Inputs {
        requirement,
        subject,
        machines,
        observed,
        slots_problem,
        local,
        nix_version,
    } = inputs;
    let division = Division::of(nix_version);
    let mut verdicts: Vec<MachineVerdict> = machines
        .iter()
        .zip(observed)
        .map(|(machine, seen)| {
            let rejections = rules::rejections(machine, &requirement);
            let availability = Availability::of(
                rejections.is_empty(),
                machine.max_jobs,
                seen.busy,
                &seen.reachability,
            );
            MachineVerdict {
                uri: machine.uri().to_string(),
                host: machine.host_name().to_string(),
                rejections,
                reachability: seen.reachability,
                busy: seen.busy,
                max_jobs: machine.max_jobs,
                speed_factor: machine.speed_factor,
                availability,
                score: availability
                    .has_free_slot()
                    .then(|| division.score(seen.busy.unwrap_or(0), machine.speed_factor)),
                rank: None,
            }
        })
        .collect();
    let candidates: Vec<ranking::Candidate> = verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| v.availability.has_free_slot())
        .map(|(index, v)| ranking::Candidate {
            index,
            load: v.busy.unwrap_or(0),
            speed_factor: v.speed_factor,
        })
        .collect();
    let order = ranking::nix_order(division, &candidates);
    let ranked: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| verdicts[i].availability == Availability::Free)
        .collect();
    for (rank, i) in ranked.into_iter().enumerate() {
        verdicts[i].rank = Some(rank + 1);
    }
    let local = LocalBuild::assess(&requirement, local);
    let prefer_local_build = matches!(
        subject,
        Subject::Derivation {
            prefer_local_build: true,
            ..
        }
    );
    let availability: Vec<Availability> = verdicts.iter().map(|v| v.availability).collect();
    let outcome = outcome::decide(&availability, &order, &local, prefer_local_build);
    Explanation {
        requirement,
        subject,
        nix_version,
        division,
        slots_problem,
        machines: verdicts,
        local,
        outcome,
    }
}

/// Fixtures for tests of the explainer and of what shows it (the front
/// end's tests reach them through the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;
