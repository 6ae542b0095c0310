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

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::machines::Machine;

/// Nix's state directory when `NIX_STATE_DIR` is unset or empty.
pub const DEFAULT_STATE_DIR: &str = "/nix/var/nix";
/// The build hook's directory under the state directory.
pub const CURRENT_LOAD: &str = "current-load";
/// Where Linux lists the file locks held on the system.
pub const PROC_LOCKS: &str = "/proc/locks";
const MOUNTINFO: &str = "/proc/self/mountinfo";
const UPLOAD_LOCK_SUFFIX: &str = ".upload-lock";

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

/// The lock families of `/proc/locks` that hold something on a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// `flock(2)`: what Nix's hook uses.
    Flock,
    /// `fcntl(F_SETLK)` record locks.
    Posix,
    /// Open-file-description locks (`F_OFD_SETLK`).
    Ofdlck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Read,
    Write,
}

/// One lock held (not waited for) on a file, as `/proc/locks` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LockEntry {
    pub kind: LockKind,
    pub mode: LockMode,
    /// As printed: 0 when the holder is in another pid namespace, -1 for
    /// `OFDLCK` (such locks belong to no process).
    pub pid: i32,
    /// The file system's device numbers (printed in hex).
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
}

/// The holders listed in `/proc/locks` text, in order. Waiters (`-> ...`),
/// leases, delegations, `UNLCK` entries and lines without an inode are
/// skipped, as are lines that do not parse.
pub fn parse_proc_locks(text: &str) -> Vec<LockEntry> {
    text.lines().filter_map(parse_lock_line).collect()
}

/// `1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF`
fn parse_lock_line(line: &str) -> Option<LockEntry> {
    let mut tokens = line.split_whitespace();
    let id = tokens.next()?.strip_suffix(':')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = match tokens.next()? {
        "FLOCK" => LockKind::Flock,
        "POSIX" => LockKind::Posix,
        "OFDLCK" => LockKind::Ofdlck,
        _ => return None, // "->" (a waiter), LEASE, DELEG, ACCESS, UNKNOWN
    };
    let _advisory = tokens.next()?; // ADVISORY, MANDATORY, *NOINODE*
    let mode = match tokens.next()? {
        "WRITE" => LockMode::Write,
        "READ" => LockMode::Read,
        _ => return None,
    };
    let pid = tokens.next()?.parse().ok()?;
    let mut device = tokens.next()?.split(':');
    let dev_major = u32::from_str_radix(device.next()?, 16).ok()?;
    let dev_minor = u32::from_str_radix(device.next()?, 16).ok()?;
    let inode = device.next()?.parse().ok()?;
    if device.next().is_some() {
        return None;
    }
    Some(LockEntry {
        kind,
        mode,
        pid,
        dev_major,
        dev_minor,
        inode,
    })
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
    read_using(
        dir,
        machines,
        || fs::read_to_string(PROC_LOCKS),
        mount_device_of,
    )
}

/// As [`read`], with the text of `/proc/locks` given.
pub fn read_with_locks(dir: &Path, machines: &[Machine], proc_locks: &str) -> LocalLoad {
    read_using(dir, machines, || Ok(proc_locks.to_owned()), mount_device_of)
}

/// The distinct file-name prefixes Nix versions use for a machine whose
/// (normalised) store URI is `uri`, i.e. [`Machine::uri`]: the slot files are
/// `<prefix>-<slot>` and the upload lock `<prefix>.upload-lock`. First the
/// Nix 2.8 spelling, then the `StoreReference` ones that differ from it.
pub fn file_name_candidates(uri: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let forms = [
        Some(uri.to_owned()),
        store_reference_verbatim(uri),
        store_reference_rendered(uri),
    ];
    for form in forms.into_iter().flatten() {
        let name = escape_uri(&form);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Nix's `escapeUri`: `/` becomes `_`, nothing else changes.
pub fn escape_uri(uri: &str) -> String {
    uri.replace('/', "_")
}

/// Why a `current-load` directory could not be listed, for a person.
pub fn describe_dir_error(dir: &Path, error: &io::Error) -> String {
    let dir = dir.display();
    match error.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "permission denied reading {dir}; run rbtop as the user that owns it \
             (the one running the builds, root under the Nix daemon) or as root"
        ),
        io::ErrorKind::NotADirectory => {
            format!("{dir} is not a directory (or a parent of it is a file)")
        }
        _ => format!("cannot list {dir}: {error}"),
    }
}

