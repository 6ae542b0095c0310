//! What to build and where → the exact argv of the Nix command.
//!
//! The command always gets `--log-format internal-json -v` (rbtop reads its
//! progress from that) and never a shell: every argument is its own argv
//! element, so nothing the operator types is ever re-parsed.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::machines::Machine;
use crate::nix_version::NixVersion;
use crate::sources::SourceChoice;

/// Which Nix command runs the build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum BuildTool {
    /// `nix build` (needs the `nix-command` feature, which rbtop enables).
    #[default]
    #[serde(rename = "nix build")]
    NixBuild,
    #[serde(rename = "nix-build")]
    NixBuildLegacy,
    #[serde(rename = "nix-store --realise")]
    NixStoreRealise,
}

impl BuildTool {
    pub const ALL: [BuildTool; 3] = [
        BuildTool::NixBuild,
        BuildTool::NixBuildLegacy,
        BuildTool::NixStoreRealise,
    ];

    pub fn parse(text: &str) -> Result<BuildTool, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["nix", "build"] => Ok(BuildTool::NixBuild),
            ["nix-build"] => Ok(BuildTool::NixBuildLegacy),
            ["nix-store", "--realise" | "-r" | "--realize"] => Ok(BuildTool::NixStoreRealise),
            _ => Err(format!(
                "unknown build command '{text}': expected \"nix build\", \"nix-build\" or \"nix-store --realise\""
            )),
        }
    }

    pub fn next(self) -> BuildTool {
        let i = BuildTool::ALL.iter().position(|t| *t == self).unwrap_or(0);
        BuildTool::ALL[(i + 1) % BuildTool::ALL.len()]
    }
}

impl fmt::Display for BuildTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildTool::NixBuild => "nix build",
            BuildTool::NixBuildLegacy => "nix-build",
            BuildTool::NixStoreRealise => "nix-store --realise",
        })
    }
}

/// What the operator asked to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A `.drv` path (in the store).
    Derivation(String),
    /// A file of Nix code.
    NixFile(String),
    /// Anything else: a flake reference, `nixpkgs#hello`, a store path…
    Installable(String),
    /// The arguments began with an option: passed on exactly as given.
    Verbatim,
}

impl Target {
    pub fn classify(text: &str) -> Target {
        if text.starts_with('-') {
            Target::Verbatim
        } else if text.ends_with(".drv") {
            Target::Derivation(text.to_string())
        } else if text.ends_with(".nix") || Path::new(text).is_file() {
            Target::NixFile(text.to_string())
        } else {
            Target::Installable(text.to_string())
        }
    }
}

/// Where Nix may send the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Nix's scheduler among the fleet rbtop shows: `--builders` is rbtop's
    /// own machines source, or nothing when that is Nix's own config.
    Fleet { builders: Option<String> },
    /// Only this machine: `--builders` is its machines line, `--max-jobs 0`.
    Pinned { uri: String, line: String },
}

impl Placement {
    /// Nix choosing among the machines rbtop read.
    pub fn fleet(source: &SourceChoice) -> Placement {
        let builders = match source {
            SourceChoice::Builders { text, .. } => Some(text.clone()),
            SourceChoice::File(path) => Some(format!("@{}", path.display())),
            SourceChoice::NixConf => None,
        };
        Placement::Fleet { builders }
    }

    /// Pinned to `machine`: Nix may use only its line, and no local slot.
    pub fn pinned(machine: &Machine) -> Placement {
        Placement::Pinned {
            uri: machine.uri().to_string(),
            line: machine.line.clone(),
        }
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            Placement::Pinned { uri, .. } => Some(uri),
            Placement::Fleet { .. } => None,
        }
    }
}

