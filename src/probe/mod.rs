//! Probing builders: reach each machine's store as Nix would, speak its
//! protocol, gather the host's facts, and name what failed.

pub(crate) mod channel;
mod classify;
pub(crate) mod facts;
mod first;
mod fleet;
mod host;
pub mod host_key_advice;
pub(crate) mod links;
mod report;
pub(crate) mod route;
pub mod text;
mod trust;

pub use facts::Facts;
pub use fleet::{
    DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, Fleet, ProbeEvent, ProbeSettings, Progress, probe_once,
    raise_open_file_limit,
};
pub use host_key_advice::HostKeyAdvice;
pub use links::SPACE_INTERVAL;
pub use report::{HostReport, ProbeCost, Status, Via};
