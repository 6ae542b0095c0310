//! The layout of machines text: lines, `#` comments, `;` separators and
//! `@file` includes, as Nix ≥ 2.30 splits them (newlines, then comments, then
//! `;`). Unlike Nix, a bad entry never hides the others, a missing include is
//! reported, and include cycles are detected.

use std::hash::{BuildHasher, RandomState};
use std::path::Path;

use super::Machine;
use super::entry::{self, Entry};
use super::lix_toml::{self, LixText};
use crate::bounds;
use crate::diagnostics::{Diagnostic, Location, Origin};
use crate::include_stack::IncludeStack;
use crate::nix_text::{self, WHITESPACE as NIX_WHITESPACE};
use crate::nix_version::NixVersion;

/// Machines text and where it came from.
pub struct MachinesText<'a> {
    pub text: &'a str,
    pub origin: Origin,
    /// Line number of the first line of `text` in its origin (1-based).
    pub first_line: usize,
    /// Byte offset in the first line where the machines text starts; lets a
    /// `builders = ...` value of nix.conf be parsed inside its whole line, so
    /// columns and snippets point into the real file.
    pub first_line_start: usize,
}

impl<'a> MachinesText<'a> {
    /// A whole file or string, read from its first line.
    pub fn whole(text: &'a str, origin: Origin) -> Self {
        MachinesText {
            text,
            origin,
            first_line: 1,
            first_line_start: 0,
        }
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub machines: Vec<Machine>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

/// Accumulates machines and diagnostics over several texts (nix.conf's
/// `builders` plus `extra-builders`, includes, ...).
pub struct Parser {
    default_systems: Vec<String>,
    /// The Nix that will read these lines, when known: gates warnings about
    /// behaviour that changed between releases.
    local_nix: Option<NixVersion>,
    /// The local Nix is Lix, which reads its own TOML machines format.
    lix: bool,
    include_stack: IncludeStack,
    /// Each URI's first machine, as an index into `out.machines`, found by
    /// hashing the URI it points at: a million-line file keeps no second
    /// copy of its URIs or locations.
    first_seen: hashbrown::HashTable<usize>,
    uri_hasher: RandomState,
    out: Parsed,
}

/// Byte ranges of the `;`-separated pieces of `s`.
fn pieces(s: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    s.split(';').map(move |piece| {
        let start = offset;
        offset += piece.len() + 1;
        (start, piece)
    })
}

impl Parser {
    /// `default_systems`: what an unset column #1 means (the local `system`).
    pub fn new(default_systems: Vec<String>) -> Self {
        Parser {
            default_systems,
            local_nix: None,
            lix: false,
            include_stack: IncludeStack::default(),
            first_seen: hashbrown::HashTable::new(),
            uri_hasher: RandomState::new(),
            out: Parsed::default(),
        }
    }

    /// Tell the parser which Nix will read these lines.
    pub fn with_local_nix(mut self, version: Option<NixVersion>) -> Self {
        self.local_nix = version;
        self
    }

    /// Tell the parser that the local Nix is Lix (`nix-store --version`
    /// says `Lix`): its TOML machines format is then read as Lix reads it.
    pub fn with_lix(mut self, lix: bool) -> Self {
        self.lix = lix;
        self
    }

    pub fn finish(self) -> Parsed {
        self.out
    }

    /// Parse text in the `builders` syntax.
    pub fn parse_text(&mut self, text: &MachinesText) {
        if let LixText::Toml(read) = lix_toml::read(text.text) {
            self.lix_toml(text, read);
            return;
        }
        for (index, line) in text.text.split('\n').enumerate() {
            let start = if index == 0 { text.first_line_start } else { 0 };
            let location = Location::new(text.origin.clone(), text.first_line + index);
            self.parse_line(line, start, &location);
        }
    }

    /// Read a machines file named explicitly (`--machines`): unlike an `@`
    /// include, a missing file is an error.
    pub fn parse_file(&mut self, path: &Path) {
        let location = Location::new(Origin::file(path), 0);
        self.read_file(path, &location, true);
    }

    fn parse_line(&mut self, line: &str, start: usize, location: &Location) {
        let first_new = self.out.diagnostics.len();
        self.parse_line_entries(line, start, location);
        self.cap_diagnostics_of_line(first_new, location);
    }

    /// Keep at most [`bounds::DIAGNOSTICS_PER_LINE`] diagnostics about one
    /// line (those of files it includes are not counted), then one saying
    /// how many more there were: 20,000 entries on a line must not give
    /// 20,000 warnings.
    fn cap_diagnostics_of_line(&mut self, first_new: usize, location: &Location) {
        let limit = bounds::DIAGNOSTICS_PER_LINE.limit;
        let on_this_line = |d: &Diagnostic| {
            d.location.line == location.line && d.location.origin == location.origin
        };
        let new = &self.out.diagnostics[first_new..];
        if new.iter().filter(|d| on_this_line(d)).count() <= limit {
            return;
        }
        let mut kept = 0;
        let (mut errors, mut warnings) = (0, 0);
        let tail = self.out.diagnostics.split_off(first_new);
        for d in tail {
            if !on_this_line(&d) {
                self.out.diagnostics.push(d);
            } else if kept < limit {
                kept += 1;
                self.out.diagnostics.push(d);
            } else if d.is_error() {
                errors += 1;
            } else {
                warnings += 1;
            }
        }
        let message = format!(
            "{errors} more error(s) and {warnings} more warning(s) about this line not shown \
             (rbtop shows at most {limit} per line)"
        );
        self.out.diagnostics.push(if errors > 0 {
            Diagnostic::error(location.clone(), message)
        } else {
            Diagnostic::warning(location.clone(), message)
        });
    }

    fn parse_line_entries(&mut self, line: &str, start: usize, location: &Location) {
        let content = &line[start..];
        let code = content.find('#').map_or(content, |hash| &content[..hash]);
        self.warn_if_old_nix_splits_differently(line, start, code, location);

        for (offset, piece) in pieces(code) {
            let text = nix_text::trim(piece);
            if text.is_empty() {
                continue;
            }
            let piece_start =
                start + offset + (piece.len() - piece.trim_start_matches(NIX_WHITESPACE).len());
            let column = line[..piece_start].chars().count() + 1;
            if let Some(path) = text.strip_prefix('@') {
                self.include(nix_text::trim(path), &location.at_column(column), line);
            } else {
                let entry = Entry {
                    text,
                    line,
                    start: piece_start,
                    location: location.clone(),
                };
                self.add_entry(&entry);
            }
        }
    }

    /// Lix's TOML: its machines when this is Lix, else one clear error
    /// rather than the garbage machines Nix would make of its lines.
    fn lix_toml(&mut self, text: &MachinesText, read: Result<Vec<lix_toml::LixMachine>, String>) {
        let first = Location::new(text.origin.clone(), text.first_line);
        if !self.lix {
            self.out.diagnostics.push(Diagnostic::error(
                first,
                format!(
                    "this is Lix's TOML machines format (Lix ≥ 2.95), and the Nix here is not \
                     Lix: Nix reads it line by line, as machines {} and so on, none of which \
                     can build anything; write one machine per line for Nix",
                    lix_toml::as_nix_reads_it(text.text)
                ),
            ));
            return;
        }
        let machines = match read {
            Ok(machines) => machines,
            Err(why) => {
                self.out.diagnostics.push(Diagnostic::error(
                    first,
                    format!("Lix's TOML machines format: {why}; Lix refuses the whole file"),
                ));
                return;
            }
        };
        for machine in lix_toml::in_file_order(text.text, machines) {
            let Some(line) = machine.line else { continue };
            let index = lix_toml::header_line(text.text, &machine.name).unwrap_or(0);
            let entry = Entry {
                text: &line,
                line: &line,
                start: 0,
                location: Location::new(text.origin.clone(), text.first_line + index),
            };
            self.add_entry(&entry);
        }
    }

    fn add_entry(&mut self, entry: &Entry) {
        let (machine, diagnostics) = entry::parse(entry, &self.default_systems, self.local_nix);
        self.out.diagnostics.extend(diagnostics);
        let Some(machine) = machine else { return };
        let machines = &self.out.machines;
        let hash = self.uri_hasher.hash_one(machine.uri());
        let found = self
            .first_seen
            .find(hash, |&i| machines[i].uri() == machine.uri())
            .copied();
        if let Some(first) = found {
            let first = &self.out.machines[first].location;
            self.out.diagnostics.push(
                Diagnostic::warning(
                    machine.location.clone(),
                    format!(
                        "'{}' is listed again (first at {first}); Nix keeps both rows but \
                         they share one set of job-slot locks",
                        machine.uri()
                    ),
                )
                .with_snippet(entry.line),
            );
        } else {
            let (machines, hasher) = (&self.out.machines, &self.uri_hasher);
            self.first_seen.insert_unique(hash, machines.len(), |&i| {
                hasher.hash_one(machines[i].uri())
            });
        }
        self.out.machines.push(machine);
    }

    /// Nix before 2.30 split on `;` before cutting comments, so a `;` inside a
    /// comment started a new entry there.
    fn warn_if_old_nix_splits_differently(
        &mut self,
        line: &str,
        start: usize,
        code: &str,
        location: &Location,
    ) {
        let content = &line[start..];
        if code.len() == content.len() {
            return; // no comment on this line
        }
        let old: Vec<&str> = content
            .split(';')
            .map(|p| nix_text::trim(p.find('#').map_or(p, |h| &p[..h])))
            .filter(|p| !p.is_empty())
            .collect();
        let new: Vec<&str> = code
            .split(';')
            .map(nix_text::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if old.len() <= new.len() {
            return;
        }
        let extra: Vec<String> = old[new.len()..].iter().map(|e| format!("'{e}'")).collect();
        let semicolon = start + code.len() + content[code.len()..].find(';').unwrap_or(0);
        self.out.diagnostics.push(
            Diagnostic::warning(
                location.at_column(line[..semicolon].chars().count() + 1),
                format!(
                    "a ';' inside this comment ends the comment for Nix older than 2.30 and \
                     for Lix (every version), which split on ';' first and would read {} as \
                     machine {}; remove the ';' if such a Nix reads this file",
                    extra.join(", "),
                    if extra.len() == 1 { "entry" } else { "entries" }
                ),
            )
            .with_snippet(line),
        );
    }

    fn include(&mut self, path: &str, at: &Location, line: &str) {
        if path.is_empty() {
            self.out.diagnostics.push(
                Diagnostic::warning(at.clone(), "'@' names no file; Nix skips it")
                    .with_snippet(line),
            );
            return;
        }
        let path = Path::new(path);
        if path.is_relative() {
            let cwd = std::env::current_dir().unwrap_or_default();
            self.out.diagnostics.push(
                Diagnostic::warning(
                    at.clone(),
                    format!(
                        "'@{}' is relative: Nix reads it from the current directory of \
                         whichever process parses it (here {}; the nix-daemon's is /); use an \
                         absolute path",
                        path.display(),
                        cwd.display()
                    ),
                )
                .with_snippet(line),
            );
        }
        self.read_file(path, &at.clone(), false);
    }

    fn read_file(&mut self, path: &Path, at: &Location, missing_is_error: bool) {
        let text = match bounds::read_regular_file(path, bounds::MACHINES_FILE) {
            // Valid UTF-8 (the usual case) is taken as is, not copied.
            Ok(bytes) => String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            Err(e) if e.is_missing() && !missing_is_error => {
                self.out.diagnostics.push(Diagnostic::warning(
                    at.clone(),
                    format!(
                        "machines file '{}' does not exist; Nix skips it without a word",
                        path.display()
                    ),
                ));
                return;
            }
            Err(e) => {
                self.out.diagnostics.push(Diagnostic::error(
                    at.clone(),
                    format!("cannot read machines file: {e}"),
                ));
                return;
            }
        };
        // Checked after reading: a file on the stack was readable, so a file
        // that is not cannot close a cycle.
        if let Err(refused) = self.include_stack.enter(path) {
            self.out
                .diagnostics
                .push(Diagnostic::error(at.clone(), refused.to_string()));
            return;
        }
        self.parse_text(&MachinesText::whole(&text, Origin::file(path)));
        self.include_stack.leave();
    }
}
