//! Nix's eligibility rules for sending a build to a machine (the build
//! hook's test, ref §3): the system is listed (or is `builtin`), every
//! required feature is supported or mandatory, and every mandatory feature
//! is required. Written by hand: these are Nix's rules, restated.

use std::fmt;

use serde::Serialize;

use super::Requirement;
use crate::machines::Machine;

/// The system every machine accepts (Nix's built-in builders).
pub const BUILTIN_SYSTEM: &str = "builtin";

/// One rule a machine fails, with the values that made it fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rejection {
    /// The build's system is not in the machine's systems column.
    SystemNotListed {
        system: String,
        systems: Vec<String>,
    },
    /// A required feature is neither supported nor mandatory here.
    FeatureMissing {
        feature: String,
        supported: Vec<String>,
        mandatory: Vec<String>,
    },
    /// The machine takes only builds that require this feature.
    MandatoryNotRequired {
        feature: String,
        required: Vec<String>,
    },
}

/// A list as the machines file writes it: comma-separated, `-` when empty.
pub fn comma_list<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return "-".to_string();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::SystemNotListed { system, systems } => {
                write!(f, "system '{system}' not in '{}'", comma_list(systems))
            }
            Rejection::FeatureMissing {
                feature,
                supported,
                mandatory,
            } => write!(
                f,
                "required feature '{feature}' not supported (supported: {}, mandatory: {})",
                comma_list(supported),
                comma_list(mandatory)
            ),
            Rejection::MandatoryNotRequired { feature, required } => write!(
                f,
                "mandatory feature '{feature}' not required (the build requires: {})",
                comma_list(required)
            ),
        }
    }
}

/// Every rule `machine` fails for `requirement`, in the order Nix tests
/// them; empty when the machine is eligible.
pub fn rejections(machine: &Machine, requirement: &Requirement) -> Vec<Rejection> {
    let mut failed = Vec::new();
    let system = &requirement.system;
    if system != BUILTIN_SYSTEM && !machine.systems.contains(system) {
        failed.push(Rejection::SystemNotListed {
            system: system.clone(),
            systems: machine.systems.clone(),
        });
    }
    let has = |list: &[String], feature: &String| list.contains(feature);
    for feature in &requirement.features {
        if !has(&machine.supported_features, feature) && !has(&machine.mandatory_features, feature)
        {
            failed.push(Rejection::FeatureMissing {
                feature: feature.clone(),
                supported: machine.supported_features.clone(),
                mandatory: machine.mandatory_features.clone(),
            });
        }
    }
    for feature in &machine.mandatory_features {
        if !requirement.features.contains(feature) {
            failed.push(Rejection::MandatoryNotRequired {
                feature: feature.clone(),
                required: requirement.features.iter().cloned().collect(),
            });
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(line: &str) -> Machine {
        crate::explain::testing::machines(line).remove(0)
    }

    fn needs(system: &str, features: &[&str]) -> Requirement {
        Requirement::new(system, features.iter().copied())
    }

    fn texts(failed: &[Rejection]) -> Vec<String> {
        failed.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_listed_system_with_no_features_is_eligible() {
        let m = machine("b1 x86_64-linux,i686-linux");
        assert!(rejections(&m, &needs("i686-linux", &[])).is_empty());
    }

    #[test]
    fn a_system_not_listed_names_both() {
        let m = machine("b1 x86_64-linux,i686-linux");
        let failed = rejections(&m, &needs("aarch64-linux", &[]));
        assert_eq!(
            failed,
            [Rejection::SystemNotListed {
                system: "aarch64-linux".into(),
                systems: vec!["i686-linux".into(), "x86_64-linux".into()],
            }]
        );
        assert_eq!(
            texts(&failed),
            ["system 'aarch64-linux' not in 'i686-linux,x86_64-linux'"]
        );
    }

    #[test]
    fn the_builtin_system_is_accepted_everywhere() {
        let m = machine("b1 aarch64-linux");
        assert!(rejections(&m, &needs("builtin", &[])).is_empty());
        // Only the system rule is waived, not the feature rules.
        assert_eq!(
            texts(&rejections(&m, &needs("builtin", &["kvm"]))),
            ["required feature 'kvm' not supported (supported: -, mandatory: -)"]
        );
    }

    #[test]
    fn a_missing_feature_lists_what_the_machine_has() {
        let m = machine("b1 x86_64-linux - 1 1 big-parallel,nixos-test benchmark");
        let failed = rejections(&m, &needs("x86_64-linux", &["benchmark", "kvm"]));
        assert_eq!(
            texts(&failed),
            [
                "required feature 'kvm' not supported (supported: big-parallel,nixos-test, mandatory: benchmark)"
            ]
        );
    }

    #[test]
    fn a_mandatory_feature_satisfies_a_requirement() {
        let m = machine("b1 x86_64-linux - 1 1 - kvm");
        assert!(rejections(&m, &needs("x86_64-linux", &["kvm"])).is_empty());
    }

    #[test]
    fn a_mandatory_feature_not_required_rejects() {
        let m = machine("b1 x86_64-linux - 1 1 kvm benchmark");
        let failed = rejections(&m, &needs("x86_64-linux", &["kvm"]));
        assert_eq!(
            failed,
            [Rejection::MandatoryNotRequired {
                feature: "benchmark".into(),
                required: vec!["kvm".into()],
            }]
        );
        assert_eq!(
            texts(&failed),
            ["mandatory feature 'benchmark' not required (the build requires: kvm)"]
        );
        assert_eq!(
            texts(&rejections(&m, &needs("x86_64-linux", &[]))),
            ["mandatory feature 'benchmark' not required (the build requires: -)"]
        );
    }

    #[test]
    fn every_failed_rule_is_listed_not_just_the_first() {
        let m = machine("b1 aarch64-linux - 1 1 big-parallel benchmark,gpu");
        let failed = rejections(&m, &needs("x86_64-linux", &["gpu", "kvm", "nixos-test"]));
        assert_eq!(
            texts(&failed),
            [
                "system 'x86_64-linux' not in 'aarch64-linux'",
                "required feature 'kvm' not supported (supported: big-parallel, mandatory: benchmark,gpu)",
                "required feature 'nixos-test' not supported (supported: big-parallel, mandatory: benchmark,gpu)",
                "mandatory feature 'benchmark' not required (the build requires: gpu,kvm,nixos-test)",
            ]
        );
    }
}