fn describe_locks_error(error: &io::Error) -> String {
    format!(
        "cannot read {PROC_LOCKS}: {error}; rbtop needs it (Linux only) to see \
         which build slots are locked without locking them"
    )
}

/// The slot files of one machine found in the directory.
#[derive(Default)]
struct MachineFiles {
    /// (slot, file name)
    slots: Vec<(u32, String)>,
    upload_locks: Vec<String>,
}

/// What `stat` says about a slot or upload-lock file.
struct FileId {
    device: (u32, u32),
    inode: u64,
    mtime: Option<SystemTime>,
}

fn read_using(
    dir: &Path,
    machines: &[Machine],
    read_locks: impl FnOnce() -> io::Result<String>,
    mount_device: impl FnOnce(&Path) -> Option<(u32, u32)>,
) -> LocalLoad {
    let unreadable = |reason| LocalLoad::Unreadable {
        dir: dir.to_path_buf(),
        reason,
    };
    let idle = || LocalLoad::Readable {
        machines: machines
            .iter()
            .map(|m| MachineLoad::idle(m.max_jobs))
            .collect(),
    };

    let names = match list_dir(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return idle(),
        Err(e) => return unreadable(describe_dir_error(dir, &e)),
    };
    let files: Vec<MachineFiles> = machines
        .iter()
        .map(|m| files_of(&names, &file_name_candidates(m.uri())))
        .collect();
    if files
        .iter()
        .all(|f| f.slots.is_empty() && f.upload_locks.is_empty())
    {
        return idle(); // no lock to look up: spare the read of /proc/locks
    }

    let mut ids: HashMap<&str, FileId> = HashMap::new();
    for name in files
        .iter()
        .flat_map(|f| f.slots.iter().map(|(_, n)| n).chain(&f.upload_locks))
    {
        if ids.contains_key(name.as_str()) {
            continue;
        }
        match fs::metadata(dir.join(name)) {
            Ok(meta) => {
                let id = FileId {
                    device: split_dev(meta.dev()),
                    inode: meta.ino(),
                    mtime: meta.modified().ok(),
                };
                ids.insert(name, id);
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return unreadable(describe_dir_error(dir, &e));
            }
            Err(_) => {} // removed since the readdir: not locked
        }
    }

    let text = match read_locks() {
        Ok(text) => text,
        Err(e) => return unreadable(describe_locks_error(&e)),
    };
    let locks = FlockTable::new(&parse_proc_locks(&text));

    // On btrfs/overlayfs st_dev differs from the device /proc/locks prints;
    // look up the mount's device only if that can matter.
    let needs_mount_device = ids
        .values()
        .any(|id| locks.holder(id.device, id.inode).is_none() && locks.has_inode(id.inode));
    let mount_device = needs_mount_device.then(|| mount_device(dir)).flatten();
    let holder_of = |name: &str| -> Option<u32> {
        let id = ids.get(name)?;
        let entry = locks
            .holder(id.device, id.inode)
            .or_else(|| locks.holder(mount_device?, id.inode))?;
        // Only FLOCK entries are kept, and those carry a real pid (>= 0).
        Some(u32::try_from(entry.pid).unwrap_or(0))
    };

    let loads = machines
        .iter()
        .zip(&files)
        .map(|(machine, files)| {
            let mut load = MachineLoad::idle(machine.max_jobs);
            let mut busy_slots = HashSet::new();
            for (slot, name) in &files.slots {
                let Some(pid) = holder_of(name) else { continue };
                if *slot < machine.max_jobs {
                    busy_slots.insert(*slot);
                }
                load.holders.push(SlotHolder {
                    slot: *slot,
                    pid,
                    since: ids.get(name.as_str()).and_then(|id| id.mtime),
                });
            }
            load.busy = u32::try_from(busy_slots.len()).unwrap_or(u32::MAX);
            load.holders.sort_by_key(|h| (h.slot, h.pid));
            load.upload_lock = files
                .upload_locks
                .iter()
                .find_map(|name| holder_of(name))
                .map(|pid| LockHolder {
                    pid,
                    since: load
                        .holders
                        .iter()
                        .filter(|h| pid != 0 && h.pid == pid)
                        .filter_map(|h| h.since)
                        .max(),
                });
            load
        })
        .collect();
    LocalLoad::Readable { machines: loads }
}

