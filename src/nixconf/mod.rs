//! nix.conf as Nix reads it: `$NIX_CONF_DIR/nix.conf`, then the user files
//! (`NIX_USER_CONF_FILES`, or the XDG config dirs), then `NIX_CONFIG`; later
//! settings override earlier ones; `include` / `!include` are followed.
//!
//! Where Nix rejects a whole file for one bad line, rbtop reports that line
//! with its location and keeps the rest
//! and keeps reading.

use std::path::{Path, PathBuf};

mod capacity;

pub use capacity::{LocalCapacity, Valued};

use crate::bounds;
use crate::diagnostics::{Diagnostic, Location, Origin};
use crate::include_stack::IncludeStack;
use crate::nix_text::words;

/// The environment that decides which nix.conf files exist, injectable for tests.
#[derive(Clone, Debug, Default)]
pub struct NixConfEnv {
    /// `$NIX_CONF_DIR`, default `/etc/nix`.
    pub conf_dir: PathBuf,
    /// User files, highest priority first (`NIX_USER_CONF_FILES`, or
    /// `$XDG_CONFIG_HOME/nix/nix.conf` then each `$XDG_CONFIG_DIRS/nix/nix.conf`).
    pub user_files: Vec<PathBuf>,
    /// `$NIX_CONFIG`.
    pub nix_config: Option<String>,
}

impl NixConfEnv {
    /// From this process's environment (`HOME` falling back to the passwd entry).
    pub fn from_process() -> Self {
        Self::from_vars(|name| match (name, std::env::var(name)) {
            (_, Ok(value)) => Some(value),
            ("HOME", Err(_)) => dirs::home_dir().map(|h| h.to_string_lossy().into_owned()),
            _ => None,
        })
    }

    /// From any variable lookup, the way Nix computes it.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        // Empty counts as unset for these (Nix's getEnvNonEmpty, the XDG spec);
        // a set-but-empty NIX_USER_CONF_FILES really means "no user files".
        let non_empty = |name: &str| var(name).filter(|v| !v.is_empty());
        let home = non_empty("HOME").map(PathBuf::from);
        let user_files = match var("NIX_USER_CONF_FILES") {
            Some(files) => files
                .split(':')
                .filter(|f| !f.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => {
                let config_home = non_empty("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| home.as_ref().map(|h| h.join(".config")));
                let config_dirs = var("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
                config_home
                    .into_iter()
                    .chain(
                        config_dirs
                            .split(':')
                            .filter(|d| !d.is_empty())
                            .map(PathBuf::from),
                    )
                    .map(|dir| dir.join("nix").join("nix.conf"))
                    .collect()
            }
        };
        NixConfEnv {
            conf_dir: non_empty("NIX_CONF_DIR")
                .map_or_else(|| PathBuf::from("/etc/nix"), PathBuf::from),
            user_files,
            nix_config: var("NIX_CONFIG"),
        }
    }
}

/// One `name = value` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub name: String,
    /// The value as Nix sees it: the words after `=`, joined by single spaces.
    pub value: String,
    pub location: Location,
    /// The whole line, and the byte offset where the value starts in it.
    pub line: String,
    pub value_start: usize,
}

/// What happened when a nix.conf file was looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    Read,
    Missing,
    Unreadable(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsultedFile {
    pub path: PathBuf,
    pub state: FileState,
}

#[derive(Debug, Default)]
pub struct NixConf {
    /// Every setting line, in the order Nix applies them.
    pub settings: Vec<Setting>,
    /// The top-level files looked for, in order.
    pub files: Vec<ConsultedFile>,
    pub diagnostics: Vec<Diagnostic>,
}

/// The pieces that make up the effective `builders` value.
#[derive(Debug, PartialEq)]
pub struct BuildersChain<'a> {
    /// The last `builders = ...`; `None` means Nix's default `@/etc/nix/machines`.
    pub base: Option<&'a Setting>,
    /// `extra-builders` lines after it, in order.
    pub extras: Vec<&'a Setting>,
}

impl NixConf {
    pub fn load(env: &NixConfEnv) -> Self {
        let mut conf = NixConf::default();
        let system_file = env.conf_dir.join("nix.conf");
        // Lowest priority first: the user files are listed highest first.
        for path in std::iter::once(&system_file).chain(env.user_files.iter().rev()) {
            let state = conf.apply_file(path, env, &mut IncludeStack::rooted_at(path), None);
            conf.files.push(ConsultedFile {
                path: path.clone(),
                state,
            });
        }
        if let Some(text) = &env.nix_config {
            conf.apply_text(
                text,
                Origin::NixConfigEnv,
                env,
                &mut IncludeStack::default(),
            );
        }
        conf
    }

    /// The last value set for `name` (ignoring `extra-` lines).
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }

