//! What a build needs of a machine (its system and required features), and
//! where that was read: flags, or a `.drv` file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::derivation;

/// The system and features a build requires: what Nix's build hook is
/// given for each derivation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub system: String,
    /// A set, as Nix keeps it: sorted, each once.
    pub features: BTreeSet<String>,
}

impl Requirement {
    pub fn new<S: Into<String>>(system: &str, features: impl IntoIterator<Item = S>) -> Self {
        Requirement {
            system: system.to_string(),
            features: features.into_iter().map(Into::into).collect(),
        }
    }

    /// Features separated by commas or white space (`kvm,big-parallel`).
    pub fn parse_features(text: &str) -> BTreeSet<String> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// A feature Nix adds to what the derivation itself requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImpliedFeature {
    pub feature: String,
    pub why: String,
}

/// Where the requirement came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// `--system` / `--features`, or typed in the dashboard.
    Given,
    Derivation {
        path: PathBuf,
        name: Option<String>,
        /// `preferLocalBuild`: Nix builds it here when it can, without the hook.
        prefer_local_build: bool,
        implied: Vec<ImpliedFeature>,
    },
}

/// What the operator asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    System {
        system: String,
        features: BTreeSet<String>,
    },
    Derivation(PathBuf),
}

impl Query {
    /// One line as typed in the dashboard: a `.drv` path, or a system then
    /// features (`x86_64-linux kvm,big-parallel`).
    pub fn parse(text: &str) -> Result<Query, String> {
        let text = text.trim();
        let Some(first) = text.split_whitespace().next() else {
            return Err("type a system and features (x86_64-linux kvm) or a .drv path".to_string());
        };
        if first.starts_with('/') || first.starts_with('.') || first.ends_with(".drv") {
            return Ok(Query::Derivation(PathBuf::from(text)));
        }
        Ok(Query::System {
            system: first.to_string(),
            features: Requirement::parse_features(&text[first.len()..]),
        })
    }

    /// The requirement, reading the derivation if that is what was asked.
    pub fn resolve(&self) -> Result<(Requirement, Subject), String> {
        match self {
            Query::System { system, features } => Ok((
                Requirement {
                    system: system.clone(),
                    features: features.clone(),
                },
                Subject::Given,
            )),
            Query::Derivation(path) => from_derivation(path),
        }
    }
}

/// The system and features of the `.drv` file at `path`, as the build hook
/// would be given them.
pub(super) fn from_derivation(path: &Path) -> Result<(Requirement, Subject), String> {
    let drv = derivation::read(path).map_err(|e| e.to_string())?;
    let in_file = |why: String| format!("{}: {why}", path.display());
    let required = drv.required_features().map_err(in_file)?;
    let prefer_local_build = drv.prefer_local_build().map_err(in_file)?;
    let subject = Subject::Derivation {
        path: path.to_path_buf(),
        name: drv.name().map(str::to_string),
        prefer_local_build,
        implied: required
            .implied
            .into_iter()
            .map(|(feature, why)| ImpliedFeature {
                feature,
                why: why.to_string(),
            })
            .collect(),
    };
    Ok((
        Requirement {
            system: drv.system,
            features: required.all,
        },
        subject,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_split_on_commas_and_spaces() {
        let features: Vec<String> = Requirement::parse_features(" kvm, big-parallel kvm,,")
            .into_iter()
            .collect();
        assert_eq!(features, ["big-parallel", "kvm"]);
    }

    #[test]
    fn a_typed_line_is_a_system_or_a_path() {
        assert_eq!(
            Query::parse("  x86_64-linux kvm,benchmark ").unwrap(),
            Query::System {
                system: "x86_64-linux".into(),
                features: Requirement::parse_features("benchmark kvm"),
            }
        );
        assert_eq!(
            Query::parse("/nix/store/abc-x.drv").unwrap(),
            Query::Derivation("/nix/store/abc-x.drv".into())
        );
        assert_eq!(
            Query::parse("x.drv").unwrap(),
            Query::Derivation("x.drv".into())
        );
        assert!(Query::parse("   ").unwrap_err().contains(".drv path"));
    }

    /// `text` in a `.drv` file of a fresh directory (kept while the first is alive).
    fn drv_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.drv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_derivation_gives_its_system_and_features() {
        let (_dir, path) = drv_file(
            r#"Derive([("out","","r:sha256","")],[],[],"aarch64-linux","/bin/sh",[],[("name","x"),("preferLocalBuild","1"),("requiredSystemFeatures","kvm")])"#,
        );
        let (requirement, subject) = Query::Derivation(path.clone()).resolve().unwrap();
        assert_eq!(
            requirement,
            Requirement::new("aarch64-linux", ["ca-derivations", "kvm"])
        );
        let Subject::Derivation {
            name,
            prefer_local_build,
            implied,
            ..
        } = subject
        else {
            panic!("not a derivation subject: {subject:?}");
        };
        assert_eq!(name.as_deref(), Some("x"));
        assert!(prefer_local_build);
        assert_eq!(implied.len(), 1);
        assert_eq!(implied[0].feature, "ca-derivations");
    }

    #[test]
    fn a_bad_attribute_names_the_file() {
        let (_dir, path) = drv_file(
            r#"Derive([("out","/p","","")],[],[],"s","b",[],[("__json","{\"preferLocalBuild\":2}")])"#,
        );
        assert_eq!(
            from_derivation(&path).unwrap_err(),
            format!(
                "{}: attribute 'preferLocalBuild' must be a Boolean",
                path.display()
            )
        );
    }
}
