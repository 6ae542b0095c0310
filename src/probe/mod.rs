//! Probing builders: reach each machine's store as Nix would, speak its
//! protocol, gather the host's facts, and name what failed.

pub mod channel;
pub mod classify;
pub mod facts;
pub mod fleet;
pub mod host;
pub mod links;
pub mod report;
pub mod route;
pub mod text;

pub use facts::Facts;
pub use fleet::{Fleet, ProbeEvent, ProbeSettings};
pub use report::{HostReport, Status, Via};
