//! Headless sub-commands: each renders a report from the core to a string,
//! so the output is testable without a process.

pub mod build;
pub mod builder_substituters;
pub mod canary;
pub mod check;
pub mod daemon_view;
pub mod explain;
pub mod log;
pub mod machines;
pub mod serve;
pub mod substituters;

/// What the commands' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use rbtop::diagnostics::Origin;
    use rbtop::machines::{Machine, MachinesText, Parser};

    /// The machines of `text`, as `--builders` gives them (this machine an
    /// x86_64-linux).
    pub(crate) fn machines(text: &str) -> Vec<Machine> {
        let mut parser = Parser::new(vec!["x86_64-linux".into()]);
        parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
        parser.finish().machines
    }
}

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

/// Writes `header` and `rows` as columns padded to their widest cell, two
/// spaces apart, trailing spaces trimmed. Two passes over `rows` (widths,
/// then lines) and one line in memory at a time: a million-row table is
/// written as it is made, never held whole.
pub(crate) fn write_aligned_columns<const N: usize, I>(
    out: &mut impl std::io::Write,
    header: [&str; N],
    rows: impl Fn() -> I,
) -> std::io::Result<()>
where
    I: Iterator<Item = [String; N]>,
{
    use unicode_width::UnicodeWidthStr;
    let mut widths = header.map(UnicodeWidthStr::width);
    for row in rows() {
        for (width, cell) in widths.iter_mut().zip(&row) {
            *width = (*width).max(cell.width());
        }
    }
    let mut line = String::new();
    let mut push = |cells: &[&str]| {
        line.clear();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', widths[i] - cell.width()));
        }
        let end = line.trim_end().len();
        line.truncate(end);
        line.push('\n');
        out.write_all(line.as_bytes())
    };
    push(&header)?;
    for row in rows() {
        push(&row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod hostile_tests;
