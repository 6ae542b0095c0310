//! The derivation behind a remote build, found in this machine's store.
//!
//! A builder knows a build's name and output path (`out` in its
//! environment) but not its `.drv`: `ssh://` clients send the derivation in
//! memory. A build this machine asked for has its `.drv` here, named
//! `<hash>-<name>.drv`, and that file lists the output path. Only files with
//! the right name are read, and every answer is remembered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::jobs::drv::read_output_paths;

/// Answers remembered at most (builds running at once, with room to spare).
const KEPT: usize = 4096;

pub struct DrvLookup {
    store: PathBuf,
    /// Output path → its derivation, or `None` when this store has none.
    known: HashMap<String, Option<String>>,
}

impl DrvLookup {
    pub fn new(store: impl Into<PathBuf>) -> DrvLookup {
        DrvLookup {
            store: store.into(),
            known: HashMap::new(),
        }
    }

    /// The `.drv` in this store that builds `out`, whose name is `name`.
    pub fn find(&mut self, name: &str, out: &str) -> Option<String> {
        if let Some(known) = self.known.get(out) {
            return known.clone();
        }
        // Answers for builds long gone are of no use: start over now and
        // then rather than grow without end.
        if self.known.len() >= KEPT {
            self.known.clear();
        }
        let found = search(&self.store, name, out);
        self.known.insert(out.to_string(), found.clone());
        found
    }
}

fn search(store: &Path, name: &str, out: &str) -> Option<String> {
    let suffix = format!("-{name}.drv");
    let entries = std::fs::read_dir(store).ok()?;
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(&suffix)))
        .map(|e| e.path())
        .find(|path| read_output_paths(path).iter().any(|(_, p)| p == out))
        .map(|path| path.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derivation_with_that_output_is_found_and_remembered() {
        let store = std::env::temp_dir().join(format!("rbtop-drv-lookup-{}", std::process::id()));
        std::fs::create_dir_all(&store).unwrap();
        let write = |file: &str, out: &str| {
            std::fs::write(
                store.join(file),
                format!(r#"Derive([("out","{out}","","")],[],[],"x86_64-linux","/bin/sh",[],[])"#),
            )
            .unwrap();
        };
        write("aaaa-hello.drv", "/nix/store/1111-hello");
        write("bbbb-hello.drv", "/nix/store/2222-hello");
        write("cccc-other.drv", "/nix/store/3333-hello");
        let mut lookup = DrvLookup::new(&store);
        let found = lookup.find("hello", "/nix/store/2222-hello").unwrap();
        assert!(found.ends_with("/bbbb-hello.drv"), "{found}");
        assert_eq!(
            lookup.find("hello", "/nix/store/3333-hello"),
            None,
            "wrong name"
        );
        std::fs::remove_dir_all(&store).unwrap();
        assert_eq!(
            lookup.find("hello", "/nix/store/2222-hello"),
            Some(found),
            "remembered"
        );
    }
}
