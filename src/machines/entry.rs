//! One machines entry (the text between separators) → a [`Machine`], or a
//! located error naming the column, its value and what was expected.

use std::collections::BTreeSet;

use super::host_key::{self, HostKeyCheck};
use super::store_uri;
use super::{COLUMN_NAMES, Machine};
use crate::diagnostics::{Diagnostic, Location};
use crate::nix_text;
use crate::nix_version::NixVersion;

/// An entry and where it sits in its source line.
pub(super) struct Entry<'a> {
    /// The trimmed entry text.
    pub text: &'a str,
    /// The whole source line, for snippets and columns.
    pub line: &'a str,
    /// Byte offset of `text` within `line`.
    pub start: usize,
    pub location: Location,
}

struct Field<'a> {
    text: &'a str,
    /// 1-based character column within the source line.
    column: usize,
}

impl Entry<'_> {
    fn fields(&self) -> Vec<Field<'_>> {
        nix_text::words(self.text)
            .into_iter()
            .map(|(offset, text)| Field {
                text,
                column: self.column_of(offset),
            })
            .collect()
    }

    fn column_of(&self, offset_in_text: usize) -> usize {
        self.line[..self.start + offset_in_text].chars().count() + 1
    }

    fn error_at(&self, column: usize, message: String) -> Diagnostic {
        Diagnostic::error(self.location.at_column(column), message).with_snippet(self.line)
    }

    fn warning_at(&self, column: usize, message: String) -> Diagnostic {
        Diagnostic::warning(self.location.at_column(column), message).with_snippet(self.line)
    }
}

/// A field is unset when missing or `-`.
fn set<'f, 'a>(fields: &'f [Field<'a>], index: usize) -> Option<&'f Field<'a>> {
    fields.get(index).filter(|f| f.text != "-")
}

