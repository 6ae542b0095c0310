//! The machines list (`/etc/nix/machines`, `builders =`, `--builders`), read
//! exactly as current Nix (≥ 2.31) reads it, with located diagnostics.

mod entry;
mod grammar;
pub mod host_key;
pub mod store_uri;

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
