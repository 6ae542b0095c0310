//! Which build slots of each machine the *local* build hook is using right
//! now, read from `<stateDir>/current-load` without taking any lock.
//!
//! Nix's build hook (`build-remote`, `nix __build-remote`) keeps one file per
//! (machine, slot), named `<escapeUri(uri)>-<slot>` (`escapeUri` turns every
//! `/` into `_`), plus `<escapeUri(uri)>.upload-lock` and `main-lock`. A slot
//! is in use exactly while its file is `flock(2)`ed by a hook, and the hook
//! sets the file's mtime when it picks the slot, so the mtime is the job's
//! start. Nothing else records the load: the files stay when the jobs end.
//!
//! Why it is done this way:
//!
//! - **No lock, ever.** Probing with `flock(LOCK_SH|LOCK_NB)` needs write or
//!   read access to root's 0600 files, and while the probe holds the lock a
//!   hook choosing a machine sees that slot as taken: monitoring would steer
//!   builds. Instead `/proc/locks` lists every lock on the system with its
//!   device and inode, readable by anyone; a slot is busy when a `FLOCK` entry
//!   (`WRITE`, or `READ` since that too makes Nix's non-blocking `LOCK_EX`
//!   fail) names the slot file's inode. Waiters (`1: -> FLOCK ...`) hold
//!   nothing and are skipped; `POSIX`/`OFDLCK` locks do not conflict with
//!   `flock` on Linux, so they do not count either. Only `stat` is needed on
//!   the files, so an unprivileged user can watch the daemon's hooks.
//! - **Cheap.** One `readdir`, one `stat` per file that belongs to a known
//!   machine, one read of `/proc/locks`, whatever the number of machines.
//!   `/proc/self/mountinfo` is read only when an inode matches a lock on
//!   another device number: on btrfs (and overlayfs) `stat`'s `st_dev` is not
//!   the superblock's device that `/proc/locks` prints, while mountinfo's is.
//! - **Both Nix spellings of a machine.** Nix 2.8 names the files after the
//!   machines-file text (after the `ssh://` auto-prefix), query verbatim.
//!   Releases with `StoreReference` name them after its rendering: the query
//!   is decoded, sorted by key and re-encoded; current Nix also re-encodes the
//!   authority and path (and drops a zero-padded or empty port). All the
//!   distinct spellings are tried ([`file_name_candidates`]); a slot counts as
//!   busy if any of its files is locked. Master's base64-MD5 upload-lock name
//!   (used only when the name is too long for the file system) is not tried.
//! - **A missing directory is not an error.** Nix creates `current-load`
//!   lazily, the first time the hook runs; until then no slot is in use.
//! - **Slots past `max-jobs`.** Nix counts only slots `0..max_jobs`, so only
//!   those make `busy`. A locked file for a higher slot is a job that a hook
//!   started under an older machines file with a larger `max-jobs`: it is
//!   still running on that machine, so it is listed in `holders` (its `slot`
//!   tells it apart) without counting towards `busy`.
//! - **Pids as given.** `/proc/locks` shows the locker's pid in the reader's
//!   pid namespace, or 0 when it lives in another one (a container watching
//!   the host's daemon).
//!
//! Only this host's hooks are visible: builds sent by other clients to the
//! same builders are not.
//!
//! - `locks` lists `current-load`, `stat`s its files and finds their
//!   holders in `/proc/locks`;
//! - `mountinfo` gives a path's mount device when `st_dev` is not it;
//! - `file_names` spells a machine's store URI as each Nix version names
//!   its files;
//! - [`text`] is the wording shared by `rbtop check` and the dashboard.

pub mod behind;
mod file_names;
mod locks;
mod mountinfo;
pub mod text;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::machines::Machine;

pub use file_names::{escape_uri, file_name_candidates};
pub use locks::{LockEntry, LockKind, LockMode, PROC_LOCKS, parse_proc_locks};

/// Nix's state directory when `NIX_STATE_DIR` is unset or empty.
pub const DEFAULT_STATE_DIR: &str = "/nix/var/nix";
/// The build hook's directory under the state directory.
pub const CURRENT_LOAD: &str = "current-load";

/// `current-load` under `$NIX_STATE_DIR` (default `/nix/var/nix`).
pub fn default_dir() -> PathBuf {
    dir_from_env(std::env::var_os("NIX_STATE_DIR"))
}

/// `current-load` under the given `NIX_STATE_DIR` value; unset or empty means
/// the default, as for Nix.
pub fn dir_from_env(nix_state_dir: Option<OsString>) -> PathBuf {
    nix_state_dir
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from)
        .join(CURRENT_LOAD)
}