fn comma_set(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Nix learned `host:port` in store URIs in this release.
const PORTS_IN_URIS: NixVersion = NixVersion::new(2, 31, 0);
/// 2.31 parsed store URIs by RFC 3986 alone; 2.32 took unbracketed IPv6 back.
const UNBRACKETED_IPV6_AGAIN: NixVersion = NixVersion::new(2, 32, 0);

/// Parse one entry. Returns the machine (or `None` if the entry is rejected)
/// and every diagnostic about it.
pub(super) fn parse(
    entry: &Entry,
    default_systems: &[String],
    local_nix: Option<NixVersion>,
) -> (Option<Machine>, Vec<Diagnostic>) {
    let mut notes = Vec::new();
    match parse_fields(entry, default_systems, local_nix, &mut notes) {
        Ok(machine) => (Some(machine), notes),
        Err(error) => {
            notes.push(error);
            (None, notes)
        }
    }
}

fn parse_fields(
    entry: &Entry,
    default_systems: &[String],
    local_nix: Option<NixVersion>,
    notes: &mut Vec<Diagnostic>,
) -> Result<Machine, Diagnostic> {
    let fields = entry.fields();
    let describe = |i: usize, f: &Field| format!("{} (column #{i}) '{}'", COLUMN_NAMES[i], f.text);

    let uri_field = set(&fields, 0).ok_or_else(|| {
        entry.error_at(
            fields.first().map_or(1, |f| f.column),
            "no store URI: column #0 must name the builder (e.g. ssh://builder or \
             nix@builder:2222), not '-'"
                .to_string(),
        )
    })?;
    let store = store_uri::parse(uri_field.text)
        .map_err(|why| entry.error_at(uri_field.column, format!("store URI (column #0): {why}")))?;
    if store.unbracketed_ipv6 && local_nix.is_none_or(|v| v < UNBRACKETED_IPV6_AGAIN) {
        let local = local_nix.map_or("Nix version unknown here".to_string(), |v| {
            format!("this machine has Nix {v}")
        });
        notes.push(entry.warning_at(
            uri_field.column,
            format!(
                "an IPv6 address without brackets is read by Nix ≥ 2.32 and ≤ 2.30 but refused                  by Nix 2.31 ({local}); write it in brackets ('[{}]') for every version",
                store.host.as_deref().unwrap_or_default(),
            ),
        ));
    }
    let old_nix = local_nix.is_none_or(|v| v < PORTS_IN_URIS);
    if let (Some(port), true, true) = (store.port, store.is_ssh(), old_nix) {
        let local = local_nix.map_or("Nix version unknown here".to_string(), |v| {
            format!("this machine has Nix {v}")
        });
        notes.push(entry.warning_at(
            uri_field.column,
            format!(
                "a port in the store URI needs Nix ≥ 2.31 ({local}): older Nix passes '{}:{port}' \
                 to ssh as a host name and cannot connect; use an ssh_config Host alias or \
                 NIX_SSHOPTS=-p{port} instead",
                store.host.as_deref().unwrap_or_default(),
            ),
        ));
    }

    let systems = match set(&fields, 1) {
        Some(f) => {
            let systems = comma_set(f.text);
            for system in systems.iter().filter(|s| !s.contains('-')) {
                notes.push(entry.warning_at(
                    f.column,
                    format!(
                        "system '{system}' has no '-': Nix system types look like \
                         'x86_64-linux' or 'aarch64-darwin', so no derivation will match it"
                    ),
                ));
            }
            systems
        }
        None => default_systems.to_vec(),
    };

    let max_jobs = match set(&fields, 3) {
        Some(f) => {
            let jobs = f
                .text
                .parse::<u32>()
                .ok()
                .filter(|_| !f.text.starts_with('-'))
                .ok_or_else(|| {
                    entry.error_at(
                        f.column,
                        format!(
                            "{} is not a whole number of jobs (0 to {}); Nix: failed to \
                             convert column #3 to 'unsigned int'",
                            describe(3, f),
                            u32::MAX
                        ),
                    )
                })?;
            if jobs == 0 {
                notes.push(entry.warning_at(
                    f.column,
                    "max jobs is 0: Nix never sends a build to this machine".to_string(),
                ));
            }
            jobs
        }
        None => 1,
    };

    let speed_factor = match set(&fields, 4) {
        Some(f) => {
            let value = f.text.parse::<f64>().map_err(|_| {
                entry.error_at(
                    f.column,
                    format!(
                        "{} is not a number; expected a non-negative decimal such as 1 or \
                         2.5 (Nix: failed to convert column #4 to 'float')",
                        describe(4, f)
                    ),
                )
            })?;
            if value < 0.0 {
                return Err(entry.error_at(
                    f.column,
                    format!(
                        "{} is negative: speed factor must be >= 0 (0 means 1)",
                        describe(4, f)
                    ),
                ));
            }
            if !value.is_finite() {
                // Nix accepts these, but its ranking (load / speed) then degenerates.
                notes.push(entry.warning_at(
                    f.column,
                    format!(
                        "{}: Nix accepts it, but ranks machines by load / speed factor, \
                         which this makes meaningless",
                        describe(4, f)
                    ),
                ));
            }
            if value == 0.0 { 1.0 } else { value }
        }
        None => 1.0,
    };

    let public_host_key = match set(&fields, 7) {
        Some(f) => {
            match host_key::check(f.text) {
                Err(why) => {
                    return Err(entry.error_at(
                        f.column,
                        format!(
                            "public host key (column #7) {why}; expected `base64 -w0` of the \
                             host's .pub line"
                        ),
                    ));
                }
                Ok(HostKeyCheck::Suspicious(why)) => notes
                    .push(entry.warning_at(f.column, format!("public host key (column #7) {why}"))),
                Ok(HostKeyCheck::PublicKeyLine { .. }) => {}
            }
            Some(f.text.to_string())
        }
        None => None,
    };

    if let Some(extra) = fields.get(8) {
        notes.push(entry.warning_at(
            extra.column,
            format!(
                "{} field(s) after column #7 are ignored by Nix, starting with '{}'",
                fields.len() - 8,
                extra.text
            ),
        ));
    }

    Ok(Machine {
        store,
        systems,
        ssh_key: set(&fields, 2).map(|f| f.text.to_string()),
        max_jobs,
        speed_factor,
        supported_features: set(&fields, 5).map_or_else(Vec::new, |f| comma_set(f.text)),
        mandatory_features: set(&fields, 6).map_or_else(Vec::new, |f| comma_set(f.text)),
        public_host_key,
        location: entry.location.at_column(uri_field.column),
        line: entry.text.to_string(),
    })
}
