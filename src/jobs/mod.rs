//! Builds launched from rbtop: the Nix command line, its internal-json log
//! folded into per-derivation progress, the job state machine, and the
//! supervisor that runs it (spawn, cancel, check the builders afterwards).
//! Nothing here draws; the TUI and `rbtop build` read [`job::Job`].

pub(crate) mod drv;
pub mod elsewhere;
pub mod forms;
pub mod job;
pub mod launch;
pub mod log;
mod logfile;
pub(crate) mod process_tree;
pub mod progress;
pub mod record;
mod remote;
pub mod runner;

pub use remote::check_builders;
