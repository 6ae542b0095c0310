//! The locks of this machine's build hooks: `/proc/locks`, read on its own
//! (not with rbtop's reader, which is what the tests check), and the
//! `current-load` files.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{CURRENT_LOAD, LocalBuild, Proc, cmdline};

/// One line of `/proc/locks` about a `flock(2)` lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flock {
    pub pid: u32,
    /// `-> FLOCK ...`: blocked, waiting for the lock.
    pub waiting: bool,
    pub write: bool,
}

/// The flocks on `path`'s inode, from `/proc/locks`: holders and waiters.
pub fn flocks(path: &Path) -> Vec<Flock> {
    let Ok(meta) = fs::metadata(path) else {
        return Vec::new();
    };
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
    let mut found = Vec::new();
    for line in locks.lines() {
        // `1: FLOCK  ADVISORY  WRITE 6202 fe:00:9469985 0 EOF`, a waiter
        // with `->` after the number.
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let waiting = words.get(1) == Some(&"->");
        if waiting {
            words.remove(1);
        }
        let [_, "FLOCK", _, mode, pid, id, ..] = words.as_slice() else {
            continue;
        };
        let parts: Vec<&str> = id.split(':').collect();
        let [maj, min, ino] = parts.as_slice() else {
            continue;
        };
        let same = u64::from_str_radix(maj, 16) == Ok(major)
            && u64::from_str_radix(min, 16) == Ok(minor)
            && ino.parse::<u64>() == Ok(meta.ino());
        if same && let Ok(pid) = pid.parse() {
            found.push(Flock {
                pid,
                waiting,
                write: *mode == "WRITE",
            });
        }
    }
    found
}

/// The pids holding (not waiting for) a flock on `path`.
pub fn flock_holders(path: &Path) -> Vec<u32> {
    flocks(path)
        .into_iter()
        .filter(|l| !l.waiting)
        .map(|l| l.pid)
        .collect()
}

/// `current-load/ssh:__<host>-<slot>`: a slot of `ssh://<host>`.
pub fn slot_file(host: &str, slot: u32) -> PathBuf {
    Path::new(CURRENT_LOAD).join(format!("ssh:__{host}-{slot}"))
}

/// `current-load/ssh:__<host>.upload-lock`.
pub fn upload_lock_file(host: &str) -> PathBuf {
    Path::new(CURRENT_LOAD).join(format!("ssh:__{host}.upload-lock"))
}

/// Whether `pid` is a local build hook (Nix 2.8 `build-remote <verbosity>`,
/// newer Nix `nix __build-remote <verbosity>`).
pub fn is_build_hook(pid: u32) -> bool {
    let words = cmdline(pid);
    let mut words = words.split(' ');
    let first = words.next().unwrap_or_default();
    first.rsplit('/').next() == Some("build-remote") || words.next() == Some("__build-remote")
}

/// The local build hooks among `build`'s processes.
pub fn hooks_of(build: &mut LocalBuild) -> Vec<Proc> {
    build
        .tree()
        .into_iter()
        .filter(|p| is_build_hook(p.pid))
        .collect()
}