/// The UTF-8 names in `dir` (Nix's names always are).
fn list_dir(dir: &Path) -> io::Result<HashSet<String>> {
    let mut names = HashSet::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.insert(name);
        }
    }
    Ok(names)
}

/// The files named `<prefix>-<slot>` and `<prefix>.upload-lock` for any of
/// the prefixes. The slot is a canonical decimal (`%d`), so `a-1-0` is slot 0
/// of `a-1` and never a slot of `a`.
fn files_of(names: &HashSet<String>, prefixes: &[String]) -> MachineFiles {
    let mut files = MachineFiles::default();
    for name in names {
        for prefix in prefixes {
            let Some(rest) = name.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if rest == UPLOAD_LOCK_SUFFIX {
                files.upload_locks.push(name.clone());
            } else if let Some(slot) = rest.strip_prefix('-').and_then(parse_slot) {
                files.slots.push((slot, name.clone()));
            }
        }
    }
    files.slots.sort();
    files.upload_locks.sort();
    files
}

fn parse_slot(s: &str) -> Option<u32> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// `FLOCK` holders by (device, inode); a `WRITE` entry wins over `READ`.
struct FlockTable {
    by_file: HashMap<((u32, u32), u64), LockEntry>,
    inodes: HashSet<u64>,
}

impl FlockTable {
    fn new(entries: &[LockEntry]) -> Self {
        let mut by_file: HashMap<((u32, u32), u64), LockEntry> = HashMap::new();
        let mut inodes = HashSet::new();
        for entry in entries.iter().filter(|e| e.kind == LockKind::Flock) {
            inodes.insert(entry.inode);
            let key = ((entry.dev_major, entry.dev_minor), entry.inode);
            by_file
                .entry(key)
                .and_modify(|held| {
                    if held.mode == LockMode::Read && entry.mode == LockMode::Write {
                        *held = *entry;
                    }
                })
                .or_insert(*entry);
        }
        FlockTable { by_file, inodes }
    }

    fn holder(&self, device: (u32, u32), inode: u64) -> Option<&LockEntry> {
        self.by_file.get(&(device, inode))
    }

    fn has_inode(&self, inode: u64) -> bool {
        self.inodes.contains(&inode)
    }
}

/// glibc's `major()`/`minor()` of a `st_dev`.
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The device number of the file system mounted where `path` lives, as
/// `/proc/self/mountinfo` (and `/proc/locks`) give it.
fn mount_device_of(path: &Path) -> Option<(u32, u32)> {
    let path = fs::canonicalize(path).ok()?;
    let text = fs::read_to_string(MOUNTINFO).ok()?;
    mount_device_in(&text, &path)
}

/// The device of the last-mounted of the deepest mount points containing
/// `path`, in mountinfo text.
fn mount_device_in(mountinfo: &str, path: &Path) -> Option<(u32, u32)> {
    let mut best: Option<(usize, (u32, u32))> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(device), Some(mount_point)) = (fields.get(2), fields.get(4)) else {
            continue;
        };
        let Some((major, minor)) = device.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_mountinfo(mount_point));
        if !path.starts_with(&mount_point) {
            continue;
        }
        let depth = mount_point.components().count();
        if best.is_none_or(|(d, _)| depth >= d) {
            best = Some((depth, (major, minor)));
        }
    }
    best.map(|(_, device)| device)
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(d) = octal {
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- Store URI spellings -------------------------------------------------

/// The parts of `scheme://authority/path?query`.
struct UriParts<'a> {
    scheme: &'a str,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split_uri(uri: &str) -> Option<UriParts<'_>> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !valid {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or("");
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(rest) => {
            let end = rest.find('/').unwrap_or(rest.len());
            (Some(&rest[..end]), &rest[end..])
        }
        None => (None, rest),
    };
    Some(UriParts {
        scheme,
        authority,
        path,
        query,
    })
}

