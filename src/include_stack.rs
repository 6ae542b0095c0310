//! The files being read through includes, so that a cycle is reported
//! instead of followed forever (Nix has no such check, for `@file` in the
//! machines list nor for `include` in nix.conf), and so that a chain too
//! deep or a fan-out too wide stops at a bound (`crate::bounds`) instead of
//! overflowing the stack or reading for ever.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::bounds::{INCLUDE_DEPTH, INCLUDES_READ};

/// Canonical paths of the files being read, outermost first, and how many
/// files have been entered in all.
#[derive(Debug, Default)]
pub(crate) struct IncludeStack {
    stack: Vec<PathBuf>,
    entered: usize,
}

/// Why an include is not followed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `a → b → a`.
    Cycle(String),
    /// The chain from the outermost file, shortened in the middle.
    TooDeep(String),
    TooMany,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Cycle(chain) => write!(
                f,
                "include cycle {chain}: skipped here (Nix would recurse until it crashes)"
            ),
            Refused::TooDeep(chain) => write!(
                f,
                "{} ({chain}): skipped here (Nix would recurse until it crashes)",
                INCLUDE_DEPTH.exceeded()
            ),
            Refused::TooMany => write!(
                f,
                "{}: skipped here and after (a file that includes others several times \
                 multiplies them)",
                INCLUDES_READ.exceeded()
            ),
        }
    }
}

impl IncludeStack {
    /// A stack whose outermost file is `path`.
    pub(crate) fn rooted_at(path: &Path) -> Self {
        IncludeStack {
            stack: vec![canonical(path)],
            entered: 1,
        }
    }

    /// Start reading `path`; call [`leave`](Self::leave) when done. Refused
    /// if it is already being read (a cycle), if the chain is at its bound,
    /// or if too many files have been read through includes.
    pub(crate) fn enter(&mut self, path: &Path) -> Result<(), Refused> {
        let path = canonical(path);
        if let Some(first) = self.stack.iter().position(|p| *p == path) {
            return Err(Refused::Cycle(chain(&self.stack[first..], &path)));
        }
        if self.stack.len() >= INCLUDE_DEPTH.limit {
            return Err(Refused::TooDeep(chain(&self.stack, &path)));
        }
        if self.entered >= INCLUDES_READ.limit {
            return Err(Refused::TooMany);
        }
        self.entered += 1;
        self.stack.push(path);
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.stack.pop();
    }
}

/// `a → b → c`, with the middle of a long chain left out.
fn chain(files: &[PathBuf], last: &Path) -> String {
    let all: Vec<String> = files
        .iter()
        .map(|p| p.as_path())
        .chain([last])
        .map(|p| p.display().to_string())
        .collect();
    if all.len() <= 7 {
        return all.join(" → ");
    }
    format!(
        "{} → … {} more … → {}",
        all[..3].join(" → "),
        all.len() - 6,
        all[all.len() - 3..].join(" → ")
    )
}

/// Symlinks resolved where the file exists, so two names of one file match.
fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_seen_again_closes_a_cycle_and_leaving_reopens_it() {
        let mut stack = IncludeStack::rooted_at(Path::new("/x/a"));
        assert_eq!(stack.enter(Path::new("/x/b")), Ok(()));
        assert_eq!(
            stack.enter(Path::new("/x/a")),
            Err(Refused::Cycle("/x/a → /x/b → /x/a".to_string()))
        );
        stack.leave();
        assert_eq!(
            stack.enter(Path::new("/x/b")),
            Ok(()),
            "b may be read again"
        );
    }

    #[test]
    fn a_chain_stops_at_its_bound_and_names_both_ends() {
        let mut stack = IncludeStack::rooted_at(Path::new("/x/0"));
        for i in 1..INCLUDE_DEPTH.limit {
            assert_eq!(stack.enter(Path::new(&format!("/x/{i}"))), Ok(()));
        }
        let Err(refused) = stack.enter(Path::new("/x/deep")) else {
            panic!("entered past the bound");
        };
        let text = refused.to_string();
        assert!(
            text.contains("/x/0 → /x/1 → /x/2 → … 59 more … → /x/62 → /x/63 → /x/deep"),
            "{text}"
        );
        assert!(text.contains("bound of 64 files deep"), "{text}");
    }

    #[test]
    fn files_read_in_all_are_bounded_even_when_shallow() {
        let mut stack = IncludeStack::rooted_at(Path::new("/x/root"));
        for i in 1..INCLUDES_READ.limit {
            assert_eq!(stack.enter(Path::new(&format!("/x/{i}"))), Ok(()));
            stack.leave();
        }
        assert_eq!(stack.enter(Path::new("/x/one-more")), Err(Refused::TooMany));
    }
}
