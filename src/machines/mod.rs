//! The machines list (`/etc/nix/machines`, `builders =`, `--builders`), read
//! exactly as current Nix (≥ 2.31) reads it, with located diagnostics.

mod entry;
mod grammar;
pub mod host_key;
mod lix_toml;
pub mod store_uri;
#[cfg(test)]
pub(crate) mod testing;

pub use grammar::{MachinesText, Parsed, Parser};
pub use store_uri::StoreUri;

use crate::diagnostics::Location;

/// One builder, one row of the machines file.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    pub store: StoreUri,
    /// Column #1, sorted and de-duplicated as Nix keeps it; the local system when unset.
    pub systems: Vec<String>,
    /// Column #2: the `-i` identity file.
    pub ssh_key: Option<String>,
    /// Column #3.
    pub max_jobs: u32,
    /// Column #4; Nix turns 0 into 1.
    pub speed_factor: f64,
    /// Column #5.
    pub supported_features: Vec<String>,
    /// Column #6: a build must require all of these to be sent here.
    pub mandatory_features: Vec<String>,
    /// Column #7, as written (base64 of the host's `.pub` line).
    pub public_host_key: Option<String>,
    /// Where the row was read.
    pub location: Location,
    /// The row as written, for the detail view.
    pub line: String,
}

impl Machine {
    pub fn uri(&self) -> &str {
        &self.store.uri
    }

    /// The URI's host, or the URI itself for stores without one (`local`,
    /// `daemon`, `unix:///path`): the name tables and panes show.
    pub fn host_name(&self) -> &str {
        self.store
            .host
            .as_deref()
            .unwrap_or(self.store.uri.as_str())
    }
}

/// Why a name given by the operator (`rbtop build --on NAME`) names no
/// single machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("no such machine; the machines are: {}", uri_list(.known))]
    NotFound { known: Vec<String> },
    #[error("{} machines match ({}); give the store URI", .matches.len(), uri_list(.matches))]
    Ambiguous { matches: Vec<String> },
}

fn uri_list(uris: &[String]) -> String {
    if uris.is_empty() {
        "none".into()
    } else {
        uris.join(", ")
    }
}

/// The machine `name` means: its store URI exactly, else its host (with or
/// without `user@`).
pub fn find<'m>(machines: &'m [Machine], name: &str) -> Result<&'m Machine, LookupError> {
    if let Some(machine) = machines.iter().find(|m| m.uri() == name) {
        return Ok(machine);
    }
    let by_host: Vec<&Machine> = machines
        .iter()
        .filter(|m| {
            let host = m.store.host.as_deref();
            let user_host = m
                .store
                .user
                .as_deref()
                .zip(host)
                .map(|(u, h)| format!("{u}@{h}"));
            host == Some(name) || user_host.as_deref() == Some(name)
        })
        .collect();
    let uris = |ms: &[&Machine]| ms.iter().map(|m| m.uri().to_string()).collect();
    match by_host.as_slice() {
        [one] => Ok(one),
        [] => Err(LookupError::NotFound {
            known: uris(&machines.iter().collect::<Vec<_>>()),
        }),
        many => Err(LookupError::Ambiguous {
            matches: uris(many),
        }),
    }
}

/// Names of the eight columns, in Nix's numbering (#0 to #7).
pub const COLUMN_NAMES: [&str; 8] = [
    "store URI",
    "systems",
    "SSH key",
    "max jobs",
    "speed factor",
    "supported features",
    "mandatory features",
    "public host key",
];
