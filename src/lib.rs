//! rbtop: `top` for a fleet of Nix remote builders.
//!
//! The library is the terminal-free core: it knows the machines grammar,
//! nix.conf, and (later) the SSH store protocols. The binary is a thin shell
//! over it, so everything it shows can also be had headless and tested.
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

pub mod cpu_time;
pub mod dashboard;
pub mod derivation;
pub mod diagnostics;
pub mod explain;
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
pub mod slots;
pub mod sources;
pub mod ssh;
mod system;

/// `$XDG_STATE_HOME/rbtop` (default `~/.local/state/rbtop`): where rbtop
/// keeps its own log and, under `jobs/`, the builds' logs.
pub fn state_directory() -> Option<std::path::PathBuf> {
    dirs::state_dir().map(|d| d.join("rbtop"))
}
