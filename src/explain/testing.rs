//! Fixtures for the explainer's tests: machines from a builders string,
//! a local machine, and observations written compactly.

use super::{Explanation, Inputs, Observed, Reachability, Requirement, Subject, explain};
use crate::diagnostics::Origin;
use crate::machines::{Machine, MachinesText, Parser};
use crate::nix_version::NixVersion;
use crate::nixconf::LocalCapacity;
use crate::nixconf::Valued;
use crate::probe::{HostReport, Status, Via};
use crate::slots::MachineLoad;

pub fn machines(text: &str) -> Vec<Machine> {
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
    parser.finish().machines
}

/// An x86_64-linux machine with Nix's default features and one build slot.
pub fn local() -> LocalCapacity {
    let valued = |value| Valued {
        value,
        set_at: None,
    };
    LocalCapacity {
        system: valued("x86_64-linux".to_string()),
        extra_platforms: Valued {
            value: vec!["i686-linux".to_string()],
            set_at: None,
        },
        system_features: Valued {
            value: vec!["benchmark".into(), "big-parallel".into()],
            set_at: None,
        },
        max_jobs: valued("1".to_string()),
        cpus: 2,
    }
}

pub fn up(busy: u32) -> Observed {
    Observed {
        reachability: Reachability::Up,
        busy: Some(busy),
    }
}

pub fn refused(busy: u32) -> Observed {
    Observed {
        reachability: Reachability::of(&HostReport::failed(
            Status::Refused,
            Via::Ssh,
            "ssh: connect to host port 22: Connection refused",
        )),
        busy: Some(busy),
    }
}

/// A slots reading of one machine: `busy` of `max` held, no details.
pub fn slots(busy: u32, max: u32) -> MachineLoad {
    MachineLoad {
        busy,
        max,
        holders: Vec::new(),
        upload_lock: None,
    }
}

pub const NIX_2_8: Option<NixVersion> = Some(NixVersion::new(2, 8, 0));

/// Explain `requirement` over `text`'s machines as given, with Nix 2.8 here.
pub fn explain_with(
    text: &str,
    requirement: Requirement,
    observed: Vec<Observed>,
    nix_version: Option<NixVersion>,
) -> Explanation {
    let machines = machines(text);
    assert_eq!(
        machines.len(),
        observed.len(),
        "one observation per machine"
    );
    explain(Inputs {
        requirement,
        subject: Subject::Given,
        machines: &machines,
        observed,
        slots_problem: None,
        local: &local(),
        nix_version,
    })
}
