//! SSH to builders: one ControlMaster per host, started by rbtop itself so that
//! `NIX_SSHOPTS` reaches ssh word for word, as it does when Nix runs ssh.
//!
//! The `openssh` crate then multiplexes every remote command over that master
//! (`native-mux`: no `ssh` process per command).

mod argv;
mod identity;
mod known_hosts;
pub(crate) mod oneshot;
mod options;
pub(crate) mod session;
mod target;

pub use identity::identities;
pub use options::{HostKeyPolicy, SshSettings, split_nix_sshopts, without_control_flags};
pub use session::{ConnectError, HostSession};
pub use target::SshTarget;
