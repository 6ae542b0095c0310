//! Headless sub-commands: each renders a report from the core to a string,
//! so the output is testable without a process.

pub mod build;
pub mod canary;
pub mod check;
pub mod daemon_view;
pub mod explain;
pub mod machines;
pub mod substituters;

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};

/// A borderless table whose columns keep their natural width: the style of
/// every human table rbtop prints.
pub(crate) fn plain_table() -> Table {
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    table
}

/// The table's lines, left-aligned and without trailing blanks.
pub(crate) fn plain_table_text(table: &Table) -> String {
    let mut out = String::new();
    for line in table.to_string().lines() {
        // comfy-table pads with one space each side; drop the leading one.
        out.push_str(line.strip_prefix(' ').unwrap_or(line).trim_end());
        out.push('\n');
    }
    out
}
