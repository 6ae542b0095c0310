//! Lix's TOML machines format (Lix ≥ 2.95, `lix-rs/src/machines.rs`):
//! `version = 1` and one `[machines.<name>]` table per builder with `uri`,
//! `system-types`, `ssh-key`, `jobs`, `speed-factor`, `supported-features`,
//! `mandatory-features`, `ssh-public-host-key` (plain; Lix encodes it) and
//! `enable`/`enabled`. Lix tries the whole text as TOML first; Nix (and
//! older Lix) read it line by line, as machines named `version`,
//! `[machines.b1]`, `uri` with systems `=`, none of which can build.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

/// Which Lix machines-file versions Lix reads.
const LIX_VERSIONS: std::ops::RangeInclusive<i64> = 1..=1;

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileMachine {
    uri: Option<String>,
    system_types: Option<Vec<String>>,
    ssh_key: Option<String>,
    jobs: Option<i64>,
    speed_factor: Option<f64>,
    supported_features: Option<Vec<String>>,
    mandatory_features: Option<Vec<String>>,
    ssh_public_host_key: Option<String>,
    #[serde(alias = "enable")]
    enabled: Option<bool>,
}

/// A Lix machine as one classic machines line, so the one entry reader
/// checks it as it checks every other line; `None` when it is disabled.
#[derive(Debug, PartialEq)]
pub(super) struct LixMachine {
    pub name: String,
    /// `None`: `enable = false`.
    pub line: Option<String>,
}

/// What the text is, for a reader that knows Lix's format.
#[derive(Debug, PartialEq)]
pub(super) enum LixText {
    /// Not Lix's TOML: read it line by line.
    Classic,
    /// Lix's TOML: its machines, or why Lix refuses it.
    Toml(Result<Vec<LixMachine>, String>),
}

/// Whether `text` is Lix's TOML machines format, read as Lix reads it.
pub(super) fn read(text: &str) -> LixText {
    // Cheap test first: every Lix file has a `machines` key.
    if !text.contains("machines") {
        return LixText::Classic;
    }
    let Ok(table) = text.parse::<toml::Table>() else {
        return LixText::Classic;
    };
    let Some(machines) = table.get("machines") else {
        return LixText::Classic;
    };
    LixText::Toml(machines_of(&table, machines))
}