    /// The value of a list setting (`extra-platforms`, `system-features`, ...)
    /// with its `extra-` appends, as Nix computes it.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let extra = format!("extra-{name}");
        let mut value: Option<Vec<String>> = None;
        for s in &self.settings {
            if s.name == name {
                value = Some(s.value.split_whitespace().map(str::to_string).collect());
            } else if s.name == extra {
                value
                    .get_or_insert_with(Vec::new)
                    .extend(s.value.split_whitespace().map(str::to_string));
            }
        }
        value
    }

    pub fn builders(&self) -> BuildersChain<'_> {
        let mut chain = BuildersChain {
            base: None,
            extras: Vec::new(),
        };
        for s in &self.settings {
            match s.name.as_str() {
                "builders" => {
                    chain.base = Some(s);
                    chain.extras.clear();
                }
                "extra-builders" => chain.extras.push(s),
                _ => {}
            }
        }
        chain
    }

    /// Read one file; `include_stack` must already hold it.
    fn apply_file(
        &mut self,
        path: &Path,
        env: &NixConfEnv,
        include_stack: &mut IncludeStack,
        included_from: Option<&Location>,
    ) -> FileState {
        let bytes = match bounds::read_regular_file(path, bounds::NIX_CONF_FILE) {
            Ok(bytes) => bytes,
            Err(e) if e.is_missing() => return FileState::Missing,
            Err(e) => {
                let at = included_from
                    .cloned()
                    .unwrap_or_else(|| Location::new(Origin::file(path), 0));
                self.diagnostics
                    .push(Diagnostic::warning(at, format!("{e}: skipped")));
                return FileState::Unreadable(e.to_string());
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        self.apply_text(&text, Origin::file(path), env, include_stack);
        FileState::Read
    }

    fn apply_text(
        &mut self,
        text: &str,
        origin: Origin,
        env: &NixConfEnv,
        include_stack: &mut IncludeStack,
    ) {
        for (index, line) in text.split('\n').enumerate() {
            let location = Location::new(origin.clone(), index + 1);
            self.apply_line(line, location, env, include_stack);
        }
    }

    fn apply_line(
        &mut self,
        line: &str,
        location: Location,
        env: &NixConfEnv,
        include_stack: &mut IncludeStack,
    ) {
        let code = line.find('#').map_or(line, |hash| &line[..hash]);
        let words = words(code);
        let Some(&(first_at, first)) = words.first() else {
            return;
        };
        let illegal = |why: &str| {
            Diagnostic::error(
                location.at_column(line[..first_at].chars().count() + 1),
                format!(
                    "syntax error in configuration line: {why} (Nix rejects this whole file, \
                     and every nix command fails)"
                ),
            )
            .with_snippet(line)
        };
        if words.len() < 2 {
            self.diagnostics
                .push(illegal("expected 'name = value' with spaces around '='"));
            return;
        }
        if first == "include" || first == "!include" {
            if words.len() != 2 {
                self.diagnostics
                    .push(illegal("an include takes exactly one path"));
                return;
            }
            self.include(
                words[1].1,
                first == "!include",
                &location,
                line,
                env,
                include_stack,
            );
            return;
        }
        if words[1].1 != "=" {
            self.diagnostics.push(illegal(
                "expected 'name = value'; Nix splits on whitespace, so '=' needs spaces around it",
            ));
            return;
        }
        let value_start = words.get(2).map_or(code.trim_end().len(), |w| w.0);
        self.settings.push(Setting {
            name: first.to_string(),
            value: words[2..].iter().map(|w| w.1).collect::<Vec<_>>().join(" "),
            location,
            line: code.to_string(),
            value_start,
        });
    }

    fn include(
        &mut self,
        target: &str,
        ignore_missing: bool,
        location: &Location,
        line: &str,
        env: &NixConfEnv,
        include_stack: &mut IncludeStack,
    ) {
        let Origin::File(including) = &location.origin else {
            self.diagnostics.push(
                Diagnostic::error(
                    location.clone(),
                    format!("can only include configuration '{target}' from files"),
                )
                .with_snippet(line),
            );
            return;
        };
        // Nix's absPath: relative to the including file, `.` and `..` folded.
        // Nix does not expand `~` here (Lix does): `~/x` is a directory named `~`.
        let path = path_clean::clean(including.parent().unwrap_or(Path::new("/")).join(target));
        if target.starts_with('~') {
            self.diagnostics.push(
                Diagnostic::warning(
                    location.clone(),
                    format!(
                        "Nix does not expand '~' in includes: it reads '{}'; write the full path",
                        path.display()
                    ),
                )
                .with_snippet(line),
            );
        }
        if let Err(refused) = include_stack.enter(&path) {
            self.diagnostics
                .push(Diagnostic::error(location.clone(), refused.to_string()).with_snippet(line));
            return;
        }
        let state = self.apply_file(&path, env, include_stack, Some(location));
        include_stack.leave();
        match state {
            FileState::Missing if !ignore_missing => self.diagnostics.push(
                Diagnostic::error(
                    location.clone(),
                    format!(
                        "file '{}' included from '{}' not found (Nix rejects the including \
                         file and every nix command fails; use '!include' for an optional file)",
                        path.display(),
                        including.display()
                    ),
                )
                .with_snippet(line),
            ),
            _ => {}
        }
    }
}