/// What the local build hook is doing with each machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LocalLoad {
    /// One entry per machine, in the order given.
    Readable { machines: Vec<MachineLoad> },
    /// The slots could not be read; `reason` says why and what to do.
    Unreadable {
        #[serde(serialize_with = "serialize_path")]
        dir: PathBuf,
        reason: String,
    },
}

impl LocalLoad {
    /// The per-machine loads, when readable.
    pub fn machines(&self) -> Option<&[MachineLoad]> {
        match self {
            LocalLoad::Readable { machines } => Some(machines),
            LocalLoad::Unreadable { .. } => None,
        }
    }
}

/// One machine's slots as the local hook sees them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MachineLoad {
    /// Locked slots among `0..max`: Nix's own `load` for this machine.
    pub busy: u32,
    /// The machine's `max-jobs`.
    pub max: u32,
    /// Every locked slot file, by slot. May include slots `>= max` (see the
    /// module doc), which `busy` does not count, and a slot twice if two
    /// spellings of the machine are locked at once.
    pub holders: Vec<SlotHolder>,
    /// Who is copying inputs to the machine, if anyone.
    pub upload_lock: Option<LockHolder>,
}

impl MachineLoad {
    fn idle(max: u32) -> Self {
        MachineLoad {
            busy: 0,
            max,
            holders: Vec::new(),
            upload_lock: None,
        }
    }
}

/// A locked slot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlotHolder {
    pub slot: u32,
    /// The hook's pid as `/proc/locks` gives it (0: another pid namespace).
    pub pid: u32,
    /// The slot file's mtime, set by the hook when it picked the slot: about
    /// when the job started. RFC 3339 (UTC) in JSON.
    #[serde(serialize_with = "serialize_time")]
    pub since: Option<SystemTime>,
}

/// A locked `.upload-lock`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LockHolder {
    pub pid: u32,
    /// Nix never touches this file's mtime, so this is instead the `since` of
    /// the slot the same hook holds on this machine (it takes the upload lock
    /// right after connecting): the upload began at or after it. `None` when
    /// that slot is not found or the pid is 0.
    #[serde(serialize_with = "serialize_time")]
    pub since: Option<SystemTime>,
}

/// The machine's slots, reading `/proc/locks`.
pub fn read(dir: &Path, machines: &[Machine]) -> LocalLoad {
    locks::read_using(
        dir,
        machines,
        || fs::read_to_string(PROC_LOCKS),
        mountinfo::mount_device_of,
    )
}

/// As [`read`], with the text of `/proc/locks` given.
pub fn read_with_locks(dir: &Path, machines: &[Machine], proc_locks: &str) -> LocalLoad {
    locks::read_using(
        dir,
        machines,
        || Ok(proc_locks.to_owned()),
        mountinfo::mount_device_of,
    )
}

/// RFC 3339 in UTC to the second, as the JSON gives a `since`.
pub fn rfc3339(time: Option<SystemTime>) -> Option<String> {
    time.map(|time| {
        chrono::DateTime::<chrono::Utc>::from(time)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    })
}

fn serialize_time<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match rfc3339(*time) {
        Some(text) => s.serialize_some(&text),
        None => s.serialize_none(),
    }
}

fn serialize_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_from_env() {
        assert_eq!(
            dir_from_env(None),
            PathBuf::from("/nix/var/nix/current-load")
        );
        assert_eq!(
            dir_from_env(Some(OsString::new())),
            PathBuf::from("/nix/var/nix/current-load")
        );
        assert_eq!(
            dir_from_env(Some("/tmp/state".into())),
            PathBuf::from("/tmp/state/current-load")
        );
    }
    #[test]
    fn json_shape() {
        let load = LocalLoad::Readable {
            machines: vec![MachineLoad {
                busy: 1,
                max: 2,
                holders: vec![SlotHolder {
                    slot: 0,
                    pid: 7,
                    since: Some(
                        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
                    ),
                }],
                upload_lock: Some(LockHolder {
                    pid: 7,
                    since: None,
                }),
            }],
        };
        assert_eq!(
            serde_json::to_string(&load).unwrap(),
            r#"{"state":"readable","machines":[{"busy":1,"max":2,"holders":[{"slot":0,"pid":7,"since":"2023-11-14T22:13:20Z"}],"upload_lock":{"pid":7,"since":null}}]}"#
        );
        let load = LocalLoad::Unreadable {
            dir: "/x".into(),
            reason: "r".into(),
        };
        assert_eq!(
            serde_json::to_string(&load).unwrap(),
            r#"{"state":"unreadable","dir":"/x","reason":"r"}"#
        );
    }
}
