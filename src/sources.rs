//! Which machines text to read, resolved the way Nix resolves `builders`,
//! and a record of every place looked at (for the empty state).

use std::path::PathBuf;

use crate::diagnostics::{Diagnostic, Location, Origin};
use crate::machines::{MachinesText, Parsed, Parser};
use crate::nix_version::NixVersion;
use crate::nixconf::{FileState, NixConf, NixConfEnv, Setting};
use crate::system;

/// Where the machine list comes from, once flags and file are layered.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceChoice {
    /// A `builders`-syntax string (`--builders`, or the config file's `builders`).
    Builders { text: String, origin: Origin },
    /// A machines file (`--machines`, or the config file's `file`).
    File(PathBuf),
    /// nix.conf's `builders` setting, as Nix resolves it.
    NixConf,
}

/// The machine list and how it was found.
#[derive(Debug)]
pub struct Resolved {
    pub parsed: Parsed,
    /// Each place consulted, in order, as a short human sentence.
    pub consulted: Vec<String>,
    /// What an unset systems column means here.
    pub local_system: String,
    /// nix.conf as read (also used for the local machine's own capacity).
    pub nix_conf: NixConf,
    /// Nix's default machines file here, `$NIX_CONF_DIR/machines`.
    pub default_machines_file: PathBuf,
}

impl Resolved {
    pub fn has_errors(&self) -> bool {
        self.parsed.errors().next().is_some()
    }
}

/// `local_nix`: the Nix version on this machine ([`NixVersion::local`]), if known.
pub fn resolve(choice: &SourceChoice, env: &NixConfEnv, local_nix: Option<NixVersion>) -> Resolved {
    resolve_as(choice, env, local_nix, false)
}

/// [`resolve`] for a local Nix that is Lix when `lix` (see
/// [`crate::nix_version::local_with_flavour`]): Lix's TOML machines format
/// is then read, not refused.
pub fn resolve_as(
    choice: &SourceChoice,
    env: &NixConfEnv,
    local_nix: Option<NixVersion>,
    lix: bool,
) -> Resolved {
    let nix_conf = NixConf::load(env);
    let local_system = system::local(&nix_conf);
    let mut parser = Parser::new(vec![local_system.clone()])
        .with_local_nix(local_nix)
        .with_lix(lix);
    let mut consulted = Vec::new();

    match choice {
        SourceChoice::Builders { text, origin } => {
            consulted.push(format!("{origin}: {}", quote_or_empty(text)));
            parser.parse_text(&MachinesText::whole(text, origin.clone()));
        }
        SourceChoice::File(path) => {
            consulted.push(format!("--machines {}", path.display()));
            parser.parse_file(path);
        }
        SourceChoice::NixConf => {
            describe_nix_conf(&nix_conf, env, &mut consulted);
            read_nix_conf_builders(&nix_conf, env, &mut parser, &mut consulted);
        }
    }

    let mut parsed = parser.finish();
    if matches!(choice, SourceChoice::NixConf) {
        // nix.conf problems stop Nix before it reads any builder: show them first.
        let mut all = nix_conf.diagnostics.clone();
        all.extend(extra_builders_warnings(&nix_conf));
        all.append(&mut parsed.diagnostics);
        parsed.diagnostics = all;
    }
    Resolved {
        parsed,
        consulted,
        local_system,
        nix_conf,
        default_machines_file: env.conf_dir.join("machines"),
    }
}

fn quote_or_empty(text: &str) -> String {
    if text.trim().is_empty() {
        "empty (no builders)".to_string()
    } else {
        format!("'{text}'")
    }
}

fn describe_nix_conf(conf: &NixConf, env: &NixConfEnv, consulted: &mut Vec<String>) {
    for file in &conf.files {
        let state = match &file.state {
            FileState::Read => "read".to_string(),
            FileState::Missing => "not found".to_string(),
            FileState::Unreadable(why) => format!("unreadable ({why})"),
        };
        consulted.push(format!("{}: {state}", file.path.display()));
    }
    consulted.push(match env.nix_config {
        Some(_) => "NIX_CONFIG: set".to_string(),
        None => "NIX_CONFIG: not set".to_string(),
    });
}

fn setting_text(setting: &Setting) -> MachinesText<'_> {
    MachinesText {
        text: &setting.line,
        origin: setting.location.origin.clone(),
        first_line: setting.location.line,
        first_line_start: setting.value_start,
    }
}

fn read_nix_conf_builders(
    conf: &NixConf,
    env: &NixConfEnv,
    parser: &mut Parser,
    consulted: &mut Vec<String>,
) {
    let chain = conf.builders();
    match chain.base {
        Some(base) => {
            consulted.push(format!(
                "builders = {} ({})",
                quote_or_empty(&base.value),
                base.location
            ));
            parser.parse_text(&setting_text(base));
        }
        None => {
            // Nix's default is `@$NIX_CONF_DIR/machines`.
            let default = env.conf_dir.join("machines");
            consulted.push(format!(
                "builders not set: Nix's default @{}{}",
                default.display(),
                if default.exists() { "" } else { " (not found)" }
            ));
            // Its absence is the normal "no remote builders" case: neither an
            // error nor a warning; the empty state explains it.
            if default.exists() {
                parser.parse_file(&default);
            }
        }
    }
    for extra in chain.extras {
        consulted.push(format!(
            "extra-builders = {} ({})",
            quote_or_empty(&extra.value),
            extra.location
        ));
        parser.parse_text(&setting_text(extra));
    }
}

/// Nix ≤ 2.35 has no `extra-builders` (`builders` is a plain string setting,
/// not a list), and says only "unknown setting". rbtop reads them anyway, as
/// the operator meant, and says Nix will not.
fn extra_builders_warnings(conf: &NixConf) -> Vec<Diagnostic> {
    conf.builders()
        .extras
        .iter()
        .map(|s| {
            Diagnostic::warning(
                Location::new(s.location.origin.clone(), s.location.line),
                "Nix does not know `extra-builders` (it warns \"unknown setting\" and ignores \
                 it): rbtop lists these machines, but Nix will not build on them; move them \
                 into `builders`",
            )
            .with_snippet(&s.line)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_flag_is_read_as_text() {
        let choice = SourceChoice::Builders {
            text: "ssh://a x86_64-linux; ssh://b".into(),
            origin: Origin::BuildersFlag,
        };
        let r = resolve(&choice, &NixConfEnv::default(), None);
        let uris: Vec<_> = r.parsed.machines.iter().map(|m| m.uri()).collect();
        assert_eq!(uris, ["ssh://a", "ssh://b"]);
        assert_eq!(r.parsed.machines[0].location.to_string(), "--builders");
    }
}
