//! rbtop: `top` for a fleet of Nix remote builders.
//!
//! The library is the terminal-free core: it knows the machines grammar,
//! nix.conf, and (later) the SSH store protocols. The binary is a thin shell
//! over it, so everything it shows can also be had headless and tested.

pub mod cli;
pub mod commands;
pub mod config;
pub mod diagnostics;
pub mod logging;
pub mod machines;
pub mod nix_text;
pub mod nix_version;
pub mod nixconf;
pub mod sources;
pub mod system;