/// `StoreReference::render()` of Nix releases whose URL parser kept the
/// authority verbatim and percent-decoded the path (≈ 2.20 to 2.30).
fn store_reference_verbatim(uri: &str) -> Option<String> {
    let parts = split_uri(uri)?;
    let mut out = format!("{}://{}", parts.scheme, parts.authority.unwrap_or(""));
    out.push_str(&String::from_utf8_lossy(&percent_decode(parts.path)?));
    push_query(&mut out, parts.query)?;
    Some(out)
}

/// `StoreReference::render()` of current Nix: authority and path decoded and
/// re-encoded, query sorted and re-encoded; its fallbacks for `auto`,
/// `daemon`, `local` and absolute paths.
fn store_reference_rendered(uri: &str) -> Option<String> {
    let Some(parts) = split_uri(uri) else {
        return special_store_rendered(uri);
    };
    let mut out = format!("{}://", parts.scheme);
    if let Some(authority) = parts.authority {
        out.push_str(&render_authority(authority)?);
    }
    if !parts.path.is_empty() {
        let segments: Option<Vec<String>> = parts
            .path
            .split('/')
            .map(|s| Some(percent_encode(&percent_decode(s)?, ":@")))
            .collect();
        out.push_str(&segments?.join("/"));
    }
    push_query(&mut out, parts.query)?;
    Some(out)
}

fn special_store_rendered(uri: &str) -> Option<String> {
    let (base, query) = match uri.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (uri, None),
    };
    let has_params = !decode_query(query.unwrap_or(""))?.is_empty();
    let mut out = match base {
        "" | "auto" => "auto".to_owned(),
        "daemon" if has_params => "unix://".to_owned(),
        "daemon" => "daemon".to_owned(),
        "local" if has_params => "local://".to_owned(),
        "local" => "local".to_owned(),
        path if path.starts_with('/') && !path.contains("://") => {
            format!("local://{}", canonical_path(path))
        }
        _ => return None, // a relative path depends on the hook's cwd
    };
    push_query(&mut out, query)?;
    Some(out)
}

/// `user[:password]@host[:port]`, each part decoded and re-encoded; a port
/// is written as a number, an empty one dropped.
fn render_authority(authority: &str) -> Option<String> {
    if authority.matches('@').count() > 1 {
        return None;
    }
    let (userinfo, host_port) = match authority.split_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let mut out = String::new();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        out.push_str(&percent_encode(&percent_decode(user)?, ""));
        if let Some(password) = password {
            out.push(':');
            out.push_str(&percent_encode(&percent_decode(password)?, ""));
        }
        out.push('@');
    }
    let port = if let Some(literal) = host_port.strip_prefix('[') {
        let (address, after) = literal.split_once(']')?;
        out.push('[');
        out.push_str(&percent_encode(&percent_decode(address)?, ":"));
        out.push(']');
        match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        }
    } else {
        let (host, port) = match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        out.push_str(&percent_encode(&percent_decode(host)?, ""));
        port
    };
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
        write!(out, ":{port}").ok()?;
    }
    Some(out)
}

/// Appends `?k=v&...` (sorted, re-encoded) unless the query has no parameter.
fn push_query(out: &mut String, query: Option<&str>) -> Option<()> {
    let params = decode_query(query.unwrap_or(""))?;
    let mut first = true;
    for (key, value) in &params {
        out.push(if first { '?' } else { '&' });
        first = false;
        out.push_str(&percent_encode(key, ":@/?"));
        out.push('=');
        out.push_str(&percent_encode(value, ":@/?"));
    }
    Some(())
}

