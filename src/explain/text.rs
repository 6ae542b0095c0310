//! The explainer's sentences, shared by `rbtop explain` and the
//! dashboard's pane so that both say the same thing.

use super::rules::comma_list;
use super::{Availability, Explanation, HookAnswer, MachineVerdict, Reachability, Subject};

/// `x86_64-linux with features kvm` (or `with no required features`).
pub fn requirement(explanation: &Explanation) -> String {
    let r = &explanation.requirement;
    let features: Vec<&String> = r.features.iter().collect();
    if features.is_empty() {
        format!("{} with no required features", r.system)
    } else {
        format!("{} with features {}", r.system, comma_list(&features))
    }
}

/// Where the requirement was read, and what Nix adds to it.
pub fn subject(explanation: &Explanation) -> Vec<String> {
    match &explanation.subject {
        Subject::Given => Vec::new(),
        Subject::Derivation {
            path,
            name,
            prefer_local_build,
            implied,
        } => {
            let mut lines = vec![match name {
                Some(name) => format!("from {} ({name})", path.display()),
                None => format!("from {}", path.display()),
            }];
            for feature in implied {
                lines.push(format!(
                    "'{}' is required by Nix itself: {}",
                    feature.feature, feature.why
                ));
            }
            if *prefer_local_build {
                lines.push("it sets preferLocalBuild".to_string());
            }
            lines
        }
    }
}

/// Which ranking rule applied.
pub fn ranking(explanation: &Explanation) -> String {
    format!(
        "Ranking: {}",
        explanation.division.describe(explanation.nix_version)
    )
}

/// The short word for a machine's standing: its rank, or why it has none.
pub fn standing(machine: &MachineVerdict) -> String {
    match (machine.availability, machine.rank) {
        (_, Some(rank)) => format!("#{rank}"),
        (Availability::NotEligible, _) => "rejected".to_string(),
        (Availability::NoSlots, _) => "no slots".to_string(),
        (Availability::Full, _) => "full".to_string(),
        (Availability::Down, _) => "down".to_string(),
        (Availability::Free, None) => "-".to_string(),
    }
}

/// The columns of the machines table, CLI and dashboard alike.
pub const COLUMNS: [&str; 7] = [
    "HOST",
    "VERDICT",
    "STATUS",
    "SLOTS",
    "SPEED",
    "LOAD/SPEED",
    "RANK",
];

/// One machine's cells under [`COLUMNS`].
pub fn row(machine: &MachineVerdict) -> [String; 7] {
    [
        machine.host.clone(),
        verdict(machine).to_string(),
        status(machine).to_string(),
        slots(machine),
        machine.speed_factor.to_string(),
        machine
            .score
            .map_or_else(|| "-".to_string(), |s| s.to_string()),
        standing(machine),
    ]
}

pub fn verdict(machine: &MachineVerdict) -> &'static str {
    if machine.is_eligible() {
        "eligible"
    } else {
        "rejected"
    }
}

/// The probe's status word; `-` for a rejected machine left unprobed,
/// which is no news.
pub fn status(machine: &MachineVerdict) -> &'static str {
    match (&machine.reachability, machine.availability) {
        (Reachability::Unknown { .. }, Availability::NotEligible) => "-",
        (reachability, _) => reachability.name(),
    }
}

/// `1/4`, or `?/4` when the slots could not be read.
pub fn slots(machine: &MachineVerdict) -> String {
    match machine.busy {
        Some(busy) => format!("{busy}/{}", machine.max_jobs),
        None => format!("?/{}", machine.max_jobs),
    }
}

/// Why a machine is not ranked, one line per reason: each failed rule, or
/// what keeps an eligible machine from taking the build. Empty when ranked.
pub fn why_not(machine: &MachineVerdict) -> Vec<String> {
    match machine.availability {
        Availability::NotEligible => machine.rejections.iter().map(ToString::to_string).collect(),
        Availability::NoSlots => {
            vec!["max-jobs is 0: Nix never sends a build here".to_string()]
        }
        Availability::Full => {
            let mut line = format!(
                "full: {} of {} slots busy here, so Nix skips it",
                machine.busy.unwrap_or(machine.max_jobs),
                machine.max_jobs
            );
            if machine.reachability.is_down() {
                line.push_str(&format!(" (and it is down: {})", down_reason(machine)));
            }
            vec![line]
        }
        Availability::Down => vec![format!(
            "down ({}): Nix would still try it in its turn and fail with \
             \"cannot build on '{}'\"",
            down_reason(machine),
            machine.uri
        )],
        Availability::Free => Vec::new(),
    }
}

fn down_reason(machine: &MachineVerdict) -> String {
    match &machine.reachability {
        Reachability::Down {
            status,
            reason: Some(reason),
        } => format!("{status}: {reason}"),
        other => other.name().to_string(),
    }
}

/// What Nix would do with the build, in a few sentences.
pub fn outcome(explanation: &Explanation) -> Vec<String> {
    let machines = &explanation.machines;
    let mut lines = Vec::new();
    let eligible = explanation.eligible().count();
    if eligible == 0 {
        lines.push(format!(
            "No machine is eligible for {}.",
            requirement(explanation)
        ));
    }
    let outcome = &explanation.outcome;
    if !outcome.fails_first.is_empty() {
        let hosts: Vec<&str> = outcome
            .fails_first
            .iter()
            .map(|&i| machines[i].host.as_str())
            .collect();
        lines.push(format!(
            "Nix would first try {} (down): each fails with \"cannot build on …\" and Nix \
             picks again without it.",
            hosts.join(", then ")
        ));
    }
    let local = &explanation.local.why;
    lines.push(match &outcome.action {
        HookAnswer::LocalPreferred => format!(
            "The derivation sets preferLocalBuild and {local}: Nix builds it here without \
             asking the build hook."
        ),
        HookAnswer::Remote { machine } => {
            let chosen = &machines[*machine];
            let mut line = format!(
                "Nix would build on {} ({}): load {} / speed factor {} = {}.",
                chosen.host,
                chosen.uri,
                chosen.busy.unwrap_or(0),
                chosen.speed_factor,
                chosen
                    .score
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
            );
            if let Reachability::Unknown { why } = &chosen.reachability {
                line.push_str(&format!(" Whether it answers is not known ({why})."));
            }
            line
        }
        HookAnswer::Postpone => format!(
            "{} and {local}: the build hook answers postpone, and Nix waits for a slot to \
             free up.",
            none_free(outcome.fails_first.is_empty())
        ),
        HookAnswer::DeclineBuildHere if eligible == 0 => {
            format!("The build hook declines, and {local}: Nix builds it here.")
        }
        HookAnswer::DeclineBuildHere => format!(
            "{}, but {local}: the build hook declines and Nix builds it here (it would \
             postpone instead while every local build slot is busy).",
            none_free(outcome.fails_first.is_empty())
        ),
        HookAnswer::DeclineFail => format!(
            "{local}: the build hook declines (\"Failed to find a machine for remote \
             build!\") and the build fails.",
            local = capitalised(local)
        ),
    });
    if let Some(problem) = &explanation.slots_problem {
        lines.push(format!(
            "Busy slots unknown ({problem}): every slot was counted as free."
        ));
    }
    lines
}

fn none_free(no_down_tried: bool) -> &'static str {
    if no_down_tried {
        "No eligible machine has a free slot"
    } else {
        "No other eligible machine has a free slot"
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
