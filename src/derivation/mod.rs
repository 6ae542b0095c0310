//! A `.drv` file as the build hook sees it: its outputs, its system and its
//! environment, from which the required system features come.
//!
//! Read by hand ([`aterm`]): the ATerm format and the attribute rules
//! (`requiredSystemFeatures` as a space-separated string, or a JSON list
//! under `__json` with structured attributes) are Nix's own.

pub mod aterm;
mod attrs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aterm::Term;

pub use attrs::RequiredFeatures;

/// One output: `("out","/nix/store/…-x","","")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    /// Empty when the path is not known before the build (floating
    /// content-addressed, deferred or impure outputs).
    pub path: String,
    pub hash_algo: String,
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Derivation {
    pub outputs: Vec<Output>,
    pub system: String,
    pub builder: String,
    pub env: BTreeMap<String, String>,
}

/// Why a file could not be used as a derivation; both name the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Missing, not a regular file, past its bound or unreadable.
    #[error(transparent)]
    File(#[from] crate::bounds::FileError),
    #[error("{} is not a derivation: {why}", path.display())]
    NotADerivation { path: PathBuf, why: String },
}

/// Read and parse the `.drv` file at `path`.
pub fn read(path: &Path) -> Result<Derivation, ReadError> {
    let bytes = crate::bounds::read_regular_file(path, crate::bounds::DRV_FILE)?;
    // Nix strings are bytes; a stray non-UTF-8 byte in some variable must
    // not hide the system and features.
    parse(&String::from_utf8_lossy(&bytes)).map_err(|why| ReadError::NotADerivation {
        path: path.to_path_buf(),
        why,
    })
}

/// Parse the text of a `.drv` file (`Derive(…)`, or `DrvWithVersion("…",…)`
/// as newer Nix writes for dynamic derivations).
pub fn parse(text: &str) -> Result<Derivation, String> {
    let (fields, dynamic) = match aterm::parse(text) {
        Ok(Term::App(name, fields)) if name == "Derive" => (fields, false),
        Ok(Term::App(name, mut fields)) if name == "DrvWithVersion" && !fields.is_empty() => {
            // The one version Nix knows; any other it refuses outright.
            match fields.remove(0) {
                Term::Str(version) if version == DYNAMIC_DERIVATIONS => {}
                Term::Str(version) => {
                    return Err(format!(
                        "unknown derivation ATerm format version '{version}' (Nix knows only '{DYNAMIC_DERIVATIONS}')"
                    ));
                }
                _ => return Err("its DrvWithVersion( version is not a string".to_string()),
            }
            (fields, true)
        }
        Ok(_) => return Err("it does not start with Derive(".to_string()),
        Err(e) if !text.starts_with("Derive(") && !text.starts_with("DrvWithVersion(") => {
            return Err(format!("it does not start with Derive( ({e})"));
        }
        Err(e) => return Err(format!("bad ATerm: {e}")),
    };
    let [
        outputs,
        input_drvs,
        _input_srcs,
        system,
        builder,
        _args,
        env,
    ] = fields.as_slice()
    else {
        return Err(format!(
            "Derive( has {} fields, not the 7 expected",
            fields.len()
        ));
    };
    check_input_drvs(input_drvs, dynamic)?;
    Ok(Derivation {
        outputs: list_of(outputs, "outputs", output)?,
        system: string_field(system, "system")?,
        builder: string_field(builder, "builder")?,
        env: list_of(env, "env", |term| {
            let [name, value] = term.as_tuple()? else {
                return None;
            };
            Some((name.as_str()?.to_string(), value.as_str()?.to_string()))
        })?
        .into_iter()
        .collect(),
    })
}

/// `DrvWithVersion("xp-dyn-drv", …)`: dynamic derivations.
const DYNAMIC_DERIVATIONS: &str = "xp-dyn-drv";

/// The input derivations as Nix's `parseDerivedPathMapNode` takes them:
/// each `(path, [outputs])`; the `(path, ([outputs], [(output, …)]))` of a
/// dynamic derivation's input only under `DrvWithVersion`; and never an
/// entry that names no output at all.
fn check_input_drvs(term: &Term, dynamic: bool) -> Result<(), String> {
    let entries = term
        .as_list()
        .ok_or("its input derivations are not a list")?;
    for (i, entry) in entries.iter().enumerate() {
        let malformed = || format!("item {} of its input derivations is malformed", i + 1);
        let [path, node] = entry.as_tuple().ok_or_else(malformed)? else {
            return Err(malformed());
        };
        let path = path.as_str().ok_or_else(malformed)?;
        if !map_node(node, dynamic, malformed)? {
            return Err(format!("input derivation '{path}' specifies no outputs"));
        }
    }
    Ok(())
}

/// Whether a node names any output; an error for a form its version lacks.
fn map_node(
    node: &Term,
    dynamic: bool,
    malformed: impl Fn() -> String + Copy,
) -> Result<bool, String> {
    let strings = |t: &Term| -> Result<usize, String> {
        let items = t.as_list().ok_or_else(malformed)?;
        if items.iter().any(|i| i.as_str().is_none()) {
            return Err(malformed());
        }
        Ok(items.len())
    };
    match node {
        Term::List(_) => Ok(strings(node)? > 0),
        Term::Tuple(_) if !dynamic => Err(
            "it has a dynamic-derivation input in the old Derive( format, which Nix refuses \
             (only DrvWithVersion(\"xp-dyn-drv\", …) may have one)"
                .to_string(),
        ),
        Term::Tuple(fields) => {
            let [outputs, children] = fields.as_slice() else {
                return Err(malformed());
            };
            let mut any = strings(outputs)? > 0;
            for child in children.as_list().ok_or_else(malformed)? {
                let [name, child] = child.as_tuple().ok_or_else(malformed)? else {
                    return Err(malformed());
                };
                name.as_str().ok_or_else(malformed)?;
                any |= map_node(child, dynamic, malformed)?;
            }
            Ok(any)
        }
        _ => Err(malformed()),
    }
}

