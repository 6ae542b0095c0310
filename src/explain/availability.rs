//! Whether an eligible machine can take a build now: a free slot in this
//! host's build hook, and a store that answers. Nix looks only at the slots
//! (it skips a full machine); it does not know a host is down until it
//! tries to connect and fails (`cannot build on '<uri>'`), so the two are
//! kept apart.

use serde::Serialize;

use crate::probe::{HostReport, Status};
use crate::slots::LocalLoad;

/// Whether the machine's store answered rbtop's probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Reachability {
    Up,
    Down {
        status: Status,
        reason: Option<String>,
    },
    /// Not probed (yet), with why.
    Unknown {
        why: String,
    },
}

impl Reachability {
    pub fn of(report: &HostReport) -> Reachability {
        if report.is_up() {
            Reachability::Up
        } else {
            Reachability::Down {
                status: report.status,
                reason: report.reason.clone(),
            }
        }
    }

    pub fn unknown(why: &str) -> Reachability {
        Reachability::Unknown {
            why: why.to_string(),
        }
    }

    /// The status word: `up`, a probe failure (`refused`, `timeout`, …) or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Reachability::Up => "up",
            Reachability::Down { status, .. } => status.name(),
            Reachability::Unknown { .. } => "unknown",
        }
    }

    pub fn is_down(&self) -> bool {
        matches!(self, Reachability::Down { .. })
    }
}

/// What rbtop knows of one machine now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub reachability: Reachability,
    /// Busy slots of this host's build hook; `None` when they could not be read.
    pub busy: Option<u32>,
}

/// Busy slots per machine from a slots reading, and why they are unknown
/// if they are.
pub fn busy_slots(load: &LocalLoad, machines: usize) -> (Vec<Option<u32>>, Option<String>) {
    match load {
        LocalLoad::Readable { machines: loads } => {
            let mut busy: Vec<Option<u32>> = loads.iter().map(|l| Some(l.busy)).collect();
            busy.resize(machines, None);
            (busy, None)
        }
        LocalLoad::Unreadable { reason, .. } => (vec![None; machines], Some(reason.clone())),
    }
}

/// Where an eligible machine stands, in the order Nix looks at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// It fails a rule: Nix never considers it.
    NotEligible,
    /// max-jobs is 0: it has no slot at all, Nix skips it.
    NoSlots,
    /// Every slot is busy: Nix skips it.
    Full,
    /// A free slot, but the host is down: Nix would try it, fail with
    /// `cannot build on`, and choose again without it.
    Down,
    /// A free slot, and not known to be down: Nix may choose it.
    Free,
}

impl Availability {
    /// `busy` unknown counts as free: the build hook reads the same slots,
    /// so nothing better can be said.
    pub fn of(
        eligible: bool,
        max_jobs: u32,
        busy: Option<u32>,
        reachability: &Reachability,
    ) -> Availability {
        if !eligible {
            Availability::NotEligible
        } else if max_jobs == 0 {
            Availability::NoSlots
        } else if busy.is_some_and(|busy| busy >= max_jobs) {
            Availability::Full
        } else if reachability.is_down() {
            Availability::Down
        } else {
            Availability::Free
        }
    }

    /// Whether Nix would consider it in its pick (down hosts included: it
    /// cannot know).
    pub fn has_free_slot(self) -> bool {
        matches!(self, Availability::Down | Availability::Free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::testing::slots;
    use crate::probe::Via;

    fn down() -> Reachability {
        Reachability::of(&HostReport::failed(Status::Refused, Via::Ssh, "refused"))
    }

    #[test]
    fn rules_come_before_slots_and_slots_before_reachability() {
        let up = Reachability::Up;
        assert_eq!(
            Availability::of(false, 4, Some(0), &up),
            Availability::NotEligible
        );
        assert_eq!(
            Availability::of(true, 0, Some(0), &up),
            Availability::NoSlots
        );
        assert_eq!(Availability::of(true, 2, Some(2), &up), Availability::Full);
        assert_eq!(Availability::of(true, 2, Some(3), &up), Availability::Full);
        // A full machine is skipped before Nix would ever connect to it.
        assert_eq!(
            Availability::of(true, 2, Some(2), &down()),
            Availability::Full
        );
        assert_eq!(
            Availability::of(true, 2, Some(1), &down()),
            Availability::Down
        );
        assert_eq!(Availability::of(true, 2, Some(1), &up), Availability::Free);
        assert_eq!(
            Availability::of(true, 2, None, &Reachability::unknown("not probed")),
            Availability::Free
        );
        assert!(Availability::Down.has_free_slot());
        assert!(!Availability::Full.has_free_slot());
    }

    #[test]
    fn reachability_names_the_probe_status() {
        assert_eq!(down().name(), "refused");
        assert_eq!(Reachability::Up.name(), "up");
        assert_eq!(Reachability::unknown("x").name(), "unknown");
    }

    #[test]
    fn busy_slots_per_machine_or_why_not() {
        let readable = LocalLoad::Readable {
            machines: vec![slots(1, 4), slots(3, 4)],
        };
        assert_eq!(busy_slots(&readable, 2), (vec![Some(1), Some(3)], None));
        let unreadable = LocalLoad::Unreadable {
            dir: "/nix/var/nix/current-load".into(),
            reason: "permission denied".into(),
        };
        assert_eq!(
            busy_slots(&unreadable, 2),
            (vec![None, None], Some("permission denied".to_string()))
        );
    }
}
