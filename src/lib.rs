//! rbtop: `top` for a fleet of Nix remote builders.
//!
//! This library is the terminal-free core: everything rbtop knows about Nix,
//! SSH and the builders, as plain data and functions. The `rbtop` binary
//! (`src/bin/rbtop/`) is the front end, the command line and the terminal UI,
//! and only presents what the core computes; nothing here prints, reads keys
//! or names a terminal crate, so all of it can be had headless and tested.
//!
//! The public modules, by what they answer:
//! - what builders there are, read exactly as Nix reads them: [`machines`],
//!   [`nixconf`], [`sources`], with [`diagnostics`] that say `file:line`;
//! - reaching a builder and naming what failed: [`protocol`], [`ssh`],
//!   [`probe`];
//! - who builds what, where: [`remote_builds`] (the builds on each builder),
//!   [`slots`] (this machine's build slots and upload locks);
//! - builds launched and followed, and where Nix would send one: [`jobs`],
//!   [`derivation`], [`explain`];
//! - the fleet's state as the dashboard shows it: [`dashboard`]; for other
//!   tools (Prometheus metrics, the live machines file): [`export`];
//! - outside text made safe for a terminal: [`sanitize`]; what is read
//!   from outside, bounded: [`bounds`];
//! - small shared pieces: [`nix_version`], [`nix_text`], [`cpu_time`].
//!
//! Private: what runs on a builder and the parsers of its answers
//! (`remote`), `include_stack`, `proc_stat`, `system`.
//!
//! Reading a machines list as Nix does, keeping every good line:
//!
//! ```
//! use rbtop::diagnostics::Origin;
//! use rbtop::machines::{MachinesText, Parser};
//!
//! let mut parser = Parser::new(vec!["x86_64-linux".into()]);
//! let text = "nix@b1:2222 - - 4 2 kvm ; b2 - - eight\nssh-ng://b3 aarch64-linux";
//! parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
//! let parsed = parser.finish();
//!
//! let uris: Vec<&str> = parsed.machines.iter().map(|m| m.uri()).collect();
//! assert_eq!(uris, ["ssh://nix@b1:2222", "ssh-ng://b3"]);
//! assert_eq!(parsed.machines[0].systems, ["x86_64-linux"]); // the local default
//!
//! let error = parsed.errors().next().unwrap();
//! assert_eq!(error.location.with_column(), "--builders:1:34");
//! assert!(error.message.contains("max jobs (column #3) 'eight'"));
//! ```

// What is internal is not `pub`: an item reachable from outside the crate
// is part of the API on purpose.
#![warn(unreachable_pub)]

pub mod bounds;
pub mod canary;
pub mod cpu_time;
pub mod daemon_view;
pub mod dashboard;
pub mod derivation;
pub mod diagnostics;
pub mod explain;
pub mod export;
mod include_stack;
pub mod jobs;
pub mod machines;
pub mod nix_text;
pub mod nix_version;
pub mod nixconf;
pub mod probe;
mod proc_stat;
pub mod protocol;
mod remote;
pub mod remote_builds;
pub mod sanitize;
pub mod slots;
pub mod sources;
pub mod ssh;
pub mod substituters;
mod system;

/// `$XDG_STATE_HOME/rbtop` (default `~/.local/state/rbtop`): where rbtop
/// keeps its own log and, under `jobs/`, the builds' logs.
pub fn state_directory() -> Option<std::path::PathBuf> {
    dirs::state_dir().map(|d| d.join("rbtop"))
}

/// Create `dir` (and its parents) for rbtop's own files, and make it 0700:
/// build logs can hold secrets, and rbtop's log names hosts and users.
pub fn private_directory(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // An existing directory of rbtop's, from before: tightened too.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}
