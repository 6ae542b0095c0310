//! Where configuration text came from, and what is wrong with it.
//!
//! Every machine and every complaint keeps a [`Location`] so that an operator
//! can jump straight to the offending `file:line`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bounds::SNIPPET;
use crate::sanitize::for_terminal;

/// The thing a piece of machines or nix.conf text was read from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A file on disk (machines file, nix.conf, or an `@include`); shared,
    /// as every line read from it points at it.
    File(Arc<Path>),
    /// The `--builders` command-line flag.
    BuildersFlag,
    /// The `builders` key of rbtop's own config file.
    RbtopConfig(PathBuf),
    /// The `NIX_CONFIG` environment variable.
    NixConfigEnv,
}

impl Origin {
    /// A file on disk.
    pub fn file(path: impl AsRef<Path>) -> Origin {
        Origin::File(Arc::from(path.as_ref()))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::BuildersFlag => f.write_str("--builders"),
            Origin::RbtopConfig(path) => write!(f, "{} (builders)", path.display()),
            Origin::NixConfigEnv => f.write_str("NIX_CONFIG"),
        }
    }
}

/// A 1-based line (and optionally 1-based character column) within an [`Origin`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    pub origin: Origin,
    pub line: usize,
    pub column: Option<usize>,
}

impl Location {
    pub fn new(origin: Origin, line: usize) -> Self {
        Location {
            origin,
            line,
            column: None,
        }
    }

    pub fn at_column(&self, column: usize) -> Self {
        Location {
            column: Some(column),
            ..self.clone()
        }
    }

    /// `file:line:column` when the column is known, for humans and editors
    /// (always with the line, so `--builders:1:34` cannot read as line 34).
    pub fn with_column(&self) -> String {
        match self.column {
            Some(col) if self.line > 0 => format!("{}:{}:{col}", self.origin, self.line),
            _ => self.to_string(),
        }
    }
}

/// `file:line`; a one-line `--builders` string is just `--builders`, and
/// line 0 (the file as a whole) is just the file.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin {
            _ if self.line == 0 => write!(f, "{}", self.origin),
            Origin::BuildersFlag if self.line == 1 => write!(f, "{}", self.origin),
            _ => write!(f, "{}:{}", self.origin, self.line),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The line was rejected: it is not in the machine list.
    Error,
    /// The line was kept, but something about it deserves attention.
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    /// The offending source line, shown under the message with a caret;
    /// of a long line, only [`SNIPPET`] characters around the column.
    pub snippet: Option<String>,
    /// Characters of the line left out before `snippet` (which then starts
    /// with `…`, as it ends with one when the end is left out).
    pub snippet_skipped: usize,
}

impl Diagnostic {
    pub fn error(location: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            location,
            message: message.into(),
            snippet: None,
            snippet_skipped: 0,
        }
    }

    pub fn warning(location: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            location,
            message: message.into(),
            snippet: None,
            snippet_skipped: 0,
        }
    }

    /// Quote `line` under the message. A long line is quoted only around
    /// the column (a 20,000-entry line once gave each of its 20,000
    /// warnings the whole line: 1.2 GB of output).
    pub fn with_snippet(mut self, line: &str) -> Self {
        let limit = SNIPPET.limit;
        if line.len() <= limit {
            self.snippet = Some(line.to_string());
            return self;
        }
        let column = self.location.column.unwrap_or(1).saturating_sub(1);
        let skip = column.saturating_sub(limit / 2);
        // Byte offsets of characters `skip` and `skip + limit` (cheap on
        // ASCII, the usual case: this runs once per diagnostic).
        let (start, end) = if line.is_ascii() {
            let end = skip + limit;
            (skip.min(line.len()), (end < line.len()).then_some(end))
        } else {
            let mut chars = line.char_indices().skip(skip);
            let start = chars.next().map_or(line.len(), |(i, _)| i);
            (start, chars.nth(limit.saturating_sub(1)).map(|(i, _)| i))
        };
        let mut quoted = String::from(if skip > 0 { "…" } else { "" });
        quoted.push_str(&line[start..end.unwrap_or(line.len())]);
        if end.is_some() {
            quoted.push('…');
        }
        self.snippet = Some(quoted);
        self.snippet_skipped = skip;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Multi-line human form: `error: file:line:col: message`, then the line and a caret.
    pub fn render(&self) -> String {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // Messages quote the file, and the file may hold anything: shown,
        // never obeyed, by the terminal.
        let mut out = format!(
            "{label}: {}: {}",
            for_terminal(&self.location.with_column()),
            for_terminal(&self.message)
        );
        if let Some(snippet) = &self.snippet {
            let snippet = snippet.replace('\t', " ");
            let shown = for_terminal(snippet.trim_end());
            out.push_str(&format!("\n    | {shown}"));
            if let Some(col) = self.location.column {
                // The caret under the same character, however wide its
                // escape, after the leading `…` of a cut line.
                let lead = usize::from(self.snippet_skipped > 0);
                let before: String = snippet
                    .chars()
                    .take(col.saturating_sub(1 + self.snippet_skipped) + lead)
                    .collect();
                let width = for_terminal(&before).chars().count();
                out.push_str(&format!("\n    | {}^", " ".repeat(width)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_locations_print_as_file_colon_line() {
        let loc = Location::new(Origin::file("/etc/nix/machines"), 7);
        assert_eq!(loc.to_string(), "/etc/nix/machines:7");
        assert_eq!(loc.at_column(12).with_column(), "/etc/nix/machines:7:12");
    }

    #[test]
    fn builders_flag_omits_line_one() {
        assert_eq!(
            Location::new(Origin::BuildersFlag, 1).to_string(),
            "--builders"
        );
        assert_eq!(
            Location::new(Origin::BuildersFlag, 3).to_string(),
            "--builders:3"
        );
        let col = Location::new(Origin::BuildersFlag, 1).at_column(34);
        assert_eq!(col.with_column(), "--builders:1:34");
    }

    #[test]
    fn render_points_a_caret_at_the_column() {
        let d = Diagnostic::error(Location::new(Origin::file("m"), 2).at_column(5), "bad")
            .with_snippet("abc\tdef");
        assert_eq!(d.render(), "error: m:2:5: bad\n    | abc def\n    |     ^");
    }

    #[test]
    fn a_long_line_is_quoted_around_its_column_with_the_caret_on_it() {
        let line = format!("{}X{}", "a".repeat(10_000), "b".repeat(10_000));
        let d = Diagnostic::error(Location::new(Origin::file("m"), 1).at_column(10_001), "bad")
            .with_snippet(&line);
        let quoted = d.snippet.as_deref().unwrap();
        assert_eq!(
            quoted.chars().count(),
            SNIPPET.limit + 2,
            "window and two marks"
        );
        assert!(quoted.starts_with('…') && quoted.ends_with('…'));
        let rendered = d.render();
        let lines: Vec<&str> = rendered.lines().collect();
        let caret = lines[2].chars().position(|c| c == '^').unwrap();
        assert_eq!(lines[1].chars().nth(caret), Some('X'), "{rendered}");
        // Near the start: no leading mark, the caret still on its character.
        let d = Diagnostic::error(Location::new(Origin::file("m"), 1).at_column(3), "bad")
            .with_snippet(&format!("abXd{}", "e".repeat(5_000)));
        let rendered = d.render();
        let lines: Vec<&str> = rendered.lines().collect();
        assert!(!lines[1].contains("| …"));
        let caret = lines[2].chars().position(|c| c == '^').unwrap();
        assert_eq!(lines[1].chars().nth(caret), Some('X'), "{rendered}");
    }
}