/// Nix's `decodeQuery`: `&`-separated `key=value`, a piece without `=`
/// ignored, the first of repeated keys kept; `+` is not a space.
fn decode_query(query: &str) -> Option<std::collections::BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut params = std::collections::BTreeMap::new();
    for piece in query.split('&') {
        let Some((key, value)) = piece.split_once('=') else {
            continue;
        };
        params
            .entry(percent_decode(key)?)
            .or_insert(percent_decode(value)?);
    }
    Some(params)
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// RFC 3986 unreserved characters and `keep` stay, the rest becomes `%XX`.
fn percent_encode(bytes: &[u8], keep: &str) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `/a//b/./c/../d` → `/a/b/d`, without looking at the file system.
fn canonical_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
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

    fn entry(kind: LockKind, mode: LockMode, pid: i32, dev: (u32, u32), inode: u64) -> LockEntry {
        LockEntry {
            kind,
            mode,
            pid,
            dev_major: dev.0,
            dev_minor: dev.1,
            inode,
        }
    }

    #[test]
    fn proc_locks_holders_only() {
        let text = "\
1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF
1: -> FLOCK  ADVISORY  WRITE 12346 08:01:1234567 0 EOF
1:  -> FLOCK  ADVISORY  WRITE 12347 08:01:1234567 0 EOF
2: POSIX  ADVISORY  READ 812 00:2e:31 0 EOF
3: OFDLCK ADVISORY  WRITE -1 fd:01:9876543210 100 199
4: FLOCK  ADVISORY  READ 0 103:0a:42 0 EOF
5: LEASE  ACTIVE    READ 77 fd:01:5 0 EOF
6: DELEG  ACTIVE    READ 78 fd:01:6 0 EOF
7: POSIX  *NOINODE* WRITE 79 <none>:0 0 EOF
8: POSIX  ADVISORY  UNLCK 80 fd:01:7 0 EOF
not a lock line
9: FLOCK  ADVISORY  WRITE 81 zz:01:8 0 EOF
";
        let entries = parse_proc_locks(text);
        assert_eq!(
            entries,
            [
                entry(LockKind::Flock, LockMode::Write, 12345, (8, 1), 1234567),
                entry(LockKind::Posix, LockMode::Read, 812, (0, 0x2e), 31),
                entry(LockKind::Ofdlck, LockMode::Write, -1, (0xfd, 1), 9876543210),
                entry(LockKind::Flock, LockMode::Read, 0, (0x103, 0x0a), 42),
            ]
        );
        assert!(parse_proc_locks("").is_empty());
    }

    #[test]
    fn st_dev_splits_like_glibc() {
        assert_eq!(split_dev(0xfe00), (0xfe, 0));
        assert_eq!(split_dev(0x802), (8, 2));
        assert_eq!(split_dev(0x2e), (0, 0x2e));
        // major 0x103, minor 0x12345 in glibc's 64-bit encoding
        let dev = (0x103u64 & 0xfff) << 8 | (0x12345u64 & 0xff) | (0x12345u64 & !0xff) << 12;
        assert_eq!(split_dev(dev), (0x103, 0x12345));
    }

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
    fn candidates_for_plain_ssh_stores() {
        assert_eq!(file_name_candidates("ssh://rtest"), ["ssh:__rtest"]);
        assert_eq!(file_name_candidates("ssh-ng://rtest"), ["ssh-ng:__rtest"]);
        assert_eq!(
            file_name_candidates("ssh://[::1]:2200"),
            ["ssh:__[::1]:2200"]
        );
    }

    #[test]
    fn candidates_with_user_and_path() {
        assert_eq!(
            file_name_candidates("ssh://nix@b1.example.org:2222/srv/store"),
            ["ssh:__nix@b1.example.org:2222_srv_store"]
        );
        // Current Nix decodes and re-encodes the authority; a padded port is a number.
        assert_eq!(
            file_name_candidates("ssh-ng://n%69x@host:022"),
            ["ssh-ng:__n%69x@host:022", "ssh-ng:__nix@host:22"]
        );
    }

    #[test]
    fn candidates_with_query() {
        // 2.8 keeps the query verbatim; StoreReference sorts it by key.
        assert_eq!(
            file_name_candidates("ssh://b1?remote-store=/mnt&compress=true"),
            [
                "ssh:__b1?remote-store=_mnt&compress=true",
                "ssh:__b1?compress=true&remote-store=_mnt"
            ]
        );
        // ... and decodes it: %2F becomes '/', hence '_'.
        assert_eq!(
            file_name_candidates(
                "ssh-ng://b1?remote-program=/opt/nix%20daemon&remote-store=%2Fmnt"
            ),
            [
                "ssh-ng:__b1?remote-program=_opt_nix%20daemon&remote-store=%2Fmnt",
                "ssh-ng:__b1?remote-program=_opt_nix%20daemon&remote-store=_mnt"
            ]
        );
        // A parameter without '=' is dropped; an empty query disappears.
        assert_eq!(
            file_name_candidates("ssh://b1?compress"),
            ["ssh:__b1?compress", "ssh:__b1"]
        );
    }

    #[test]
    fn candidates_for_special_stores() {
        assert_eq!(file_name_candidates("daemon"), ["daemon"]);
        assert_eq!(file_name_candidates("auto"), ["auto"]);
        assert_eq!(
            file_name_candidates("local?root=/tmp/r"),
            ["local?root=_tmp_r", "local:__?root=_tmp_r"]
        );
        assert_eq!(
            file_name_candidates("/srv//nix/./x"),
            ["_srv__nix_._x", "local:___srv_nix_x"]
        );
    }

    #[test]
    fn slot_suffixes_are_canonical_decimals() {
        assert_eq!(parse_slot("0"), Some(0));
        assert_eq!(parse_slot("12"), Some(12));
        for bad in ["", "01", "-1", "1-0", "+1", "1a", "99999999999"] {
            assert_eq!(parse_slot(bad), None, "{bad}");
        }
        let names: HashSet<String> = ["a-0", "a-1", "a-1-0", "a-01", "a.upload-lock", "main-lock"]
            .into_iter()
            .map(String::from)
            .collect();
        let files = files_of(&names, &["a".to_owned()]);
        assert_eq!(files.slots, [(0, "a-0".to_owned()), (1, "a-1".to_owned())]);
        assert_eq!(files.upload_locks, ["a.upload-lock"]);
        let files = files_of(&names, &["a-1".to_owned()]);
        assert_eq!(files.slots, [(0, "a-1-0".to_owned())]);
    }

    #[test]
    fn mountinfo_deepest_mount_wins() {
        let text = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:45 / /nix rw,relatime - btrfs /dev/vdb rw,subvol=/nix
41 27 0:46 / /nix\\040store rw - tmpfs tmpfs rw
42 40 0:47 / /nix/var rw - btrfs /dev/vdb rw
43 40 0:48 / /nix/var rw - btrfs /dev/vdb rw
";
        let dev = |p: &str| mount_device_in(text, Path::new(p));
        assert_eq!(dev("/nix/var/nix/current-load"), Some((0, 48)));
        assert_eq!(dev("/nix/store/x"), Some((0, 45)));
        assert_eq!(dev("/nix store/x"), Some((0, 46)));
        assert_eq!(dev("/etc"), Some((254, 0)));
        assert_eq!(unescape_mountinfo("a\\040b\\134c\\9"), "a b\\c\\9");
    }

    #[test]
    fn reasons_name_the_directory() {
        let dir = Path::new("/nix/var/nix/current-load");
        let denied = describe_dir_error(dir, &io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(denied.contains("permission denied"), "{denied}");
        assert!(denied.contains("/nix/var/nix/current-load"), "{denied}");
        assert!(denied.contains("root"), "{denied}");
        let other = describe_dir_error(dir, &io::Error::other("disk on fire"));
        assert!(
            other.contains("/nix/var/nix/current-load: disk on fire"),
            "{other}"
        );
        let locks = describe_locks_error(&io::Error::from(io::ErrorKind::NotFound));
        assert!(locks.contains("/proc/locks"), "{locks}");
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

    mod with_files {
        use super::*;
        use crate::diagnostics::Origin;
        use crate::machines::{MachinesText, Parser};

        fn machines(text: &str) -> Vec<Machine> {
            let mut parser = Parser::new(vec!["x86_64-linux".into()]);
            parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
            let parsed = parser.finish();
            assert_eq!(parsed.errors().count(), 0, "{text}");
            parsed.machines
        }

        fn stat(path: &Path) -> ((u32, u32), u64) {
            let meta = fs::metadata(path).unwrap();
            (split_dev(meta.dev()), meta.ino())
        }

        fn flock_line(pid: i32, (dev, inode): ((u32, u32), u64)) -> String {
            format!(
                "1: FLOCK  ADVISORY  WRITE {pid} {:02x}:{:02x}:{inode} 0 EOF\n",
                dev.0, dev.1
            )
        }

        #[test]
        fn missing_dir_means_idle_and_skips_proc_locks() {
            let tmp = tempfile::tempdir().unwrap();
            let ms = machines("b1 - - 3\nssh-ng://b2 - - 1");
            let load = read_using(
                &tmp.path().join("current-load"),
                &ms,
                || panic!("no need to read /proc/locks"),
                |_| panic!("no need for mountinfo"),
            );
            assert_eq!(
                load,
                LocalLoad::Readable {
                    machines: vec![MachineLoad::idle(3), MachineLoad::idle(1)]
                }
            );
        }

        #[test]
        fn constructed_locks_and_device_fallback() {
            let tmp = tempfile::tempdir().unwrap();
            let ms = machines("b1 - - 2\nb2 - - 2");
            for name in [
                "ssh:__b1-0",
                "ssh:__b1-1",
                "ssh:__b1-2",
                "ssh:__b2-0",
                "main-lock",
            ] {
                fs::write(tmp.path().join(name), "").unwrap();
            }
            let (dev, b1_0) = stat(&tmp.path().join("ssh:__b1-0"));
            let (_, b1_2) = stat(&tmp.path().join("ssh:__b1-2"));
            let (_, b2_0) = stat(&tmp.path().join("ssh:__b2-0"));

            // Exact device: b1 slot 0 and the stale slot 2, b2 only waited for.
            let text = flock_line(100, (dev, b1_0))
                + &flock_line(101, (dev, b1_2))
                + &format!(
                    "2: -> FLOCK  ADVISORY  WRITE 102 {:02x}:{:02x}:{b2_0} 0 EOF\n",
                    dev.0, dev.1
                )
                + &format!(
                    "3: POSIX  ADVISORY  WRITE 103 {:02x}:{:02x}:{b2_0} 0 EOF\n",
                    dev.0, dev.1
                );
            let load = read_using(tmp.path(), &ms, || Ok(text), |_| panic!("devices match"));
            let loads = load.machines().unwrap();
            assert_eq!(loads[0].busy, 1);
            assert_eq!(
                loads[0]
                    .holders
                    .iter()
                    .map(|h| (h.slot, h.pid))
                    .collect::<Vec<_>>(),
                [(0, 100), (2, 101)]
            );
            assert_eq!(loads[1], MachineLoad::idle(2));

            // /proc/locks names another device (btrfs): mountinfo decides.
            let other = (dev.0, dev.1.wrapping_add(1));
            let text = flock_line(100, (other, b2_0));
            let load = read_using(tmp.path(), &ms, || Ok(text.clone()), |_| Some(other));
            assert_eq!(load.machines().unwrap()[1].busy, 1);
            let load = read_using(tmp.path(), &ms, || Ok(text.clone()), |_| None);
            assert_eq!(load.machines().unwrap()[1].busy, 0);
            let load = read_using(tmp.path(), &ms, || Ok(text), |_| Some((9, 9)));
            assert_eq!(load.machines().unwrap()[1].busy, 0);
        }

        #[test]
        fn unreadable_proc_locks_is_reported() {
            let tmp = tempfile::tempdir().unwrap();
            fs::write(tmp.path().join("ssh:__b1-0"), "").unwrap();
            let load = read_using(
                tmp.path(),
                &machines("b1"),
                || Err(io::Error::from(io::ErrorKind::NotFound)),
                |_| None,
            );
            let LocalLoad::Unreadable { dir, reason } = load else {
                panic!("{load:?}")
            };
            assert_eq!(dir, tmp.path());
            assert!(reason.contains("/proc/locks"), "{reason}");
        }

        #[test]
        fn a_file_instead_of_a_dir_is_unreadable() {
            let tmp = tempfile::NamedTempFile::new().unwrap();
            let load = read(tmp.path(), &machines("b1"));
            let LocalLoad::Unreadable { dir, reason } = load else {
                panic!("{load:?}")
            };
            assert_eq!(dir, tmp.path());
            assert!(
                reason.contains(&tmp.path().display().to_string()),
                "{reason}"
            );
            assert!(reason.contains("not a directory"), "{reason}");
        }
    }
}
