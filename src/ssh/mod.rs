//! SSH to builders: one ControlMaster per host, started by rbtop itself so that
//! `NIX_SSHOPTS` reaches ssh word for word, as it does when Nix runs ssh.
//!
//! The `openssh` crate then multiplexes every remote command over that master
//! (`native-mux`: no `ssh` process per command).

pub mod argv;
pub mod known_hosts;
pub mod oneshot;
pub mod options;
pub mod session;
pub mod target;

pub use options::{HostKeyPolicy, SshSettings};
pub use session::{ConnectError, HostSession};
pub use target::SshTarget;