/// The first of `args` that would override what pinning sets (a later
/// option wins in Nix): `--builders`, `--max-jobs`/`-j`, or either through
/// `--option NAME`.
fn undoes_pin(args: &[String]) -> Option<String> {
    const SETTINGS: [&str; 2] = ["builders", "max-jobs"];
    args.iter().enumerate().find_map(|(i, arg)| {
        let option_of =
            |name: &str| arg == "--option" && args.get(i + 1).is_some_and(|n| n == name);
        match arg.as_str() {
            "--builders" | "--max-jobs" | "-j" => Some(arg.clone()),
            _ => SETTINGS
                .iter()
                .find(|name| option_of(name))
                .map(|name| format!("--option {name}")),
        }
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct LaunchRequest {
    /// The operator's words: the target first (unless it is an option),
    /// then extra arguments for the command.
    pub args: Vec<String>,
    pub placement: Placement,
    pub tool: BuildTool,
}

impl LaunchRequest {
    /// Short description for lists: the target as typed.
    pub fn what(&self) -> String {
        match self.args.first() {
            Some(first) if !first.starts_with('-') => first.clone(),
            _ => self.args.join(" "),
        }
    }

    /// The full argv, program first. `local_nix` decides how a `.drv` is
    /// named to `nix build` (2.13 wants `drv^*`).
    pub fn argv(&self, local_nix: Option<NixVersion>) -> Result<Vec<String>, String> {
        let Some(first) = self.args.first() else {
            return Err("nothing to build: give an installable, a .nix file or a .drv path".into());
        };
        let target = Target::classify(first);
        let rest = if target == Target::Verbatim {
            &self.args[..]
        } else {
            &self.args[1..]
        };
        let mut argv: Vec<String> = match self.tool {
            BuildTool::NixBuild => vec![
                "nix".into(),
                "build".into(),
                "--extra-experimental-features".into(),
                "nix-command".into(),
                // Output paths come back as JSON on stdout; no ./result link
                // appears wherever rbtop was started.
                "--json".into(),
                "--no-link".into(),
            ],
            BuildTool::NixBuildLegacy => vec!["nix-build".into(), "--no-out-link".into()],
            BuildTool::NixStoreRealise => vec!["nix-store".into(), "--realise".into()],
        };
        argv.extend(
            ["--log-format", "internal-json", "-v"]
                .iter()
                .map(|s| s.to_string()),
        );
        match (&target, self.tool) {
            (Target::Verbatim, _) => {}
            (Target::Derivation(drv), BuildTool::NixBuild) => {
                let new_syntax = local_nix.is_some_and(|v| v >= NixVersion::new(2, 13, 0));
                argv.push(if new_syntax {
                    format!("{drv}^*")
                } else {
                    drv.clone()
                });
            }
            (Target::NixFile(file), BuildTool::NixBuild) => {
                argv.push("-f".into());
                argv.push(file.clone());
            }
            (Target::Installable(what), BuildTool::NixStoreRealise)
            | (Target::NixFile(what), BuildTool::NixStoreRealise) => {
                return Err(format!(
                    "nix-store --realise builds .drv paths only, not '{what}'; use nix build or nix-build"
                ));
            }
            (Target::Installable(what), BuildTool::NixBuildLegacy) if what.contains('#') => {
                return Err(format!(
                    "nix-build cannot build the flake reference '{what}'; use nix build"
                ));
            }
            (Target::Derivation(what) | Target::NixFile(what) | Target::Installable(what), _) => {
                argv.push(what.clone());
            }
        }
        if let Placement::Pinned { uri, .. } = &self.placement
            && let Some(flag) = undoes_pin(rest)
        {
            return Err(format!(
                "{flag} would undo pinning the build to {uri}; leave it out, or let Nix choose"
            ));
        }
        match &self.placement {
            Placement::Fleet { builders: None } => {}
            Placement::Fleet {
                builders: Some(builders),
            } => {
                argv.push("--builders".into());
                argv.push(builders.clone());
            }
            Placement::Pinned { line, .. } => {
                argv.push("--builders".into());
                argv.push(line.clone());
                argv.push("--max-jobs".into());
                argv.push("0".into());
            }
        }
        argv.extend(rest.iter().cloned());
        Ok(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: &[&str], tool: BuildTool, placement: Placement) -> LaunchRequest {
        LaunchRequest {
            args: args.iter().map(|s| s.to_string()).collect(),
            placement,
            tool,
        }
    }

    fn pinned() -> Placement {
        Placement::Pinned {
            uri: "ssh://b1".into(),
            line: "ssh://b1 x86_64-linux - 2 1 - - -".into(),
        }
    }

    #[test]
    fn pinned_nix_build_of_a_file() {
        let argv = request(&["x.nix", "--arg", "n", "1"], BuildTool::NixBuild, pinned())
            .argv(Some(NixVersion::new(2, 8, 0)))
            .unwrap();
        assert_eq!(
            argv,
            [
                "nix",
                "build",
                "--extra-experimental-features",
                "nix-command",
                "--json",
                "--no-link",
                "--log-format",
                "internal-json",
                "-v",
                "-f",
                "x.nix",
                "--builders",
                "ssh://b1 x86_64-linux - 2 1 - - -",
                "--max-jobs",
                "0",
                "--arg",
                "n",
                "1"
            ]
        );
    }

    #[test]
    fn derivations_per_tool_and_version() {
        let drv = "/nix/store/00000000000000000000000000000000-a.drv";
        let fleet = Placement::Fleet { builders: None };
        let old = request(&[drv], BuildTool::NixBuild, fleet.clone())
            .argv(Some(NixVersion::new(2, 8, 0)))
            .unwrap();
        assert_eq!(old.last().unwrap(), drv);
        let new = request(&[drv], BuildTool::NixBuild, fleet.clone())
            .argv(Some(NixVersion::new(2, 26, 3)))
            .unwrap();
        assert_eq!(new.last().unwrap(), &format!("{drv}^*"));
        let realise = request(&[drv], BuildTool::NixStoreRealise, fleet)
            .argv(None)
            .unwrap();
        assert_eq!(realise[..2], ["nix-store", "--realise"]);
        assert_eq!(realise.last().unwrap(), drv);
    }

    #[test]
    fn impossible_combinations_are_refused() {
        let fleet = Placement::Fleet { builders: None };
        assert!(
            request(
                &["nixpkgs#hello"],
                BuildTool::NixStoreRealise,
                fleet.clone()
            )
            .argv(None)
            .unwrap_err()
            .contains(".drv paths only")
        );
        assert!(
            request(&["nixpkgs#hello"], BuildTool::NixBuildLegacy, fleet.clone())
                .argv(None)
                .unwrap_err()
                .contains("flake reference")
        );
        assert!(request(&[], BuildTool::NixBuild, fleet).argv(None).is_err());
    }

    #[test]
    fn options_first_means_verbatim_and_fleet_builders_are_passed() {
        let argv = request(
            &["-E", "with import <nixpkgs> {}; hello"],
            BuildTool::NixBuildLegacy,
            Placement::fleet(&SourceChoice::File("/etc/nix/machines".into())),
        )
        .argv(None)
        .unwrap();
        assert_eq!(
            argv[5..],
            [
                "--builders",
                "@/etc/nix/machines",
                "-E",
                "with import <nixpkgs> {}; hello"
            ]
        );
    }

    #[test]
    fn a_pin_cannot_be_undone_by_extra_arguments() {
        for args in [
            &["x.nix", "--builders", "4"][..],
            &["x.nix", "--max-jobs", "4"],
            &["x.nix", "-j", "4"],
            &["x.nix", "--option", "max-jobs", "4"],
        ] {
            let err = request(args, BuildTool::NixBuild, pinned())
                .argv(None)
                .unwrap_err();
            assert!(
                err.contains("would undo pinning the build to ssh://b1"),
                "{err}"
            );
        }
        assert!(
            request(
                &["x.nix", "--option", "sandbox", "false"],
                BuildTool::NixBuild,
                pinned()
            )
            .argv(None)
            .is_ok()
        );
        let fleet = Placement::Fleet { builders: None };
        assert!(
            request(&["x.nix", "--max-jobs", "4"], BuildTool::NixBuild, fleet)
                .argv(None)
                .is_ok()
        );
    }

    #[test]
    fn tool_names() {
        for tool in BuildTool::ALL {
            assert_eq!(BuildTool::parse(&tool.to_string()), Ok(tool));
        }
        assert!(BuildTool::parse("make").is_err());
    }
}
