//! What Nix does with the build, given each machine's standing: which
//! machine its build hook accepts, or whether it postpones (waits for a
//! slot) or declines (builds here, or fails). Written by hand from Nix's
//! build hook (ref §3 "No machine available").

use serde::Serialize;

use super::Requirement;
use super::availability::Availability;
use super::rules::comma_list;
use crate::nixconf::LocalCapacity;

/// Whether this machine could build it itself (the hook's
/// `couldBuildLocally`): max-jobs above 0, its system or an extra platform,
/// and every required feature among its system-features (all per nix.conf).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalBuild {
    pub possible: bool,
    /// Why, in a sentence.
    pub why: String,
}

impl LocalBuild {
    pub fn assess(requirement: &Requirement, local: &LocalCapacity) -> LocalBuild {
        let system = &local.system.value;
        let max_jobs = if local.max_jobs.value == "auto" {
            Ok(local.cpus)
        } else {
            local.max_jobs.value.trim().parse::<usize>()
        };
        let mut obstacles = Vec::new();
        match max_jobs {
            Ok(0) => obstacles.push("its max-jobs is 0".to_string()),
            Ok(_) => {}
            Err(_) => obstacles.push(format!(
                "its max-jobs '{}' is not a number",
                local.max_jobs.value
            )),
        }
        let platforms = &local.extra_platforms.value;
        if &requirement.system != system && !platforms.contains(&requirement.system) {
            obstacles.push(format!(
                "system '{}' is neither its own '{system}' nor in its extra-platforms '{}'",
                requirement.system,
                comma_list(platforms)
            ));
        }
        let features = &local.system_features.value;
        for feature in requirement
            .features
            .iter()
            .filter(|f| !features.contains(f))
        {
            obstacles.push(format!(
                "feature '{feature}' is not in its system-features '{}'",
                comma_list(features)
            ));
        }
        if obstacles.is_empty() {
            LocalBuild {
                possible: true,
                why: format!(
                    "this machine ({system}, max-jobs {}) can build it",
                    local.max_jobs.value
                ),
            }
        } else {
            LocalBuild {
                possible: false,
                why: format!("this machine cannot build it: {}", obstacles.join("; ")),
            }
        }
    }
}

/// What the build hook answers, as Nix would run it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum HookAnswer {
    /// `preferLocalBuild` and this machine can build it: the hook is not asked.
    LocalPreferred,
    /// `# accept`: the build goes to this machine (its index).
    Remote { machine: usize },
    /// `# postpone`: an eligible machine exists but none can take it now,
    /// and this machine cannot build it; Nix asks again when a build ends.
    Postpone,
    /// `# decline`, and Nix builds it on this machine.
    DeclineBuildHere,
    /// `# decline`, and this machine cannot build it either: the build fails.
    DeclineFail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub action: HookAnswer,
    /// Down machines Nix would pick first, in that order: each fails with
    /// `cannot build on '<uri>'` and is left out of the next pick.
    pub fails_first: Vec<usize>,
}

