//! The files being read through includes, so that a cycle is reported
//! instead of followed forever (Nix has no such check, for `@file` in the
//! machines list nor for `include` in nix.conf).

use std::fs;
use std::path::{Path, PathBuf};

/// Canonical paths of the files being read, outermost first.
#[derive(Debug, Default)]
pub(crate) struct IncludeStack(Vec<PathBuf>);

impl IncludeStack {
    /// A stack whose outermost file is `path`.
    pub(crate) fn rooted_at(path: &Path) -> Self {
        IncludeStack(vec![canonical(path)])
    }

    /// Start reading `path`; call [`leave`](Self::leave) when done. If it is
    /// already being read, returns the cycle as `a → b → a` instead.
    pub(crate) fn enter(&mut self, path: &Path) -> Result<(), String> {
        let path = canonical(path);
        if let Some(first) = self.0.iter().position(|p| *p == path) {
            let chain: Vec<String> = self.0[first..]
                .iter()
                .chain([&path])
                .map(|p| p.display().to_string())
                .collect();
            return Err(chain.join(" → "));
        }
        self.0.push(path);
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.0.pop();
    }
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
            Err("/x/a → /x/b → /x/a".to_string())
        );
        stack.leave();
        assert_eq!(
            stack.enter(Path::new("/x/b")),
            Ok(()),
            "b may be read again"
        );
    }
}