fn string_field(term: &Term, name: &str) -> Result<String, String> {
    term.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("its {name} is not a string"))
}

/// Every item of a list field, each read by `item`.
fn list_of<T>(
    term: &Term,
    name: &str,
    item: impl Fn(&Term) -> Option<T>,
) -> Result<Vec<T>, String> {
    let items = term
        .as_list()
        .ok_or_else(|| format!("its {name} is not a list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, term)| {
            item(term).ok_or_else(|| format!("item {} of its {name} is malformed", i + 1))
        })
        .collect()
}

fn output(term: &Term) -> Option<Output> {
    let [name, path, hash_algo, hash] = term.as_tuple()? else {
        return None;
    };
    Some(Output {
        name: name.as_str()?.to_string(),
        path: path.as_str()?.to_string(),
        hash_algo: hash_algo.as_str()?.to_string(),
        hash: hash.as_str()?.to_string(),
    })
}

impl Derivation {
    /// The `name` attribute, if set.
    pub fn name(&self) -> Option<&str> {
        self.env.get("name").map(String::as_str)
    }

    /// Whether every output's path is known before building (Nix's
    /// `hasKnownOutputPaths`): false for floating content-addressed,
    /// deferred and impure outputs, which all leave the path empty.
    pub fn has_known_output_paths(&self) -> bool {
        self.outputs.iter().all(|o| !o.path.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by Nix 2.8's `nix-instantiate` for a `derivation { … }` with
    /// `args = ["-c" "echo \"hi\"\n\ttab > $out"]; requiredSystemFeatures = ["kvm"];`.
    pub(crate) const PLAIN: &str = r#"Derive([("out","/nix/store/nh2n35yyvpbxg2rykhkh1sgvzmrbdi6g-rbtop-explain-probe","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo \"hi\"\n\ttab > $out"],[("builder","/bin/sh"),("name","rbtop-explain-probe"),("out","/nix/store/nh2n35yyvpbxg2rykhkh1sgvzmrbdi6g-rbtop-explain-probe"),("requiredSystemFeatures","kvm"),("system","x86_64-linux")])"#;

    #[test]
    fn reads_a_real_derivation() {
        let drv = parse(PLAIN).unwrap();
        assert_eq!(drv.system, "x86_64-linux");
        assert_eq!(drv.builder, "/bin/sh");
        assert_eq!(drv.name(), Some("rbtop-explain-probe"));
        assert_eq!(drv.env["requiredSystemFeatures"], "kvm");
        assert_eq!(
            drv.outputs,
            [Output {
                name: "out".into(),
                path: "/nix/store/nh2n35yyvpbxg2rykhkh1sgvzmrbdi6g-rbtop-explain-probe".into(),
                hash_algo: String::new(),
                hash: String::new(),
            }]
        );
        assert!(drv.has_known_output_paths());
    }

    #[test]
    fn reads_the_versioned_form() {
        let text = r#"DrvWithVersion("xp-dyn-drv",[("out","","","")],[],[],"aarch64-linux","/bin/sh",[],[])"#;
        let drv = parse(text).unwrap();
        assert_eq!(drv.system, "aarch64-linux");
        assert!(!drv.has_known_output_paths(), "a deferred output");
    }

    #[test]
    fn says_why_a_text_is_not_a_derivation() {
        assert_eq!(
            parse("{ \"not\": \"aterm\" }").unwrap_err(),
            "it does not start with Derive( (expected a string, '[', '(' or a constructor at byte 0)"
        );
        assert_eq!(
            parse("Other()").unwrap_err(),
            "it does not start with Derive("
        );
        assert_eq!(
            parse(r#"Derive([],[])"#).unwrap_err(),
            "Derive( has 2 fields, not the 7 expected"
        );
        assert_eq!(
            parse(r#"Derive([],[],[],["x"],"b",[],[])"#).unwrap_err(),
            "its system is not a string"
        );
        assert_eq!(
            parse(r#"Derive([("out","/p")],[],[],"s","b",[],[])"#).unwrap_err(),
            "item 1 of its outputs is malformed"
        );
        assert!(
            parse(r#"Derive([("out","/p","","")],[],[],"s","b",[],[("a","b"])"#)
                .unwrap_err()
                .starts_with("bad ATerm: expected ',' or ')' at byte")
        );
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone.drv");
        let error = read(&missing).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("cannot read {}: ", missing.display())),
            "{error}"
        );
        let text = dir.path().join("x.drv");
        std::fs::write(&text, "hello").unwrap();
        let error = read(&text).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{} is not a derivation: ", text.display())),
            "{error}"
        );
        std::fs::write(&text, PLAIN).unwrap();
        assert_eq!(read(&text).unwrap().system, "x86_64-linux");
    }
}
