//! A private home for rbtop runs in tests: HOME, the XDG directories and a
//! NIX_CONF_DIR, all inside one temporary directory, so the machine's own
//! config and state never leak in, and what rbtop leaves can be counted.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    /// `prefix` names the temporary directory (`rbtop-fc…`), for debugging.
    pub fn new(prefix: &str) -> Sandbox {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        for sub in ["home/.ssh", "config", "state", "run", "nixconf"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Sandbox { dir }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The rbtop binary with nothing of the caller's environment but PATH:
    /// HOME and the XDG directories are the sandbox's. NIX_CONF_DIR is left
    /// to the caller (a build needs the machine's real nix.conf).
    pub fn rbtop(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbtop"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_CONFIG_DIRS", self.path("xdg-dirs"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_RUNTIME_DIR", self.path("run"));
        cmd
    }
}