fn machines_of(table: &toml::Table, machines: &toml::Value) -> Result<Vec<LixMachine>, String> {
    if let Some(version) = table.get("version") {
        let version = version
            .as_integer()
            .ok_or_else(|| format!("version must be a whole number, not {version}"))?;
        if !LIX_VERSIONS.contains(&version) {
            return Err(format!(
                "Lix reads machines files of version {} to {}, not {version}",
                LIX_VERSIONS.start(),
                LIX_VERSIONS.end()
            ));
        }
    }
    let machines = machines.as_table().ok_or(
        "`machines` must be a table of name -> machine ([machines.<name>]), as Lix expects",
    )?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in machines {
        match machine(name, value) {
            Ok(machine) => out.push(machine),
            Err(e) => errors.push(format!("machine '{name}': {e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("; "))
    }
}

fn machine(name: &str, value: &toml::Value) -> Result<LixMachine, String> {
    if !value.is_table() {
        return Err("each machine must be a table".into());
    }
    let m: FileMachine = value
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let uri = m
        .uri
        .filter(|u| !u.is_empty())
        .ok_or("uri must be present and non-empty")?;
    if m.jobs.is_some_and(|j| j < 0) {
        return Err("jobs must be >= 0".into());
    }
    if m.speed_factor.is_some_and(|s| s < 0.0) {
        return Err("speed-factor must be >= 0".into());
    }
    if m.enabled == Some(false) {
        return Ok(LixMachine {
            name: name.to_string(),
            line: None,
        });
    }
    let list = |v: Option<Vec<String>>| match v {
        Some(v) if !v.is_empty() => v.join(","),
        _ => "-".to_string(),
    };
    let key = m
        .ssh_public_host_key
        .filter(|k| !k.is_empty())
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k));
    let fields = [
        uri,
        list(m.system_types),
        m.ssh_key.filter(|k| !k.is_empty()).unwrap_or("-".into()),
        m.jobs.map_or("-".into(), |j| j.to_string()),
        m.speed_factor.map_or("-".into(), |s| s.to_string()),
        list(m.supported_features),
        list(m.mandatory_features),
        key.unwrap_or("-".into()),
    ];
    if fields.iter().any(|f| f.contains(char::is_whitespace)) {
        return Err("a value has whitespace, which no machine field can hold".into());
    }
    Ok(LixMachine {
        name: name.to_string(),
        line: Some(fields.join(" ")),
    })
}

/// What Nix would make of the first lines of a Lix TOML file, for the error.
pub(super) fn as_nix_reads_it(text: &str) -> String {
    let examples: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .take(2)
        .map(|l| {
            let mut words = l.split_whitespace();
            let first = words.next().unwrap_or_default();
            let uri = super::store_uri::normalise(first);
            match words.next() {
                Some(systems) => format!("'{uri}' with systems '{systems}'"),
                None => format!("'{uri}'"),
            }
        })
        .collect();
    examples.join(", ")
}

/// Line of `[machines.<name>]` in `text` (0-based), for locations.
pub(super) fn header_line(text: &str, name: &str) -> Option<usize> {
    let wanted = [
        format!("[machines.{name}]"),
        format!("[machines.\"{name}\"]"),
    ];
    text.lines().position(|l| {
        let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        wanted.iter().any(|w| l.starts_with(w.as_str()))
    })
}

/// Order for reporting: as written (TOML tables are read sorted).
pub(super) fn in_file_order(text: &str, machines: Vec<LixMachine>) -> Vec<LixMachine> {
    let mut keyed: BTreeMap<(usize, String), LixMachine> = BTreeMap::new();
    for m in machines {
        let line = header_line(text, &m.name).unwrap_or(usize::MAX);
        keyed.insert((line, m.name.clone()), m);
    }
    keyed.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_is_not_toml() {
        assert_eq!(read("ssh://b1 x86_64-linux"), LixText::Classic);
        assert_eq!(read("machines x86_64-linux"), LixText::Classic);
        assert_eq!(read(""), LixText::Classic);
    }

    #[test]
    fn a_full_machine_becomes_one_classic_line() {
        let text = "version = 1\n[machines.scratchy]\nuri = \"nix@scratchy\"\nsystem-types = [\"i686-linux\"]\nssh-key = \"/k\"\njobs = 8\nspeed-factor = 3.0\nsupported-features = [\"kvm\"]\nmandatory-features = [\"benchmark\"]\nssh-public-host-key = \"ssh-ed25519 AAAA nix@scratchy\"\n";
        let LixText::Toml(Ok(machines)) = read(text) else {
            panic!("{:?}", read(text))
        };
        assert_eq!(
            machines,
            vec![LixMachine {
                name: "scratchy".into(),
                line: Some(format!(
                    "nix@scratchy i686-linux /k 8 3 kvm benchmark {}",
                    base64::engine::general_purpose::STANDARD
                        .encode("ssh-ed25519 AAAA nix@scratchy")
                )),
            }]
        );
    }

    #[test]
    fn refusals_as_lix_words_them() {
        let err = |text: &str| match read(text) {
            LixText::Toml(Err(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(err("[machines.a]").contains("uri must be present"));
        assert!(err("version = 42\nmachines = {}\n").contains("not 42"));
        assert!(err("[machines.a]\nuri = \"x\"\nextra-key = 3\n").contains("extra-key"));
        assert!(err("[machines.a]\nuri = \"x\"\njobs = -3\n").contains("jobs must be >= 0"));
        assert!(err("machines.a = \"x\"\n").contains("must be a table"));
        assert!(err("[[machines]]\nuri = \"x\"\n").contains("table of name"));
    }

    #[test]
    fn disabled_machines_are_kept_out() {
        let LixText::Toml(Ok(machines)) = read(
            "[machines.a]\nuri = \"ssh://a\"\nenable = false\n[machines.b]\nuri = \"ssh://b\"\n",
        ) else {
            panic!()
        };
        assert_eq!(machines.len(), 2);
        assert_eq!(machines[0].line, None);
        assert_eq!(machines[1].line.as_deref(), Some("ssh://b - - - - - - -"));
    }

    #[test]
    fn what_nix_makes_of_it() {
        assert_eq!(
            as_nix_reads_it("version = 1\n[machines.b1]\n"),
            "'ssh://version' with systems '=', 'ssh://[machines.b1]'"
        );
    }
}