/// `availability`: each machine's, in list order; `order`: the machines
/// with a free slot in Nix's order (see [`super::ranking::nix_order`]).
pub(super) fn decide(
    availability: &[Availability],
    order: &[usize],
    local: &LocalBuild,
    prefer_local_build: bool,
) -> Outcome {
    if prefer_local_build && local.possible {
        return Outcome {
            action: HookAnswer::LocalPreferred,
            fails_first: Vec::new(),
        };
    }
    let is_down = |i: &usize| availability[*i] == Availability::Down;
    let fails_first: Vec<usize> = order.iter().copied().take_while(is_down).collect();
    if let Some(&machine) = order.iter().find(|i| !is_down(i)) {
        return Outcome {
            action: HookAnswer::Remote { machine },
            fails_first,
        };
    }
    // Every machine with a free slot is down, or there is none. Nix's
    // `rightType`: an eligible machine it has not disabled.
    let right_type = availability
        .iter()
        .enumerate()
        .any(|(i, a)| *a != Availability::NotEligible && !fails_first.contains(&i));
    let action = if right_type && !local.possible {
        HookAnswer::Postpone
    } else if local.possible {
        HookAnswer::DeclineBuildHere
    } else {
        HookAnswer::DeclineFail
    };
    Outcome {
        action,
        fails_first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nixconf::Valued;

    fn valued<T>(value: T) -> Valued<T> {
        Valued {
            value,
            set_at: None,
        }
    }

    fn local(system: &str, features: &[&str], max_jobs: &str) -> LocalCapacity {
        LocalCapacity {
            system: valued(system.to_string()),
            extra_platforms: valued(vec!["i686-linux".to_string()]),
            system_features: valued(features.iter().map(|f| f.to_string()).collect()),
            max_jobs: valued(max_jobs.to_string()),
            cpus: 8,
        }
    }

    fn here(possible: bool) -> LocalBuild {
        LocalBuild {
            possible,
            why: String::new(),
        }
    }

    use Availability::*;

    #[test]
    fn this_machine_builds_what_its_nix_conf_allows() {
        let conf = local("x86_64-linux", &["kvm"], "auto");
        let can = LocalBuild::assess(&Requirement::new("i686-linux", ["kvm"]), &conf);
        assert!(can.possible, "{}", can.why);
        assert_eq!(
            can.why,
            "this machine (x86_64-linux, max-jobs auto) can build it"
        );
        let cannot = LocalBuild::assess(&Requirement::new("aarch64-linux", ["kvm", "gpu"]), &conf);
        assert!(!cannot.possible);
        assert_eq!(
            cannot.why,
            "this machine cannot build it: system 'aarch64-linux' is neither its own \
             'x86_64-linux' nor in its extra-platforms 'i686-linux'; feature 'gpu' is not in \
             its system-features 'kvm'"
        );
        let no_jobs = LocalBuild::assess(
            &Requirement::new("x86_64-linux", Vec::<String>::new()),
            &local("x86_64-linux", &[], "0"),
        );
        assert_eq!(
            no_jobs.why,
            "this machine cannot build it: its max-jobs is 0"
        );
    }

    #[test]
    fn the_first_in_nix_order_that_is_not_down_gets_the_build() {
        let outcome = decide(&[Free, Down, Free], &[1, 2, 0], &here(true), false);
        assert_eq!(outcome.action, HookAnswer::Remote { machine: 2 });
        assert_eq!(outcome.fails_first, [1]);
        let outcome = decide(&[Free, Down], &[0, 1], &here(true), false);
        assert_eq!(outcome.action, HookAnswer::Remote { machine: 0 });
        assert!(
            outcome.fails_first.is_empty(),
            "a down host ranked after is never tried"
        );
    }

    #[test]
    fn full_machines_of_the_right_type_mean_postpone_unless_this_machine_can_build() {
        let availability = [Full, NotEligible];
        assert_eq!(
            decide(&availability, &[], &here(false), false).action,
            HookAnswer::Postpone
        );
        assert_eq!(
            decide(&availability, &[], &here(true), false).action,
            HookAnswer::DeclineBuildHere
        );
        assert_eq!(
            decide(&[NoSlots], &[], &here(false), false).action,
            HookAnswer::Postpone
        );
    }

    #[test]
    fn no_eligible_machine_means_decline() {
        let availability = [NotEligible, NotEligible];
        assert_eq!(
            decide(&availability, &[], &here(true), false).action,
            HookAnswer::DeclineBuildHere
        );
        assert_eq!(
            decide(&availability, &[], &here(false), false).action,
            HookAnswer::DeclineFail
        );
        assert_eq!(
            decide(&[], &[], &here(false), false).action,
            HookAnswer::DeclineFail
        );
    }

    #[test]
    fn when_every_free_machine_is_down_nix_tries_them_all_then_gives_up() {
        // All disabled after failing: nothing of the right type is left.
        let outcome = decide(&[Down, Down, NotEligible], &[1, 0], &here(false), false);
        assert_eq!(outcome.action, HookAnswer::DeclineFail);
        assert_eq!(outcome.fails_first, [1, 0]);
        // A full one is still of the right type: wait for it.
        let outcome = decide(&[Down, Full], &[0], &here(false), false);
        assert_eq!(outcome.action, HookAnswer::Postpone);
        assert_eq!(outcome.fails_first, [0]);
    }

    #[test]
    fn prefer_local_build_skips_the_hook_only_when_this_machine_can() {
        assert_eq!(
            decide(&[Free], &[0], &here(true), true).action,
            HookAnswer::LocalPreferred
        );
        assert_eq!(
            decide(&[Free], &[0], &here(false), true).action,
            HookAnswer::Remote { machine: 0 }
        );
    }
}
