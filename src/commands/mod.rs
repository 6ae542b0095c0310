//! Headless sub-commands: each renders a report from the core to a string,
//! so the output is testable without a process.

pub mod check;
pub mod machines;
