//! The boundary between the core and the front end, checked on the source:
//! the compiler already keeps the library from naming the binary's
//! modules, but nothing stops it from naming a terminal crate, which is a
//! dependency of the package. The front end's table of contents stays one.

use std::path::{Path, PathBuf};

/// Crates that belong to the front end: terminal, tables, flags.
const FRONT_END_CRATES: [&str; 6] = [
    "ratatui",
    "crossterm",
    "crokey",
    "comfy_table",
    "clap",
    "ansi_to_tui",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_core_file_names_a_front_end_crate() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let core: Vec<_> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("bin")))
        .collect();
    assert!(core.len() > 50, "the core's files were found: {core:?}");
    let mut offences = Vec::new();
    for file in core {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for krate in FRONT_END_CRATES {
                let named = [format!("{krate}::"), format!("use {krate}")]
                    .iter()
                    .any(|p| line.contains(p.as_str()));
                if named {
                    offences.push(format!("{}:{}: {line}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the core names a front-end crate:\n{}",
        offences.join("\n")
    );
}

#[test]
fn main_rs_is_a_table_of_contents() {
    let main = std::fs::read_to_string(root().join("src/bin/rbtop/main.rs")).unwrap();
    let lines = main.lines().count();
    assert!(
        lines < 100,
        "src/bin/rbtop/main.rs has {lines} lines: parse, log, dispatch; the rest belongs in a module"
    );
}
