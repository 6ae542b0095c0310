//! For the core's unit tests: one machine from one machines line.

use super::{Machine, MachinesText, Parser};
use crate::diagnostics::Origin;

/// The machine of a `--builders` line, unset systems meaning x86_64-linux.
pub(crate) fn machine(line: &str) -> Machine {
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(line, Origin::BuildersFlag));
    parser.finish().machines.remove(0)
}
